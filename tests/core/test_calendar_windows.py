"""The business calendar's windows on known dates: month ends on weekends and holidays, per
country, the user's own windows, extra holidays, and the params that define them."""

from __future__ import annotations

import pandas as pd
import pytest

from capacity_forecaster.core.calendar_windows import (
    NO_WINDOW_AHEAD_DAYS,
    business_days_to_month_end,
    calendar_table,
    days_to_window_end,
    window_flags,
    windows_of_dates,
)
from capacity_forecaster.core.errors import ParamsError
from capacity_forecaster.core.params import parse_params
from capacity_forecaster.core.params_calendar import CalendarParams, CalendarWindow

DEFAULT = CalendarParams()


def _days_in(window: str, start: str, end: str, country: str | None, calendar=DEFAULT) -> list[str]:
    dates = pd.date_range(start, end)
    flags = window_flags(dates, country, calendar)[window]
    return [d.strftime("%Y-%m-%d") for d in dates[flags]]


def test_a_month_end_on_a_weekend_moves_to_the_last_two_business_days() -> None:
    # 2026-01-31 is a Saturday.
    assert _days_in("month_end", "2026-01-20", "2026-02-05", "US") == ["2026-01-29", "2026-01-30"]


def test_a_public_holiday_moves_the_month_end_per_country() -> None:
    # 2026-05-25 is Memorial Day in the US but not in Germany; 2026-05-29 is a Friday in both.
    assert _days_in("month_end", "2026-05-20", "2026-05-31", "US") == ["2026-05-28", "2026-05-29"]
    # 2025-12-31: the 30th and 31st are business days in the US; Germany keeps 24-26 off only.
    assert _days_in("month_end", "2025-12-20", "2025-12-31", "DE") == ["2025-12-30", "2025-12-31"]
    # Whit Monday 2026-05-25 is off in Germany too; the last of May is still the 28th and 29th.
    assert _days_in("month_end", "2026-05-20", "2026-05-31", "DE") == ["2026-05-28", "2026-05-29"]
    # A country the holiday calendar does not know: Monday to Friday only.
    assert _days_in("month_end", "2026-05-20", "2026-05-31", None) == ["2026-05-28", "2026-05-29"]


def test_quarter_and_year_end_skip_holidays_and_extra_days_off() -> None:
    calendar = CalendarParams(extra_holidays={"DE": ["2026-12-30"]})
    # Christmas (25th, Friday) is a holiday, the 26th a Saturday, the 30th an extra day off.
    expected = ["2026-12-23", "2026-12-24", "2026-12-28", "2026-12-29", "2026-12-31"]
    assert _days_in("quarter_end", "2026-12-15", "2026-12-31", "DE", calendar) == expected
    assert _days_in("year_end", "2026-12-15", "2026-12-31", "DE", calendar) == expected
    assert _days_in("month_end", "2026-12-15", "2026-12-31", "DE", calendar) == [
        "2026-12-29",
        "2026-12-31",
    ]
    # The extra day off is Germany's only.
    assert "2026-12-30" in _days_in("month_end", "2026-12-15", "2026-12-31", "FR", calendar)
    # A year end is not a quarter end in March.
    assert _days_in("year_end", "2026-03-01", "2026-03-31", "US") == []


def test_a_payroll_day_on_a_weekend_falls_on_the_business_day_before() -> None:
    calendar = CalendarParams(windows={"payroll": {"kind": "day_of_month", "day": 15}})
    # 2026-08-15 is a Saturday; 2026-07-15 a Wednesday.
    assert _days_in("payroll", "2026-07-01", "2026-08-31", "US", calendar) == [
        "2026-07-15",
        "2026-08-14",
    ]
    # Day 31 in a 30-day month is its last business day.
    eom = CalendarParams(windows={"last": {"kind": "day_of_month", "day": 31, "business_days": 2}})
    assert _days_in("last", "2026-09-01", "2026-09-30", None, eom) == ["2026-09-29", "2026-09-30"]


def test_dated_events_and_days_to_the_windows_end() -> None:
    calendar = CalendarParams(
        windows={"black_friday": CalendarWindow(kind="dates", dates=["2026-11-27"])}
    )
    dates = pd.to_datetime(["2026-11-20", "2026-11-27", "2026-11-28"])
    # Defaults stay beside it: 2026-11-30 is a Monday, so the 27th is a month end too.
    assert windows_of_dates(dates, "US", calendar) == ["", "month_end, black_friday", ""]
    assert list(days_to_window_end(dates, "US", calendar, "black_friday")) == [
        7,
        0,
        NO_WINDOW_AHEAD_DAYS,
    ]
    # Month end: from 2026-01-26 (Monday) to the window's last day, Friday the 30th.
    days = pd.to_datetime(["2026-01-26", "2026-01-29", "2026-01-31"])
    assert list(days_to_window_end(days, "US", DEFAULT, "month_end")) == [4, 1, 27]
    assert list(business_days_to_month_end(days, "US", DEFAULT)) == [4, 1, 0]


def test_a_dropped_default_window_stays_dropped_in_the_shared_table() -> None:
    calendar = CalendarParams(windows={"quarter_end": None})
    table = calendar_table(pd.date_range("2026-01-01", "2026-12-31"), "US", calendar)
    assert "quarter_end" not in table.columns and "month_end" in table.columns
    assert CalendarParams.model_validate_json(calendar.cache_key()) == calendar


def test_the_params_calendar_keeps_its_defaults_beside_the_users_windows() -> None:
    params = parse_params(
        {
            "calendar": {
                "windows": {"payroll": {"kind": "day_of_month", "day": 15}, "year_end": None}
            }
        }
    )
    assert list(params.calendar.windows) == ["month_end", "quarter_end", "payroll"]
    assert params.calendar.windows["month_end"].business_days == 2
    assert list(parse_params({}).calendar.windows) == ["month_end", "quarter_end", "year_end"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"features": {"quarter_end_business_days": 5}},
            "set calendar.windows.quarter_end.business_days instead",
        ),
        ({"calendar": {"windows": {"Pay Day": {"kind": "month_end"}}}}, "calendar.windows.Pay Day"),
        ({"calendar": {"windows": {"pay": {"kind": "day_of_month"}}}}, "needs `day`"),
        ({"calendar": {"windows": {"launch": {"kind": "dates"}}}}, "needs `dates`"),
        ({"calendar": {"windows": [{"kind": "month_end"}]}}, "not a list"),
        ({"calendar": {"extra_holidays": {"germany": ["2026-12-24"]}}}, "extra_holidays.germany"),
    ],
)
def test_a_bad_calendar_is_one_line_naming_the_key(raw: dict, message: str) -> None:
    with pytest.raises(ParamsError) as caught:
        parse_params(raw)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["weekly", "public_holiday", "yhat_upper", "business_day"])
def test_a_window_named_as_a_models_own_component_is_refused(name: str) -> None:
    with pytest.raises(ParamsError, match=f"window name '{name}' is used by the models"):
        parse_params({"calendar": {"windows": {name: {"kind": "day_of_month", "day": 15}}}})
