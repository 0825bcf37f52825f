"""Outliers: spikes flagged and replaced by the same weekday's median; weekly and monthly
patterns and flat series left alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.cleaning.clean import clean_series
from capacity_forecaster.cleaning.outliers import flag_outliers
from capacity_forecaster.core.calendar_windows import window_flags
from capacity_forecaster.core.params import FeatureParams
from capacity_forecaster.core.params_calendar import CalendarParams
from tests.cleaning.builders import (
    CALENDAR,
    NO_WINDOWS,
    PARAMS,
    SERVERS,
    business_hours,
    month_end_days,
    series,
    wiggle,
)


def same_weekday_median(values: np.ndarray, weeks: int = 7) -> np.ndarray:
    """Reference: each day's centred rolling median over the same weekday (one series)."""
    phase = pd.Series(np.arange(len(values)) % 7)
    return (
        pd.Series(values)
        .groupby(phase)
        .transform(lambda s: s.rolling(weeks, center=True, min_periods=weeks // 2 + 1).median())
        .to_numpy()
    )


def test_single_spike_is_flagged_and_replaced_by_the_same_weekday_median() -> None:
    values = wiggle(60)
    values[30] = 95.0  # 2025-01-31: mid-quarter, not a US holiday
    long = series("2025-01-01", values)

    flags = flag_outliers(long, window=15, threshold=6.0)
    assert flags.dtype == bool
    assert flags.sum() == 1 and flags.iloc[30]

    cleaned = clean_series(long, PARAMS, SERVERS, CALENDAR)
    assert cleaned["is_outlier"].tolist() == flags.tolist()
    assert cleaned["value_raw"].iloc[30] == 95.0
    fridays = values[9:52:7]  # the same weekday, three weeks either side
    neighbours = np.delete(fridays, 3)  # without the spike, they bracket the replacement
    assert neighbours.min() <= cleaned["value"].iloc[30] <= neighbours.max()
    assert cleaned["value"].iloc[30] == pytest.approx(np.median(fridays))
    unchanged = np.delete(np.arange(60), 30)
    np.testing.assert_array_equal(cleaned["value"].to_numpy()[unchanged], values[unchanged])


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
    cleaned = clean_series(long, PARAMS, SERVERS, CALENDAR)
    assert cleaned.index[cleaned["is_outlier"]].tolist() == [37, 40]
    # Each is replaced by its own weekday's level, not the weekday-heavy window's.
    assert cleaned["value"].iloc[37] == pytest.approx(60.0, abs=1.0)
    assert cleaned["value"].iloc[40] == pytest.approx(20.0, abs=1.0)


def test_too_few_same_weekday_values_leave_the_daily_window_to_decide() -> None:
    # 20 days: no weekday occurs four times, so the same-weekday check cannot be made.
    values = wiggle(20)
    values[10] = 95.0
    long = series("2025-01-01", values)
    cleaned = clean_series(long, FeatureParams(outlier_window=9), SERVERS, CALENDAR)
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


def test_outlier_replacement_is_the_centred_same_weekday_median() -> None:
    values = wiggle(40)
    values[[1, 20]] = [99.0, 1.0]  # one spike near the series start, one dip mid-series
    values[27] = np.nan  # a missing value among the dip's same-weekday neighbours
    long = series("2025-01-05", values)
    params = FeatureParams(outlier_window=9)
    cleaned = clean_series(long, params, SERVERS, CALENDAR)
    assert cleaned.index[cleaned["is_outlier"]].tolist() == [1, 20]
    median = same_weekday_median(values)
    np.testing.assert_allclose(cleaned["value"].iloc[[1, 20]], median[[1, 20]])


def month_end_fleet(months_days: int = 430) -> tuple[pd.DataFrame, np.ndarray]:
    """14 months at ~20 % with +20 points on the last two business days of every month."""
    month_end = month_end_days("2025-01-01", months_days)
    return series("2025-01-01", wiggle(months_days, 20.0) + 20.0 * month_end), month_end


def test_month_end_spikes_are_kept() -> None:
    long, month_end = month_end_fleet()
    # Each stands out among its neighbours and its weekday: without the month tests, flagged.
    unprotected = flag_outliers(long, window=15, threshold=6.0, places={})
    assert unprotected[month_end].mean() > 0.5

    cleaned = clean_series(long, PARAMS, SERVERS, CALENDAR)
    assert not cleaned["is_outlier"].any()
    np.testing.assert_array_equal(cleaned["value"], long["value"])
    # Named or not: with no calendar windows at all, the same.
    assert not clean_series(long, PARAMS, SERVERS, NO_WINDOWS)["is_outlier"].any()
    # The places follow the server's country: Thanksgiving (Thu 27 November 2025) moves the
    # US month end to Wed 26 and Fri 28, which Monday-to-Friday business days do not know.
    monday_to_friday = flag_outliers(long, window=15, threshold=6.0)
    assert long["date"][monday_to_friday].tolist() == [pd.Timestamp("2025-11-26")]


def test_a_real_outlier_on_a_month_end_day_is_caught_and_replaced_by_a_month_end_level() -> None:
    long, month_end = month_end_fleet()
    at = int(np.flatnonzero(long["date"] == pd.Timestamp("2025-05-30"))[0])  # Friday, no Q end
    assert month_end[at] and long.loc[at, "value"] == pytest.approx(40.0, abs=1.0)
    long.loc[at, "value"] += 60.0  # 100 %, where other month ends show 40

    cleaned = clean_series(long, PARAMS, SERVERS, CALENDAR)
    assert cleaned.index[cleaned["is_outlier"]].tolist() == [at]
    # A month-end level, not an ordinary Friday's (about 20).
    assert cleaned["value"].iloc[at] == pytest.approx(40.0, abs=2.0)


def test_an_effect_the_calendar_does_not_name_is_kept() -> None:
    # +15 points on the 10th of every month, whatever its weekday; the calendar has no windows.
    dates = pd.date_range("2025-01-01", periods=430, freq="D")
    tenth = np.asarray(dates.day == 10)
    long = series("2025-01-01", wiggle(430, 40.0) + 15.0 * tenth)
    assert flag_outliers(long, window=15, threshold=6.0, places={})[tenth].mean() > 0.5

    cleaned = clean_series(long, PARAMS, SERVERS, NO_WINDOWS)
    assert not cleaned["is_outlier"].any()

    long.loc[np.flatnonzero(tenth)[6], "value"] += 40.0  # one 10th far beyond the others
    cleaned = clean_series(long, PARAMS, SERVERS, NO_WINDOWS)
    assert cleaned.index[cleaned["is_outlier"]].tolist() == [np.flatnonzero(tenth)[6]]
    assert cleaned["value"].iloc[np.flatnonzero(tenth)[6]] == pytest.approx(55.0, abs=2.0)


def test_a_named_payroll_day_moved_off_a_weekend_is_kept() -> None:
    # Payroll on the 15th, or the business day before it when the 15th is a day off: the
    # 15th's own weekday and day of month move, the window's day does not.
    payroll = CalendarParams(windows={"payroll": {"kind": "day_of_month", "day": 15}})
    dates = pd.date_range("2025-01-01", periods=430, freq="D")
    in_window = window_flags(dates, "US", payroll)["payroll"]
    assert not in_window[np.asarray(dates.day == 15)].all()  # some months pay earlier
    long = series("2025-01-01", wiggle(430, 30.0) + 20.0 * in_window)

    assert not clean_series(long, PARAMS, SERVERS, payroll)["is_outlier"].any()
