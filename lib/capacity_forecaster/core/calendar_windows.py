"""The business calendar's windows on real dates, per country.

Business days are Monday to Friday less the country's public holidays (``core.calendar``) and
the params' extra holidays, so a month end that falls on a weekend or a holiday moves to the
business days before it, as a close does. Each window is computed once per country over whole
years (``calendar_table``) and looked up for any dates; rows of a long frame are looked up per
country (``rows_by_country``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from capacity_forecaster.core.calendar import holiday_mask
from capacity_forecaster.core.params_calendar import CalendarParams, CalendarWindow

BUSINESS = "business_day"
NO_WINDOW_AHEAD_DAYS = 400  # "days to the window's end" when none lies ahead in the table
_PERIOD = {"month_end": "M", "quarter_end": "Q", "year_end": "Y"}


def days_off(
    dates: pd.DatetimeIndex | pd.Series, country: str | None, calendar: CalendarParams
) -> np.ndarray:
    """True on the dates that are a public holiday in ``country`` or one of the params' extra
    holidays there (all False for an unknown country: no holiday is known there)."""
    index = pd.DatetimeIndex(dates).normalize()
    extra = pd.DatetimeIndex(pd.to_datetime(list(calendar.extra_holidays.get(country or "", ()))))
    return holiday_mask(index, country) | np.asarray(index.isin(extra))


def _business_days(
    days: pd.DatetimeIndex, country: str | None, calendar: CalendarParams
) -> np.ndarray:
    return (np.asarray(days.day_of_week) < 5) & ~days_off(days, country, calendar)


def _business_days_after(days: pd.DatetimeIndex, business: np.ndarray, freq: str) -> np.ndarray:
    """Per day, the business days after it up to the end of its period (month, quarter, year)."""
    period = pd.Series(np.asarray(days.to_period(freq).asi8))
    counts = pd.Series(business.astype(np.int64))
    # Business days from each day to the end of its period, itself included; less itself.
    from_end = counts[::-1].groupby(period[::-1]).cumsum()[::-1]
    return (from_end - counts).to_numpy()


def _day_of_month_mask(
    days: pd.DatetimeIndex, business: np.ndarray, window: CalendarWindow
) -> np.ndarray:
    """The ``business_days`` business days ending on ``day`` of each month, or on the last
    business day before it (day 31 in a 30-day month is its last day)."""
    assert window.day is not None
    last_day = np.minimum(window.day, np.asarray(days.days_in_month))
    on_or_before = np.asarray(days.day) <= last_day
    candidate = business & on_or_before
    # Counting back from the anchor: candidate business days after each day, within its month.
    period = pd.Series(np.asarray(days.to_period("M").asi8))
    counts = pd.Series(candidate.astype(np.int64))
    after = (counts[::-1].groupby(period[::-1]).cumsum()[::-1] - counts).to_numpy()
    return candidate & (after < window.business_days)


def window_mask(days: pd.DatetimeIndex, business: np.ndarray, window: CalendarWindow) -> np.ndarray:
    """True on the days of ``window`` among ``days``: whole, contiguous periods (see
    ``calendar_table``), ``business`` the business-day flags of those days."""
    if window.kind in _PERIOD:
        after = _business_days_after(days, business, _PERIOD[window.kind])
        return business & (after < window.business_days)
    if window.kind == "day_of_month":
        return _day_of_month_mask(days, business, window)
    return np.asarray(days.isin(pd.DatetimeIndex(pd.to_datetime(list(window.dates)))))


@functools.lru_cache(maxsize=64)
def _cached_table(country: str | None, first_year: int, last_year: int, key: str) -> pd.DataFrame:
    # Pure, and built from whole years: cached per country and calendar (``key``).
    calendar = CalendarParams.model_validate_json(key)
    days = pd.date_range(f"{first_year}-01-01", f"{last_year}-12-31", freq="D")
    business = _business_days(days, country, calendar)
    columns: dict[str, np.ndarray] = {BUSINESS: business}
    columns["business_days_to_month_end"] = _business_days_after(days, business, "M")
    for name, window in calendar.windows.items():
        columns[name] = window_mask(days, business, window)
    return pd.DataFrame(columns, index=days)


def calendar_table(
    dates: pd.DatetimeIndex | pd.Series | Sequence[pd.Timestamp],
    country: str | None,
    calendar: CalendarParams,
) -> pd.DataFrame:
    """Per day of the whole years around ``dates`` (and the year after, so a window lies
    ahead of every date): ``business_day``, ``business_days_to_month_end`` and one bool column
    per window, indexed by day. Do not modify it: it is shared."""
    index = pd.DatetimeIndex(pd.to_datetime(list(dates) if isinstance(dates, Sequence) else dates))
    if len(index) == 0:
        index = pd.DatetimeIndex([pd.Timestamp("2000-01-01")])
    return _cached_table(country, index.min().year, index.max().year + 1, calendar.cache_key())


def _lookup(table: pd.DataFrame, dates: pd.DatetimeIndex, column: str) -> np.ndarray:
    positions = table.index.get_indexer(dates.normalize())
    return table[column].to_numpy()[positions]


def window_flags(
    dates: pd.DatetimeIndex | pd.Series, country: str | None, calendar: CalendarParams
) -> dict[str, np.ndarray]:
    """Per window name, True on the given dates that fall in it (in ``country``)."""
    index = pd.DatetimeIndex(dates)
    table = calendar_table(index, country, calendar)
    return {name: _lookup(table, index, name) for name in calendar.windows}


def business_days_to_month_end(
    dates: pd.DatetimeIndex | pd.Series, country: str | None, calendar: CalendarParams
) -> np.ndarray:
    """Business days after each date up to its month's end (0 on the last business day)."""
    index = pd.DatetimeIndex(dates)
    return _lookup(calendar_table(index, country, calendar), index, "business_days_to_month_end")


