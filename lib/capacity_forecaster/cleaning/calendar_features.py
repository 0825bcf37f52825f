"""Calendar features per row of the long grid: weekday, month, quarter, the quarter-end window,
days to quarter end, and public holidays in each server's country.

Date features are computed once per unique date, holidays once per country (the calendar
itself is ``core.calendar``). Cleaning uses the same per-row lookups to protect business events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from capacity_forecaster.core.calendar import (
    country_for_region,
    days_to_quarter_end,
    holiday_mask,
    quarter_end_window,
)

logger = logging.getLogger(__name__)

CALENDAR_COLUMNS = (
    "day_of_week",
    "month",
    "quarter",
    "day_of_year",
    "is_weekend",
    "is_eoq_window",
    "days_to_quarter_end",
    "is_holiday",
)


def add_calendar_features(
    frame: pd.DataFrame, servers: pd.DataFrame, quarter_end_business_days: int
) -> pd.DataFrame:
    """Add day_of_week (0=Mon), month, quarter, day_of_year, is_weekend, is_eoq_window,
    days_to_quarter_end and is_holiday (public holiday in the server's country).

    Date features are computed once per unique date, holidays once per country.
    """
    codes, uniques = pd.factorize(frame["date"])
    dates = pd.DatetimeIndex(uniques)
    weekday = np.asarray(dates.day_of_week, dtype=np.int64)
    per_date = {
        "day_of_week": weekday,
        "month": np.asarray(dates.month, dtype=np.int64),
        "quarter": np.asarray(dates.quarter, dtype=np.int64),
        "day_of_year": np.asarray(dates.day_of_year, dtype=np.int64),
        "is_weekend": weekday >= 5,
        "is_eoq_window": quarter_end_window(dates, quarter_end_business_days),
        "days_to_quarter_end": days_to_quarter_end(dates).astype(np.int64),
    }
    columns: dict[str, np.ndarray] = {name: values[codes] for name, values in per_date.items()}
    columns["is_holiday"] = holiday_rows(frame, servers)
    return frame.assign(**columns)


def by_date(dates: pd.Series, func: Callable[[pd.DatetimeIndex], np.ndarray]) -> np.ndarray:
    """Apply a date-vectorised ``func`` to the unique dates only, then spread it to the rows."""
    codes, uniques = pd.factorize(dates)
    return np.asarray(func(pd.DatetimeIndex(uniques)))[codes]


def holiday_rows(frame: pd.DataFrame, servers: pd.DataFrame, *, warn: bool = True) -> np.ndarray:
    """Per row, True on a public holiday in its server's country (computed per country)."""
    if len(frame) == 0:
        return np.zeros(0, dtype=bool)
    server_codes, server_ids = pd.factorize(frame["server_id"])
    date_codes, dates = pd.factorize(frame["date"])
    country = _server_countries(servers).reindex(server_ids)
    unknown = int(country.isna().sum())
    if unknown and warn:
        logger.warning(
            "%d server(s) with no known country: holidays are not flagged there", unknown
        )
    country_codes, countries = pd.factorize(country)  # missing -> -1 -> the all-False last row
    table = np.zeros((len(countries) + 1, len(dates)), dtype=bool)
    for i, code in enumerate(countries):  # one holiday lookup per country, not per row
        table[i] = holiday_mask(pd.DatetimeIndex(dates), str(code))
    return table[country_codes[server_codes], date_codes]


def _server_countries(servers: pd.DataFrame) -> pd.Series:
    """ISO country per server_id: the ``country`` column where set, else from ``region``."""
    if "region" not in servers.columns and "country" not in servers.columns:
        raise ValueError("servers frame needs a region or country column for the holiday calendar")
    table = servers.drop_duplicates("server_id").set_index("server_id")
    if len(table) < len(servers):
        logger.warning("servers: %d duplicate server_id rows ignored", len(servers) - len(table))
    country = pd.Series(None, index=table.index, dtype=object)
    if "region" in table.columns:
        regions = table["region"].dropna().unique()
        lookup = {region: country_for_region(region) for region in regions}
        country = table["region"].map(lookup).astype(object)
    if "country" in table.columns:
        given = table["country"].astype(object).where(table["country"].notna())
        given = given.map(lambda c: str(c).strip().upper() or None, na_action="ignore")
        country = given.where(given.notna(), country)
    return country.where(country.notna(), None)
