"""Lag and rolling features: within each series, from past days only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.cleaning.lag_features import add_lag_features, lag_columns
from tests.cleaning.builders import PARAMS, series, wiggle


def two_series() -> pd.DataFrame:
    return pd.concat(
        [
            series("2025-01-01", np.arange(40, dtype=float), "s1"),
            series("2025-01-05", 100.0 + np.arange(30, dtype=float), "s2"),
        ],
        ignore_index=True,
    )


def test_lag_is_the_value_k_days_earlier_within_the_series() -> None:
    frame = add_lag_features(two_series(), lags=(1, 7), windows=(3,))
    for server in ("s1", "s2"):
        one = frame[frame["server_id"] == server].set_index("date")
        for day in one.index[7:]:
            assert one.at[day, "lag_7"] == one.at[day - pd.Timedelta(days=7), "value"]
        assert one["lag_7"].iloc[:7].isna().all()  # never borrows from the other series
        assert np.isnan(one["lag_1"].iloc[0])


def test_rolling_features_never_see_the_current_day() -> None:
    base = series("2025-01-01", wiggle(40))
    cols = lag_columns(PARAMS.lags, PARAMS.rolling_windows)
    before = add_lag_features(base, PARAMS.lags, PARAMS.rolling_windows)
    changed = base.copy()
    changed.loc[35, "value"] = 99.0
    after = add_lag_features(changed, PARAMS.lags, PARAMS.rolling_windows)

    pd.testing.assert_series_equal(before.loc[35, cols], after.loc[35, cols])  # no leakage
    assert after.loc[36, "lag_1"] == 99.0
    assert after.loc[36, "roll_max_7"] == 99.0
    assert after.loc[36, "roll_mean_7"] == pytest.approx(np.mean([*wiggle(40)[29:35], 99.0]))


def past_rolling(frame: pd.DataFrame, w: int, stat: str) -> pd.Series:
    """Reference: per-series shift(1) then rolling(w, min_periods=w), the slow obvious way."""
    keys = [frame["server_id"], frame["metric"]]
    past = frame["value"].groupby(keys).shift(1)
    rolling = past.groupby(keys).rolling(w, min_periods=w)
    result = rolling.std(ddof=0) if stat == "std" else getattr(rolling, stat)()
    return result.reset_index(level=[0, 1], drop=True).sort_index()


def test_rolling_features_match_a_per_series_groupby_reference() -> None:
    frame = two_series()
    frame.loc[[12, 50], "value"] = np.nan
    out = add_lag_features(frame, lags=(2,), windows=(1, 5))
    for w in (1, 5):
        for stat in ("mean", "std", "max"):
            expected = past_rolling(frame, w, stat)
            np.testing.assert_allclose(out[f"roll_{stat}_{w}"], expected, equal_nan=True, atol=1e-9)
    expected_lag = frame.groupby(["server_id", "metric"])["value"].shift(2)
    np.testing.assert_array_equal(out["lag_2"], expected_lag)