def days_to_window_end(
    dates: pd.DatetimeIndex | pd.Series, country: str | None, calendar: CalendarParams, name: str
) -> np.ndarray:
    """Calendar days from each date to the last day of the current or next occurrence of
    window ``name`` (0 on that day; ``NO_WINDOW_AHEAD_DAYS`` when none lies ahead)."""
    index = pd.DatetimeIndex(dates)
    table = calendar_table(index, country, calendar)
    inside = table[name].to_numpy()
    # An occurrence ends on a window day whose next business day is outside the window.
    business_days = np.flatnonzero(table[BUSINESS].to_numpy() | inside)
    ends = np.zeros(len(inside), dtype=bool)
    window_days = business_days[inside[business_days]]
    following = np.searchsorted(business_days, window_days, side="right")
    last = following >= len(business_days)
    nxt = business_days[np.minimum(following, len(business_days) - 1)]
    ends[window_days[last | ~inside[nxt]]] = True
    end_positions = np.flatnonzero(ends)
    positions = table.index.get_indexer(index.normalize())
    ahead = np.searchsorted(end_positions, positions, side="left")
    found = ahead < len(end_positions)
    distance = end_positions[np.minimum(ahead, len(end_positions) - 1)] - positions
    return np.where(found & (len(end_positions) > 0), distance, NO_WINDOW_AHEAD_DAYS)


def windows_of_dates(
    dates: pd.DatetimeIndex | pd.Series, country: str | None, calendar: CalendarParams
) -> list[str]:
    """Per date, the names of the windows it falls in, joined by ', ' ('' for none)."""
    flags = window_flags(dates, country, calendar)
    names = list(flags)
    return [
        ", ".join(name for name in names if flags[name][i])
        for i in range(len(pd.DatetimeIndex(dates)))
    ]


def rows_by_country(
    dates: pd.Series,
    countries: pd.Series | np.ndarray,
    compute: Callable[[pd.DatetimeIndex, str | None], np.ndarray],
) -> np.ndarray:
    """``compute(unique dates, country)`` spread to rows: one call per country, not per row.

    ``countries`` is per row (None or NaN: no known country, Monday-Friday only)."""
    values = pd.Series(np.asarray(countries, dtype=object)).where(
        pd.notna(pd.Series(np.asarray(countries, dtype=object))), None
    )
    country_codes, country_names = pd.factorize(values, use_na_sentinel=True)
    date_codes, unique_dates = pd.factorize(pd.Series(np.asarray(dates)))
    day_index = pd.DatetimeIndex(unique_dates)
    groups: list[str | None] = [*(str(c) for c in country_names), None]
    table = np.stack([np.asarray(compute(day_index, country)) for country in groups])
    return table[country_codes, date_codes]  # -1 (no country) reads the last row


def window_label(name: str) -> str:
    """A window's name as a reader says it: ``month_end`` -> ``month end``."""
    return name.replace("_", " ")
