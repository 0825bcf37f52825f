"""Unit tests for stage 03 (features): small constructed frames with known answers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.cleaning.features import (
    METRICS,
    add_calendar_features,
    add_lag_features,
    build_features,
    check_features,
    clean_series,
    feature_columns,
    flag_outliers,
    to_long,
)
from capacity_forecaster.core.calendar import quarter_end_window
from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.params import FeatureParams, SyntheticParams
from capacity_forecaster.ingest.synthetic import generate_fleet

PARAMS = FeatureParams()
SERVERS = pd.DataFrame({"server_id": ["s1", "s2"], "region": ["us-east-1", "us-east-1"]})


def wiggle(n: int, level: float = 50.0, amplitude: float = 1.0) -> np.ndarray:
    """A deterministic, gently noisy series."""
    return level + amplitude * np.sin(np.arange(n) * 2.3)


def business_hours(n: int, start: str = "2025-04-07") -> np.ndarray:
    """A business-hours server: ~60 % on weekdays, ~20 % at the weekend, gently noisy."""
    weekend = pd.date_range(start, periods=n, freq="D").day_of_week >= 5
    return np.where(weekend, 20.0, 60.0) + np.sin(np.arange(n) * 2.3)


def same_weekday_median(values: np.ndarray, weeks: int = 7) -> np.ndarray:
    """Reference: each day's centred rolling median over the same weekday (one series)."""
    phase = pd.Series(np.arange(len(values)) % 7)
    return (
        pd.Series(values)
        .groupby(phase)
        .transform(lambda s: s.rolling(weeks, center=True, min_periods=weeks // 2 + 1).median())
        .to_numpy()
    )


def metrics_frame(start: str, values: np.ndarray, server: str = "s1") -> pd.DataFrame:
    """Wide metrics for one server: the same values for every metric."""
    dates = pd.date_range(start, periods=len(values), freq="D")
    frame = pd.DataFrame({"date": dates, "server_id": server})
    for metric in METRICS:
        frame[metric] = values
    return frame


def series(
    start: str, values: np.ndarray, server: str = "s1", metric: str = "cpu_p95"
) -> pd.DataFrame:
    """One long series on a complete daily grid."""
    dates = pd.date_range(start, periods=len(values), freq="D")
    return pd.DataFrame({"server_id": server, "metric": metric, "date": dates, "value": values})


def at(frame: pd.DataFrame, day: str, column: str, metric: str = "cpu_p95", server: str = "s1"):
    row = frame[
        (frame["date"] == pd.Timestamp(day))
        & (frame["metric"] == metric)
        & (frame["server_id"] == server)
    ]
    assert len(row) == 1, f"expected one row for {server} {metric} {day}, got {len(row)}"
    return row[column].iloc[0]


# ------------------------------------------------------------------------------- to_long


def test_to_long_completes_the_daily_grid_per_series() -> None:
    wide = pd.DataFrame(
        {
            "date": pd.to_datetime(
                ["2025-01-01", "2025-01-02", "2025-01-04", "2025-01-02", "2025-01-03"]
            ),
            "server_id": ["s2", "s2", "s2", "s1", "s1"],
            "cpu_p95": [10.0, 11.0, 13.0, 20.0, 21.0],
            "mem_p95": [np.nan, 30.0, 31.0, 40.0, np.nan],
            "disk_p95": [50.0, 50.0, 50.0, 60.0, 60.0],
        }
    )
    long = to_long(wide)

    assert list(long.columns) == ["server_id", "metric", "date", "value"]
    assert long["date"].dtype == wide["date"].dtype
    # s2 cpu: 01..04 with 03 absent -> 4 rows, one NaN; s2 mem spans its first to last
    # observed day only (02..04); s1 mem observed once -> 1 row.
    s2_cpu = long[(long["server_id"] == "s2") & (long["metric"] == "cpu_p95")]
    assert s2_cpu["date"].dt.day.tolist() == [1, 2, 3, 4]
    assert s2_cpu["value"].isna().tolist() == [False, False, True, False]
    s2_mem = long[(long["server_id"] == "s2") & (long["metric"] == "mem_p95")]
    assert s2_mem["date"].dt.day.tolist() == [2, 3, 4]
    assert s2_mem["value"].tolist()[0] == 30.0 and np.isnan(s2_mem["value"].iloc[1])
    assert len(long[(long["server_id"] == "s1") & (long["metric"] == "mem_p95")]) == 1
    assert len(long) == 2 + 2 + 1 + 4 + 4 + 3
    expected = long.sort_values(["server_id", "metric", "date"], ignore_index=True)
    pd.testing.assert_frame_equal(long, expected)
    assert long["metric"].unique().tolist() == sorted(METRICS)


def test_to_long_rejects_duplicate_server_days() -> None:
    wide = metrics_frame("2025-01-01", np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="1 duplicate"):
        to_long(pd.concat([wide, wide.iloc[[0]]]))


# ------------------------------------------------------------------------------- outliers


def test_single_spike_is_flagged_and_replaced_by_the_same_weekday_median() -> None:
    values = wiggle(60)
    values[30] = 95.0  # 2025-01-31: mid-quarter, not a US holiday
    long = series("2025-01-01", values)

    flags = flag_outliers(long, window=15, threshold=6.0)
    assert flags.dtype == bool
    assert flags.sum() == 1 and flags.iloc[30]

    cleaned = clean_series(long, PARAMS, SERVERS)
    assert cleaned["is_outlier"].tolist() == flags.tolist()
    assert cleaned["value_raw"].iloc[30] == 95.0
    fridays = values[9:52:7]  # the same weekday, three weeks either side
    neighbours = np.delete(fridays, 3)  # without the spike, they bracket the replacement
    assert neighbours.min() <= cleaned["value"].iloc[30] <= neighbours.max()
    assert cleaned["value"].iloc[30] == pytest.approx(np.median(fridays))
    unchanged = np.delete(np.arange(60), 30)
    np.testing.assert_array_equal(cleaned["value"].to_numpy()[unchanged], values[unchanged])


def test_quarter_end_spike_in_the_protected_window_is_not_flagged() -> None:
    values = wiggle(60)
    day = 30  # 2025-03-31, a Monday: the last business day of Q1
    values[day] = 95.0
    long = series("2025-03-01", values)
    assert long["date"].iloc[day] == pd.Timestamp("2025-03-31")

    protected = quarter_end_window(long["date"], PARAMS.quarter_end_business_days)
    assert protected[day]
    assert flag_outliers(long, window=15, threshold=6.0).iloc[day]  # a spike without protection
    assert not flag_outliers(long, window=15, threshold=6.0, protected=protected).any()

    cleaned = clean_series(long, PARAMS, SERVERS)
    assert not cleaned["is_outlier"].any()
    assert cleaned["value"].iloc[day] == 95.0


def test_flat_series_is_not_flagged() -> None:
    constant = series("2025-01-01", np.full(40, 40.0))
    tiny_wiggles = series("2025-01-01", 40.0 + np.array([0.0, 0.1, -0.1, 0.3] * 10))
    for long in (constant, tiny_wiggles):
        assert not flag_outliers(long, window=15, threshold=6.0).any()


def test_a_weekly_pattern_is_not_an_outlier_but_a_spike_within_it_is() -> None:
    # Weekends 40 points below the weekdays: each weekend day stands out in its 15-day window
    # (mostly weekdays), but not among the other weekends, so none is flagged.
    values = business_hours(84)
    assert not flag_outliers(series("2025-04-07", values), window=15, threshold=6.0).any()

    values[[37, 40]] = [99.0, 0.0]  # a spike on a Wednesday, a drop on a Saturday
    long = series("2025-04-07", values)
    assert long["date"].dt.day_of_week.iloc[[37, 40]].tolist() == [2, 5]
    cleaned = clean_series(long, PARAMS, SERVERS)
    assert cleaned.index[cleaned["is_outlier"]].tolist() == [37, 40]
    # Each is replaced by its own weekday's level, not the weekday-heavy window's.
    assert cleaned["value"].iloc[37] == pytest.approx(60.0, abs=1.0)
    assert cleaned["value"].iloc[40] == pytest.approx(20.0, abs=1.0)


def test_too_few_same_weekday_values_leave_the_daily_window_to_decide() -> None:
    # 20 days: no weekday occurs four times, so the same-weekday check cannot be made.
    values = wiggle(20)
    values[10] = 95.0
    long = series("2025-01-01", values)
    cleaned = clean_series(long, FeatureParams(outlier_window=9), SERVERS)
    assert cleaned.index[cleaned["is_outlier"]].tolist() == [10]
    daily = long["value"].rolling(9, center=True, min_periods=5).median()
    assert cleaned["value"].iloc[10] == pytest.approx(daily.iloc[10])


def test_outlier_windows_stay_inside_each_series() -> None:
    # s1 ends at 10, s2 starts at 90: neither edge is an outlier of its own series.
    long = pd.concat(
        [
            series("2025-01-01", wiggle(30, 10.0), "s1"),
            series("2025-01-01", wiggle(30, 90.0), "s2"),
        ],
        ignore_index=True,
    )
    assert not flag_outliers(long, window=15, threshold=6.0).any()


# ------------------------------------------------------------------------------- imputation


def test_two_day_gap_is_interpolated_and_flagged_imputed() -> None:
    values = np.arange(20, dtype=float) + 10.0  # linear, so interpolation is exact
    values[[8, 9]] = np.nan
    cleaned = clean_series(
        series("2025-01-01", values), FeatureParams(impute_limit_days=2), SERVERS
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

    cleaned = clean_series(to_long(wide), params, SERVERS)
    cpu = cleaned[cleaned["metric"] == "cpu_p95"].reset_index(drop=True)
    assert cpu["value"].iloc[gap].isna().all()  # not partially filled
    assert not cpu["is_imputed"].any()

    features, summary = build_features(wide, SERVERS, params)
    gap_days = pd.date_range("2025-01-01", periods=150)[gap]
    assert not features["date"].isin(gap_days).any()
    # Dropped: 28 warm-up days, the 10 gap days and 28 days after it (lag_28 reaches into it).
    assert summary["by_metric"]["cpu_p95"]["dropped_rows"] == 28 + 10 + 28
    assert len(features) == 3 * (150 - 66)
    check_features(features, params)


# ------------------------------------------------------------------------------- lags / rolling


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
    cols = feature_columns(PARAMS)[8:]
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


def test_outlier_replacement_is_the_centred_same_weekday_median() -> None:
    values = wiggle(40)
    values[[1, 20]] = [99.0, 1.0]  # one spike near the series start, one dip mid-series
    values[27] = np.nan  # a missing value among the dip's same-weekday neighbours
    long = series("2025-01-05", values)
    params = FeatureParams(outlier_window=9)
    cleaned = clean_series(long, params, SERVERS)
    assert cleaned.index[cleaned["is_outlier"]].tolist() == [1, 20]
    median = same_weekday_median(values)
    np.testing.assert_allclose(cleaned["value"].iloc[[1, 20]], median[[1, 20]])


def test_cleaning_a_synthetic_fleet_flags_its_injected_outliers_not_its_weekends() -> None:
    # The generator injects its outliers after drawing the series, so the same seed without
    # them shows which values they replaced (no missing days: those would move too).
    fleet = SyntheticParams(n_servers=20, days=400, outlier_share=0.005, missing_share=0.0)
    dirty, servers = generate_fleet(fleet, seed=3)
    truth, _ = generate_fleet(fleet.model_copy(update={"outlier_share": 0.0}), seed=3)
    cleaned = clean_series(to_long(dirty), PARAMS, servers)
    injected = cleaned["value_raw"].to_numpy() != to_long(truth)["value"].to_numpy()
    flagged = cleaned["is_outlier"].to_numpy()

    assert injected.sum() > 100
    precision = (flagged & injected).sum() / flagged.sum()
    recall = (flagged & injected).sum() / injected.sum()
    # Before the same-weekday check, genuine weekend values were most of the flags here.
    assert precision >= 0.95, f"precision {precision:.3f}"
    assert recall >= 0.75, f"recall {recall:.3f}"


def test_functions_reject_frames_off_the_daily_grid() -> None:
    broken = series("2025-01-01", wiggle(10)).drop(index=4)
    with pytest.raises(ValueError, match="daily grid"):
        add_lag_features(broken, lags=(1,), windows=(2,))


# ------------------------------------------------------------------------------- calendar


def test_calendar_flags_for_known_dates() -> None:
    servers = pd.DataFrame(
        {
            "server_id": ["s1", "s2", "s3"],
            "region": ["us-east-1", "nowhere-9", "us-east-1"],
            "country": [None, None, "DE"],
        }
    )
    long = pd.concat(
        [series("2025-03-25", np.ones(300), server) for server in ("s1", "s2", "s3")],
        ignore_index=True,
    )
    frame = add_calendar_features(long, servers, quarter_end_business_days=5)

    assert at(frame, "2025-12-25", "is_holiday")  # Christmas, us-east -> US
    assert not at(frame, "2025-12-25", "is_holiday", server="s2")  # unknown country
    assert at(frame, "2025-12-26", "is_holiday", server="s3")  # DE: 2. Weihnachtstag
    assert not at(frame, "2025-12-26", "is_holiday")
    assert at(frame, "2025-07-04", "is_holiday") and not at(
        frame, "2025-07-04", "is_holiday", server="s3"
    )

    assert at(frame, "2025-03-31", "is_eoq_window")
    assert at(frame, "2025-03-31", "days_to_quarter_end") == 0
    assert at(frame, "2025-03-31", "day_of_week") == 0  # Monday
    assert at(frame, "2025-03-31", "quarter") == 1
    assert not at(frame, "2025-03-29", "is_eoq_window")  # Saturday
    assert at(frame, "2025-03-29", "is_weekend")
    assert not at(frame, "2025-05-15", "is_eoq_window")
    assert at(frame, "2025-05-15", "days_to_quarter_end") == 46
    assert at(frame, "2025-12-31", "day_of_year") == 365
    assert at(frame, "2025-12-31", "month") == 12
    for column in ("day_of_week", "month", "quarter", "day_of_year", "days_to_quarter_end"):
        assert frame[column].dtype == np.int64
    for column in ("is_weekend", "is_eoq_window", "is_holiday"):
        assert frame[column].dtype == bool


# ------------------------------------------------------------------------------- build / check


@pytest.fixture(scope="module")
def built() -> tuple[pd.DataFrame, dict]:
    wide = pd.concat(
        [
            metrics_frame("2025-01-01", wiggle(100), "s1"),
            metrics_frame("2025-01-01", wiggle(100, 30.0), "s2"),
        ],
        ignore_index=True,
    )
    return build_features(wide, SERVERS, PARAMS)


def test_build_features_layout_and_summary_is_json(built: tuple[pd.DataFrame, dict]) -> None:
    features, summary = built
    assert list(features.columns) == [
        "server_id", "metric", "date", "value", "value_raw", "is_outlier", "is_imputed",
        *feature_columns(PARAMS),
    ]  # fmt: skip
    assert len(features) == 2 * 3 * (100 - max(PARAMS.lags + PARAMS.rolling_windows))
    expected = features.sort_values(["server_id", "metric", "date"], ignore_index=True)
    pd.testing.assert_frame_equal(features, expected)
    check_features(features, PARAMS)

    decoded = json.loads(json.dumps(summary))
    assert decoded["rows_in"] == 600 and decoded["rows_out"] == len(features)
    assert decoded["dropped_rows"] == 600 - len(features)
    assert set(decoded["by_metric"]) == set(METRICS)


@pytest.mark.parametrize(
    ("column", "bad", "message"),
    [("lag_7", np.nan, "lag_7 has 1 NaN"), ("value", np.inf, "value has 1 infinite")],
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
