"""Calendar features for known dates: holidays, business days and windows per country, date parts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from capacity_forecaster.cleaning.calendar_features import CALENDAR_COLUMNS, add_calendar_features
from capacity_forecaster.core.params_calendar import CalendarParams
from tests.cleaning.builders import CALENDAR, NO_WINDOWS, series

SERVERS = pd.DataFrame(
    {
        "server_id": ["s1", "s2", "s3"],
        "region": ["us-east-1", "nowhere-9", "us-east-1"],
        "country": [None, None, "DE"],
    }
)


def three_servers() -> pd.DataFrame:
    return pd.concat(
        [series("2025-03-25", np.ones(300), server) for server in ("s1", "s2", "s3")],
        ignore_index=True,
    )


def at(frame: pd.DataFrame, day: str, column: str, metric: str = "cpu_p95", server: str = "s1"):
    row = frame[
        (frame["date"] == pd.Timestamp(day))
        & (frame["metric"] == metric)
        & (frame["server_id"] == server)
    ]
    assert len(row) == 1, f"expected one row for {server} {metric} {day}, got {len(row)}"
    return row[column].iloc[0]


def test_calendar_flags_for_known_dates() -> None:
    frame = add_calendar_features(three_servers(), SERVERS, CALENDAR)

    assert at(frame, "2025-12-25", "is_holiday")  # Christmas, us-east -> US
    assert not at(frame, "2025-12-25", "is_holiday", server="s2")  # unknown country
    assert at(frame, "2025-12-26", "is_holiday", server="s3")  # DE: 2. Weihnachtstag
    assert not at(frame, "2025-12-26", "is_holiday")
    assert at(frame, "2025-07-04", "is_holiday") and not at(
        frame, "2025-07-04", "is_holiday", server="s3"
    )
    assert at(frame, "2025-03-31", "day_of_week") == 0  # Monday
    assert at(frame, "2025-03-31", "quarter") == 1
    assert at(frame, "2025-03-29", "is_weekend")
    assert at(frame, "2025-12-31", "day_of_year") == 365
    assert at(frame, "2025-12-31", "month") == 12
    assert at(frame, "2025-12-31", "day_of_month") == 31
    assert list(frame.columns[-len(CALENDAR_COLUMNS) :]) == list(CALENDAR_COLUMNS)
    for column in ("day_of_week", "month", "quarter", "day_of_year", "day_of_month"):
        assert frame[column].dtype == np.int64
    assert frame["business_days_to_month_end"].dtype == np.int64
    for column in ("is_weekend", "is_holiday"):
        assert frame[column].dtype == bool


def test_business_days_to_month_end_and_windows_follow_the_servers_country() -> None:
    frame = add_calendar_features(three_servers(), SERVERS, CALENDAR)

    # Q1 2025 ends on Monday 31 March: month end is Fri 28 and Mon 31, quarter end 25-31.
    assert at(frame, "2025-03-31", "business_days_to_month_end") == 0
    assert at(frame, "2025-03-28", "business_days_to_month_end") == 1
    assert at(frame, "2025-03-29", "business_days_to_month_end") == 1  # Saturday
    assert at(frame, "2025-03-31", "calendar_windows") == "month_end, quarter_end"
    assert at(frame, "2025-03-25", "calendar_windows") == "quarter_end"
    assert at(frame, "2025-03-29", "calendar_windows") == ""
    assert at(frame, "2025-12-31", "calendar_windows") == "month_end, quarter_end, year_end"
    assert at(frame, "2025-05-15", "calendar_windows") == ""
    # May 2025: Memorial Day (US, Mon 26) is no business day, so the US has one fewer left.
    assert at(frame, "2025-05-15", "business_days_to_month_end") == 10
    assert at(frame, "2025-05-15", "business_days_to_month_end", server="s2") == 11
    # DE: Ascension Day (Thu 29 May) moves the month end to Wed 28 and Fri 30.
    assert at(frame, "2025-05-29", "calendar_windows") == "month_end"
    assert at(frame, "2025-05-29", "calendar_windows", server="s3") == ""
    assert at(frame, "2025-05-29", "is_holiday", server="s3")
    assert at(frame, "2025-05-28", "calendar_windows", server="s3") == "month_end"
    assert at(frame, "2025-05-28", "calendar_windows") == ""


def test_calendar_windows_name_the_params_windows_and_extra_holidays() -> None:
    payroll = CalendarParams(
        windows={"payroll": {"kind": "day_of_month", "day": 15}},
        extra_holidays={"US": ["2025-12-24"]},
    )
    frame = add_calendar_features(three_servers(), SERVERS, payroll)
    # Sunday 15 June: payroll runs on Friday 13th.
    assert at(frame, "2025-06-13", "calendar_windows") == "payroll"
    assert at(frame, "2025-06-15", "calendar_windows") == ""
    assert at(frame, "2025-12-24", "is_holiday") and not at(
        frame, "2025-12-24", "is_holiday", server="s3"
    )
    # In the US the 24th (extra) and the 25th (public) are no business days.
    assert at(frame, "2025-12-23", "business_days_to_month_end") == 4
    assert at(frame, "2025-12-23", "business_days_to_month_end", server="s2") == 6  # Mon-Fri

    bare = add_calendar_features(three_servers(), SERVERS, NO_WINDOWS)
    assert (bare["calendar_windows"] == "").all()
