"""build_features and check_features: the stage 03 product's layout, summary and post-conditions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.cleaning.features import build_features, check_features, feature_columns
from capacity_forecaster.core import catalog
from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.vocabulary import METRICS
from tests.cleaning.builders import CALENDAR, PARAMS, SERVERS, metrics_frame, wiggle


@pytest.fixture(scope="module")
def built() -> tuple[pd.DataFrame, dict]:
    wide = pd.concat(
        [
            metrics_frame("2025-01-01", wiggle(100), "s1"),
            metrics_frame("2025-01-01", wiggle(100, 30.0), "s2"),
        ],
        ignore_index=True,
    )
    return build_features(wide, SERVERS, PARAMS, CALENDAR)


def test_build_features_layout_and_summary_is_json(built: tuple[pd.DataFrame, dict]) -> None:
    features, summary = built
    assert list(features.columns) == [
        "server_id", "metric", "date", "value", "value_raw", "is_outlier", "is_imputed",
        *feature_columns(PARAMS),
    ]  # fmt: skip
    assert len(features) == 2 * 3 * 100  # no day dropped to warm up the lag columns
    expected = features.sort_values(["server_id", "metric", "date"], ignore_index=True)
    pd.testing.assert_frame_equal(features, expected)
    check_features(features, PARAMS)

    decoded = json.loads(json.dumps(summary))
    assert decoded["rows_in"] == 600 and decoded["rows_out"] == len(features)
    assert decoded["dropped_rows"] == 600 - len(features)
    assert set(decoded["by_metric"]) == set(METRICS)


@pytest.mark.parametrize(
    ("column", "bad", "message"),
    [
        ("value", np.nan, "value has 1 NaN"),
        ("lag_7", np.inf, "lag_7 has 1 infinite"),
        ("value", np.inf, "value has 1 infinite"),
    ],
)
def test_check_features_rejects_nan_and_inf(
    built: tuple[pd.DataFrame, dict], column: str, bad: float, message: str
) -> None:
    features = built[0].copy()
    features.loc[5, column] = bad
    with pytest.raises(StageCheckError, match=message):
        check_features(features, PARAMS)


def test_check_features_rejects_missing_column_duplicates_and_missing_metric(
    built: tuple[pd.DataFrame, dict],
) -> None:
    features = built[0]
    with pytest.raises(StageCheckError, match=r"missing column.*roll_std_28"):
        check_features(features.drop(columns="roll_std_28"), PARAMS)
    with pytest.raises(StageCheckError, match="1 duplicate"):
        check_features(pd.concat([features, features.iloc[[0]]], ignore_index=True), PARAMS)
    with pytest.raises(StageCheckError, match="disk_p95"):
        check_features(features[features["metric"] != "disk_p95"], PARAMS)
    with pytest.raises(StageCheckError, match="no rows"):
        check_features(features.iloc[:0], PARAMS)


def test_every_valid_day_is_kept(built: tuple[pd.DataFrame, dict]) -> None:
    """Rows out = valid rows in: observed and imputed days, from each series' first day."""
    features, summary = built
    assert summary["rows_out"] == summary["rows_in"] - summary["missing"] + summary["imputed"]
    first = features.groupby(["server_id", "metric"])["date"].min()
    assert (first == pd.Timestamp("2025-01-01")).all()
    assert (
        features.groupby(["server_id", "metric"])["lag_1"]
        .apply(lambda s: s.isna().sum())
        .eq(1)
        .all()
    )


def test_features_are_the_catalogs_columns(built: tuple[pd.DataFrame, dict]) -> None:
    features, _ = built
    assert catalog.FEATURES.table is not None
    assert list(features.columns) == catalog.FEATURES.table.names
    catalog.check_table(catalog.FEATURES, features)
    calendar = {"day_of_month", "business_days_to_month_end", "calendar_windows"}
    assert calendar <= set(features.columns)
    assert not {"is_eoq_window", "days_to_quarter_end"} & set(features.columns)
    jan = features[features["date"] == pd.Timestamp("2025-01-31")].iloc[0]
    assert jan["day_of_month"] == 31 and jan["business_days_to_month_end"] == 0
    assert jan["calendar_windows"] == "month_end"
