"""The calendar's effects on load, shared by CPU and memory.

A weekly shape (weekday business load, weekend dip; a public holiday looks like a Sunday), a
yearly season (Q4 holiday-season peak for retail, European summer dip), a surge on the days of
the business calendar's quarter_end window (quarter-end closing in the finance units), the
month-end rise of some servers on the month_end window's days (``month_end``), and the load ramp
of a server commissioned inside the window. Holidays and windows are the server's country's.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from capacity_forecaster.core.calendar_windows import BUSINESS, calendar_table
from capacity_forecaster.core.params_calendar import CalendarParams

# Weekly load shape Mon..Sun, scaled by a per-server strength: weekday business load, weekend dip.
WEEKLY_SHAPE = (0.05, 0.10, 0.10, 0.05, -0.05, -1.00, -1.10)
FINANCE_BUS = ("Trading", "Risk & Compliance", "Payments")  # quarter-end closing
RETAIL_BUS = ("Retail Banking", "Payments")  # Q4 holiday season
EUROPE_REGIONS = ("eu-west", "eu-central")  # summer holidays


class Effects(NamedTuple):
    """Calendar effects shared by CPU and memory (per server, or days x servers)."""

    weekly_strength: np.ndarray  # depth of the weekend dip per server
    weekly_shape: np.ndarray  # Mon..Sun load shape per day, holidays shaped like a Sunday
    yearly: np.ndarray  # relative seasonal change: Q4 peak, European summer dip
    quarter_end: np.ndarray  # relative surge on the quarter_end window's days
    month_end: np.ndarray  # points of CPU added on the month_end window's days (0: no rise)
    ramp: np.ndarray  # 0..1 load ramp after commissioning inside the window (1 otherwise)


class CalendarDays(NamedTuple):
    """days x servers flags in each server's country."""

    holiday: np.ndarray  # a weekday that is not a business day (public or extra holiday)
    quarter_end: np.ndarray  # the quarter_end window's days (none without that window)
    month_end: np.ndarray  # the month_end window's days (none without that window)


def calendar_days(
    dates: pd.DatetimeIndex, countries: pd.Series, calendar: CalendarParams
) -> CalendarDays:
    """Holidays and the quarter_end and month_end windows per server (one table per country)."""
    codes, uniques = pd.factorize(countries.astype(object), use_na_sentinel=False)
    weekday = np.asarray(dates.day_of_week) < 5
    columns: dict[str, list[np.ndarray]] = {field: [] for field in CalendarDays._fields}
    for country in uniques:
        table = calendar_table(dates, None if pd.isna(country) else str(country), calendar)
        table = table.loc[dates]
        columns["holiday"].append(weekday & ~table[BUSINESS].to_numpy())
        for name in ("quarter_end", "month_end"):
            # Asked of the params, not the table: the table can hold a default window the
            # params dropped (it re-reads them from JSON, which restores the defaults).
            present = calendar.window(name) is not None
            flags = table[name].to_numpy() if present else np.zeros(len(dates), bool)
            columns[name].append(flags)
    empty = np.zeros((len(dates), 0), dtype=bool)
    return CalendarDays(
        *(np.column_stack(parts)[:, codes] if parts else empty for parts in columns.values())
    )


def draw_effects(
    rng: np.random.Generator,
    dates: pd.DatetimeIndex,
    servers: pd.DataFrame,
    first: np.ndarray,
    days_of: CalendarDays,
    month_end_uplift: np.ndarray,
) -> Effects:
    """The calendar effects of a block of servers: ``first`` is each server's first active day,
    ``days_of`` its holidays and window days, ``month_end_uplift`` its month-end rise (points)."""
    n, days = len(servers), len(dates)
    t = np.arange(days)
    bu = servers["business_unit"].to_numpy(dtype=object)
    shape = np.broadcast_to(np.asarray(WEEKLY_SHAPE)[dates.day_of_week][:, None], (days, n))
    eoq_amplitude = np.where(
        np.isin(bu, FINANCE_BUS),
        rng.uniform(0.15, 0.40, n),
        np.where(bu == "Corporate IT", rng.uniform(0.05, 0.15, n), rng.uniform(0.0, 0.05, n)),
    )
    return Effects(
        weekly_strength=_weekly_strength(rng, bu, servers["environment"].to_numpy(dtype=object)),
        weekly_shape=np.where(days_of.holiday, np.minimum(shape, -1.0), shape),  # holiday ~ Sunday
        yearly=_yearly_factor(rng, dates, bu, servers["region"].to_numpy(dtype=object)),
        quarter_end=days_of.quarter_end * eoq_amplitude[None, :],
        month_end=days_of.month_end * month_end_uplift[None, :],
        ramp=np.where(first > 0, np.clip((t[:, None] - first) / rng.uniform(14, 45, n), 0, 1), 1.0),
    )


def _weekly_strength(rng: np.random.Generator, bu: np.ndarray, env: np.ndarray) -> np.ndarray:
    """Depth of the weekend dip per server: deep for business-facing prod, shallow for batch."""
    prod = env == "prod"
    low, high = np.full(len(bu), 0.10), np.full(len(bu), 0.30)  # non-prod: people work weekdays
    for unit, (lo, hi) in {
        "Trading": (0.45, 0.65),  # markets closed at the weekend
        "Retail Banking": (0.25, 0.45),
        "Payments": (0.10, 0.25),  # card payments run all week
        "Risk & Compliance": (0.15, 0.35),
        "Corporate IT": (0.15, 0.35),
    }.items():
        low = np.where(prod & (bu == unit), lo, low)
        high = np.where(prod & (bu == unit), hi, high)
    batch = bu == "Data Platform"  # pipelines run around the clock
    low, high = np.where(batch, 0.0, low), np.where(batch, 0.10, high)
    return rng.uniform(low, high)


def _bump(day_of_year: np.ndarray, centre: float, width: float) -> np.ndarray:
    """A smooth yearly bump (Gaussian on the circular day-of-year distance), peak 1."""
    distance = (day_of_year - centre + 182.5) % 365.25 - 182.5
    return np.exp(-0.5 * (distance / width) ** 2)


def _yearly_factor(
    rng: np.random.Generator, dates: pd.DatetimeIndex, bu: np.ndarray, region: np.ndarray
) -> np.ndarray:
    """days x servers relative change: Q4 holiday-season peak, European summer dip."""
    n = len(bu)
    doy = dates.day_of_year.to_numpy().astype(np.float64)
    q4 = np.where(np.isin(bu, RETAIL_BUS), rng.uniform(0.10, 0.30, n), rng.uniform(0.0, 0.04, n))
    summer = np.where(
        np.isin(region, EUROPE_REGIONS), rng.uniform(0.03, 0.10, n), rng.uniform(0.0, 0.02, n)
    )
    return (
        _bump(doy, 340, 20)[:, None] * q4[None, :] - _bump(doy, 220, 15)[:, None] * summer[None, :]
    )
