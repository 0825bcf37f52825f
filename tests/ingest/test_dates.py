"""Dates with time zones: converted to UTC, or the local day kept for local midnights, with a
warning; dates that do not parse: named by their line, day-first ones with a hint."""

from __future__ import annotations

import pandas as pd
import pytest

from capacity_forecaster.core.errors import DataValidationError
from capacity_forecaster.ingest.validate import validate_metrics
from tests.ingest.builders import M_SRC, MAX_MISSING, MIN_DAYS, check_metrics, make_metrics


def test_timezone_aware_dates_are_converted_to_utc_with_a_warning() -> None:
    good = make_metrics()
    aware = good.assign(date=good["date"].dt.tz_localize("UTC").dt.tz_convert("America/New_York"))
    clean, warnings = check_metrics(aware)
    pd.testing.assert_frame_equal(clean, good)
    assert len(warnings) == 1 and "UTC" in warnings[0] and "'date'" in warnings[0]


def test_timestamps_in_two_time_zones_are_converted_to_utc() -> None:
    good = make_metrics()
    mixed = [
        day.tz_localize("UTC").tz_convert("Asia/Tokyo" if i % 2 else "UTC")
        for i, day in enumerate(good["date"])
    ]
    clean, warnings = check_metrics(good.assign(date=pd.Series(mixed, dtype=object)))
    pd.testing.assert_frame_equal(clean, good)
    assert any("time-zone-aware" in w for w in warnings)


def test_timezone_offsets_in_text_are_converted_to_utc_with_a_warning() -> None:
    good = make_metrics()
    text = good["date"].dt.strftime("%Y-%m-%dT%H:%M:%S").astype(object)
    text.iloc[::2] = text.iloc[::2] + "+00:00"
    text.iloc[1::2] = text.iloc[1::2].str.replace("T00:00:00", "T02:00:00") + "+02:00"
    clean, warnings = check_metrics(good.assign(date=text))
    pd.testing.assert_frame_equal(clean, good)
    assert any("time-zone-aware" in w for w in warnings)


@pytest.mark.parametrize("as_text", [False, True], ids=["datetime-dtype", "csv-text"])
def test_local_midnights_east_of_utc_keep_their_local_day(as_text: bool) -> None:
    # Berlin midnights are 23:00 of the previous day in UTC; across the March DST change the
    # offset moves from +01:00 to +02:00. The exporter meant the local day.
    good = make_metrics(start="2025-03-20")
    local = good["date"].dt.tz_localize("Europe/Berlin")
    dates = local.map(lambda t: t.isoformat()).astype(object) if as_text else local
    clean, warnings = check_metrics(good.assign(date=dates))
    pd.testing.assert_frame_equal(clean, good)
    assert len(warnings) == 1 and "local calendar day kept" in warnings[0]


def _dates_error(dates: pd.Series, source: str = M_SRC) -> str:
    """The error validating a good frame whose ``date`` column is ``dates``."""
    with pytest.raises(DataValidationError) as caught:
        validate_metrics(
            make_metrics().assign(date=dates),
            source,
            max_missing_share=MAX_MISSING,
            min_history_days=MIN_DAYS,
        )
    return str(caught.value)


@pytest.mark.parametrize("written", ["%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y %H:%M"])
def test_day_first_dates_get_a_hint(written: str) -> None:
    # pandas reads 01/02/2025 as 2 January: only the days above 12 fail, all are misread.
    dates = make_metrics()["date"].dt.strftime(written)
    message = _dates_error(dates)
    assert "column 'date': 57 unparseable or out-of-range dates" in message
    assert "the first at line 14" in message  # 2025-01-13, after the header and 12 rows
    first = pd.Timestamp("2025-01-13").strftime(written)
    assert f"look day-first (day/month/year: '{first}' is 2025-01-13)" in message
    assert "write every date as YYYY-MM-DD" in message


def test_an_unparseable_date_is_named_by_its_line_or_row() -> None:
    dates = make_metrics()["date"].dt.strftime("%Y-%m-%d")
    dates.iloc[3] = "2025-02-30"
    assert "1 unparseable or out-of-range date (e.g. '2025-02-30') at line 5;" in _dates_error(
        dates
    )
    assert "at data row 4;" in _dates_error(dates, "metrics.parquet")
    assert "expected dates like '2024-01-31'" in _dates_error(dates)  # no day-first hint
