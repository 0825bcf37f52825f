"""The calendar's effects on load, shared by CPU and memory.

A weekly shape (weekday business load, weekend dip; a public holiday looks like a Sunday), a
yearly season (Q4 holiday-season peak for retail, European summer dip), a spike on the last
business days of each quarter (month/quarter-end closing in the finance units), and the load
ramp of a server commissioned inside the window.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from capacity_forecaster.core.calendar import holiday_mask

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
    quarter_end: np.ndarray  # relative spike on the last business days of each quarter
    ramp: np.ndarray  # 0..1 load ramp after commissioning inside the window (1 otherwise)


def holiday_matrix(dates: pd.DatetimeIndex, countries: pd.Series) -> np.ndarray:
    """days x servers: True on a public holiday in the server's country (one calendar per country)."""
    codes, uniques = pd.factorize(countries.astype(object), use_na_sentinel=False)
    by_country = np.column_stack(
        [holiday_mask(dates, None if pd.isna(c) else str(c)) for c in uniques]
        or [np.zeros(len(dates), bool)]
    )
    return by_country[:, codes]


def draw_effects(
    rng: np.random.Generator,
    dates: pd.DatetimeIndex,
    servers: pd.DataFrame,
    first: np.ndarray,
    holidays: np.ndarray,
    in_window: np.ndarray,
) -> Effects:
    """The calendar effects of a block of servers: ``first`` is each server's first active day,
    ``holidays`` the days x servers holiday mask, ``in_window`` the quarter-end days."""
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
        weekly_shape=np.where(holidays, np.minimum(shape, -1.0), shape),  # holiday ~ Sunday
        yearly=_yearly_factor(rng, dates, bu, servers["region"].to_numpy(dtype=object)),
        quarter_end=in_window.astype(np.float64)[:, None] * eoq_amplitude[None, :],
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
