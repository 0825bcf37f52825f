"""Imputation: short gaps interpolated and flagged, long gaps left as gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd

from capacity_forecaster.cleaning.clean import clean_series
from capacity_forecaster.cleaning.features import build_features, check_features
from capacity_forecaster.cleaning.grid import to_long
from capacity_forecaster.core.params import FeatureParams
from tests.cleaning.builders import CALENDAR, SERVERS, metrics_frame, series, wiggle


def test_two_day_gap_is_interpolated_and_flagged_imputed() -> None:
    values = np.arange(20, dtype=float) + 10.0  # linear, so interpolation is exact
    values[[8, 9]] = np.nan
    cleaned = clean_series(
        series("2025-01-01", values), FeatureParams(impute_limit_days=2), SERVERS, CALENDAR
    )

    np.testing.assert_allclose(cleaned["value"].iloc[[8, 9]], [18.0, 19.0])
    assert cleaned.index[cleaned["is_imputed"]].tolist() == [8, 9]
    assert cleaned["value_raw"].iloc[[8, 9]].isna().all()
    assert not cleaned["is_outlier"].any()


def test_long_gap_stays_nan_and_build_features_drops_it() -> None:
    values = wiggle(150)
    gap = slice(60, 70)  # 10 missing days, limit 7
    values[gap] = np.nan
    wide = metrics_frame("2025-01-01", values)
    params = FeatureParams(impute_limit_days=7)

    cleaned = clean_series(to_long(wide), params, SERVERS, CALENDAR)
    cpu = cleaned[cleaned["metric"] == "cpu_p95"].reset_index(drop=True)
    assert cpu["value"].iloc[gap].isna().all()  # not partially filled
    assert not cpu["is_imputed"].any()

    features, summary = build_features(wide, SERVERS, params, CALENDAR)
    gap_days = pd.date_range("2025-01-01", periods=150)[gap]
    assert not features["date"].isin(gap_days).any()
    # Left out: the 10 gap days only. Every observed day is kept, the first ones and the days
    # after the gap too, with the lag columns empty where their window reaches into the gap.
    assert summary["by_metric"]["cpu_p95"]["dropped_rows"] == 10
    assert len(features) == 3 * (150 - 10)
    cpu = features[features["metric"] == "cpu_p95"].set_index("date")
    assert cpu["lag_28"].iloc[:28].isna().all() and cpu["lag_28"].iloc[28:60].notna().all()
    after_gap = pd.Timestamp("2025-01-01") + pd.Timedelta(days=70)
    assert cpu.loc[after_gap, ["lag_1", "roll_mean_7"]].isna().all()
    check_features(features, params)
