"""Calendar features per row of the long grid: weekday, month, quarter, day of month, business
days to month end, the business calendar's windows, and public holidays in each server's
country.

Date parts are computed once per unique date; everything that depends on the country (holidays,
business days, windows: ``core.calendar_windows``) once per country. Cleaning uses the same
per-row lookups to protect business events and to compare a day with the same place in other
months.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from capacity_forecaster.core.calendar import server_countries
from capacity_forecaster.core.calendar_windows import (
    BUSINESS,
    business_days_to_month_end,
    calendar_table,
    days_off,
    rows_by_country,
    window_flags,
    windows_of_dates,
)
from capacity_forecaster.core.params_calendar import CalendarParams

logger = logging.getLogger(__name__)

NOT_PLACED = -1  # a row a place key leaves out of its comparison (outside a window)

CALENDAR_COLUMNS = (
    "day_of_week",
    "month",
    "quarter",
    "day_of_year",
    "day_of_month",
    "is_weekend",
    "business_days_to_month_end",
    "calendar_windows",
    "is_holiday",
)


def add_calendar_features(
    frame: pd.DataFrame, servers: pd.DataFrame, calendar: CalendarParams
) -> pd.DataFrame:
    """Add day_of_week (0=Mon), month, quarter, day_of_year, day_of_month (1-31), is_weekend,
    business_days_to_month_end (0 on the month's last business day), calendar_windows (the
    names of ``calendar``'s windows the day falls in, joined by ", "; "" for none) and
    is_holiday (a public or extra holiday in the server's country).

    Business days, windows and holidays follow each server's country (``row_countries``).
    """
    codes, uniques = pd.factorize(frame["date"])
    dates = pd.DatetimeIndex(uniques)
    weekday = np.asarray(dates.day_of_week, dtype=np.int64)
    per_date = {
        "day_of_week": weekday,
        "month": np.asarray(dates.month, dtype=np.int64),
        "quarter": np.asarray(dates.quarter, dtype=np.int64),
        "day_of_year": np.asarray(dates.day_of_year, dtype=np.int64),
        "day_of_month": np.asarray(dates.day, dtype=np.int64),
        "is_weekend": weekday >= 5,
    }
    columns: dict[str, Any] = {name: values[codes] for name, values in per_date.items()}
    countries = row_countries(frame, servers)
    columns["business_days_to_month_end"] = month_end_distance_rows(frame, countries, calendar)
    names = rows_by_country(
        frame["date"],
        countries,
        lambda d, c: np.asarray(windows_of_dates(d, c, calendar), dtype=object),
    )
    columns["calendar_windows"] = pd.array(names, dtype="str")
    columns["is_holiday"] = holiday_rows(frame, countries, calendar)
    return frame.assign(**columns)


def row_countries(frame: pd.DataFrame, servers: pd.DataFrame, *, warn: bool = True) -> np.ndarray:
    """Per row, its server's ISO country (None where unknown: Monday to Friday, no holidays)."""
    server_codes, server_ids = pd.factorize(frame["server_id"])
    country = server_countries(servers).reindex(server_ids)
    unknown = int(country.isna().sum())
    if unknown and warn:
        logger.warning(
            "%d server(s) with no known country: no holidays there, business days are Monday to "
            "Friday",
            unknown,
        )
    per_server = country.astype(object).where(country.notna(), None).to_numpy(dtype=object)
    return per_server[server_codes] if len(frame) else np.zeros(0, dtype=object)


def holiday_rows(
    frame: pd.DataFrame, countries: np.ndarray, calendar: CalendarParams
) -> np.ndarray:
    """Per row, True on a public holiday in its country or one of the calendar's extra
    holidays there (``countries`` from ``row_countries``)."""
    if len(frame) == 0:
        return np.zeros(0, dtype=bool)

    return rows_by_country(
        frame["date"], countries, lambda days, country: days_off(days, country, calendar)
    ).astype(bool)


def business_day_rows(
    frame: pd.DataFrame, countries: np.ndarray, calendar: CalendarParams
) -> np.ndarray:
    """Per row, True on a business day of its country (Monday to Friday less holidays)."""

    def business(days: pd.DatetimeIndex, country: str | None) -> np.ndarray:
        table = calendar_table(days, country, calendar)
        return table[BUSINESS].to_numpy()[table.index.get_indexer(days.normalize())]

    return rows_by_country(frame["date"], countries, business).astype(bool)


def month_end_distance_rows(
    frame: pd.DataFrame, countries: np.ndarray, calendar: CalendarParams
) -> np.ndarray:
    """Per row, the business days after it up to its month's end, in its country."""
    return rows_by_country(
        frame["date"], countries, lambda d, c: business_days_to_month_end(d, c, calendar)
    ).astype(np.int64)


def window_rows(
    frame: pd.DataFrame, countries: np.ndarray, calendar: CalendarParams
) -> dict[str, np.ndarray]:
    """Per window of ``calendar``, True on the rows whose day falls in it, in their country."""
    names = list(calendar.windows)
    if not names:
        return {}

    def flags(days: pd.DatetimeIndex, country: str | None) -> np.ndarray:
        by_name = window_flags(days, country, calendar)
        return np.column_stack([by_name[name] for name in names])  # one column per window

    table = rows_by_country(frame["date"], countries, flags).astype(bool)
    return {name: table[:, i] for i, name in enumerate(names)}


def month_places(
    frame: pd.DataFrame, countries: np.ndarray, calendar: CalendarParams
) -> dict[str, np.ndarray]:
    """Where each row sits in its month, in the ways cleaning compares it with the same place
    in other months (equal keys, same place; ``NOT_PLACED``: not compared), most specific
    first: its day within each monthly window of ``calendar`` (days of the window after it),
    its business days to month end (business days and days off apart) and its day of month."""
    places = {
        name: _window_position_rows(frame, countries, calendar, name)
        for name, window in calendar.windows.items()
        if window.monthly
    }
    business = business_day_rows(frame, countries, calendar)
    to_month_end = month_end_distance_rows(frame, countries, calendar)
    places["business_days_to_month_end"] = 2 * to_month_end + business
    places["day_of_month"] = np.asarray(pd.DatetimeIndex(frame["date"]).day, dtype=np.int64)
    return places


def _window_position_rows(
    frame: pd.DataFrame, countries: np.ndarray, calendar: CalendarParams, name: str
) -> np.ndarray:
    """Per row, the days of window ``name`` after it in its month (0 on the window's last day),
    ``NOT_PLACED`` outside the window."""

    def position(days: pd.DatetimeIndex, country: str | None) -> np.ndarray:
        table = calendar_table(days, country, calendar)  # whole years, in order
        inside = table[name].to_numpy()
        month = np.asarray(pd.DatetimeIndex(table.index).to_period("M").asi8)
        counts = pd.Series(inside.astype(np.int64))
        after = counts[::-1].groupby(month[::-1]).cumsum()[::-1].to_numpy() - counts.to_numpy()
        return np.where(inside, after, NOT_PLACED)[table.index.get_indexer(days.normalize())]

    return rows_by_country(frame["date"], countries, position).astype(np.int64)
