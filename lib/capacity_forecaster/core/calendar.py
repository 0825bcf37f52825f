"""Business calendar shared by every stage: public holidays by region, quarter-end windows."""

from __future__ import annotations

import functools
import logging

import holidays
import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

# Region name (ours, or a cloud provider's such as "eu-central-1") to the ISO country whose
# public holidays apply there. Longest matching prefix wins.
REGION_COUNTRY: dict[str, str] = {
    "us-east": "US",
    "us-west": "US",
    "us-central": "US",
    "ca-central": "CA",
    "sa-east": "BR",
    "eu-west-1": "IE",
    "eu-west-2": "GB",
    "eu-west-3": "FR",
    "eu-west": "GB",
    "eu-central": "DE",
    "eu-north": "SE",
    "eu-south": "IT",
    "ap-south": "IN",
    "ap-southeast-2": "AU",
    "ap-southeast": "SG",
    "ap-northeast-1": "JP",
    "ap-northeast-2": "KR",
    "ap-northeast": "JP",
    "ap-east": "HK",
}

QUARTER_END_MONTHS = (3, 6, 9, 12)
YEAR_DAYS = 364  # 52 weeks: the same season, on the same weekdays, a year earlier
# History (first to last day, inclusive) from which a model fits the yearly cycle: Prophet's
# yearly seasonality, and the tree models' values from a year before.
YEARLY_CYCLE_DAYS = 365


def server_countries(servers: pd.DataFrame) -> pd.Series:
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
    # None, never NaN, for an unknown country: callers test ``country is None``.
    return pd.Series(
        [c if isinstance(c, str) else None for c in country], index=country.index, dtype=object
    )


def country_for_region(region: str) -> str | None:
    """The ISO country code whose holidays apply in ``region``, or None when unknown."""
    key = str(region).strip().lower()
    matches = [prefix for prefix in REGION_COUNTRY if key.startswith(prefix)]
    return REGION_COUNTRY[max(matches, key=len)] if matches else None


@functools.lru_cache(maxsize=256)
def _holiday_days(country: str, first_year: int, last_year: int) -> frozenset[pd.Timestamp]:
    # Pure and small, so caching it is safe and saves rebuilding the calendar per server.
    calendar = holidays.country_holidays(country, years=range(first_year, last_year + 1))
    return frozenset(pd.Timestamp(day) for day in calendar)


def holiday_mask(dates: pd.DatetimeIndex | pd.Series, country: str | None) -> np.ndarray:
    """True where a date is a public holiday in ``country`` (all False when country is None)."""
    index = pd.DatetimeIndex(dates).normalize()
    if country is None or len(index) == 0:
        return np.zeros(len(index), dtype=bool)
    try:
        days = _holiday_days(country, index.min().year, index.max().year)
    except NotImplementedError:
        logger.warning(
            "no holiday calendar for country %r: holidays are not flagged there", country
        )
        return np.zeros(len(index), dtype=bool)
    return index.isin(list(days))


def holiday_table(countries: list[str], start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Holidays as a frame (``country``, ``date``, ``holiday``) for the given countries and span."""
    rows = []
    for country in sorted(set(countries)):
        try:
            calendar = holidays.country_holidays(country, years=range(start.year, end.year + 1))
        except NotImplementedError:
            continue
        rows += [(country, pd.Timestamp(day), name) for day, name in calendar.items()]
    table = pd.DataFrame(rows, columns=["country", "date", "holiday"])
    return table[(table["date"] >= start) & (table["date"] <= end)].sort_values(
        ["country", "date"], ignore_index=True
    )


def quarter_ends(dates: pd.DatetimeIndex | pd.Series) -> pd.DatetimeIndex:
    """For each date, the last calendar day of its quarter."""
    index = pd.DatetimeIndex(dates).normalize()
    return (index.to_period("Q").end_time).normalize()


def days_to_quarter_end(dates: pd.DatetimeIndex | pd.Series) -> np.ndarray:
    """Calendar days from each date to the last day of its quarter (0 on that day)."""
    index = pd.DatetimeIndex(dates).normalize()
    return np.asarray((quarter_ends(index) - index).days, dtype=np.int64)


def quarter_end_window(dates: pd.DatetimeIndex | pd.Series, business_days: int = 5) -> np.ndarray:
    """True on the last ``business_days`` business days (Mon-Fri) of each quarter.

    End-of-quarter load (financial close, reporting, batch) concentrates there.
    """
    index = pd.DatetimeIndex(dates).normalize()
    if len(index) == 0:
        return np.zeros(0, dtype=bool)
    ends = quarter_ends(index)
    # Business days strictly after each date up to and including its quarter end.
    remaining = np.busday_count(
        (index + pd.Timedelta(days=1)).values.astype("datetime64[D]"),
        (ends + pd.Timedelta(days=1)).values.astype("datetime64[D]"),
    )
    is_business_day = np.is_busday(index.values.astype("datetime64[D]"))
    return is_business_day & (remaining < business_days)
