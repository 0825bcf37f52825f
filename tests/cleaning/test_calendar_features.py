"""Calendar features for known dates: holidays per country, quarter-end window, date parts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from capacity_forecaster.cleaning.calendar_features import add_calendar_features
from tests.cleaning.builders import series


def at(frame: pd.DataFrame, day: str, column: str, metric: str = "cpu_p95", server: str = "s1"):
    row = frame[
        (frame["date"] == pd.Timestamp(day))
        & (frame["metric"] == metric)
        & (frame["server_id"] == server)
    ]
    assert len(row) == 1, f"expected one row for {server} {metric} {day}, got {len(row)}"
    return row[column].iloc[0]


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
