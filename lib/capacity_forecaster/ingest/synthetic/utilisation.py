"""Utilisation per metric: who behaves how (archetypes), then daily P95 CPU, memory and disk.

Each server draws an archetype (steady, idle, over-provisioned or hot). CPU follows a trend
times the calendar's effects (``seasonality``) plus AR(1) noise; memory sits higher, with slow
drift and leaks that restarts drop back; disk grows steadily with cleanups when it fills up.
Hot servers grow towards a breach a few months after the window ends, in one metric; a hot-CPU
server that rises at month end heads for a breach on month-end days only (``month_end``).
Month-end rises are added in points on top. Every function returns a days x servers matrix.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from capacity_forecaster.ingest.synthetic.inventory import draw_by_group
from capacity_forecaster.ingest.synthetic.month_end import (
    DISK_SHARE,
    MEMORY_SHARE,
    MonthEnd,
    ordinary_level,
)
from capacity_forecaster.ingest.synthetic.seasonality import WEEKLY_SHAPE, Effects

STEADY, IDLE, OVER_PROVISIONED, HOT = 0, 1, 2, 3
ARCHETYPE_NAMES = ("steady", "idle", "over_provisioned", "hot")
ARCHETYPES_BY_ENV = {  # steady, idle, over-provisioned, hot
    "prod": (0.59, 0.04, 0.22, 0.15),
    "staging": (0.56, 0.10, 0.28, 0.06),
    "dev": (0.48, 0.18, 0.30, 0.04),
    "test": (0.48, 0.18, 0.30, 0.04),
}
HOT_METRIC_SHARES = (0.4, 0.25, 0.35)  # which metric of a hot server heads for a breach
DECLINING_SHARE = 0.06  # of steady and over-provisioned servers whose load shrinks


class Behaviour(NamedTuple):
    """Per server: its archetype, the metric (0..2) a hot server breaches (-1 if none) and
    whether its load declines."""

    archetype: np.ndarray
    hot_metric: np.ndarray
    declining: np.ndarray


def draw_behaviour(rng: np.random.Generator, environment: np.ndarray) -> Behaviour:
    """Archetype, hot metric and decline per server, by environment."""
    n = len(environment)
    archetype = _draw_archetypes(rng, environment)
    hot_metric = np.where(archetype == HOT, rng.choice(3, n, p=list(HOT_METRIC_SHARES)), -1)
    declining = np.isin(archetype, (STEADY, OVER_PROVISIONED)) & (rng.random(n) < DECLINING_SHARE)
    return Behaviour(archetype, hot_metric, declining)


def cpu(
    rng: np.random.Generator,
    t: np.ndarray,
    archetype: np.ndarray,
    hot: np.ndarray,
    declining: np.ndarray,
    effects: Effects,
    month_end: MonthEnd,
) -> np.ndarray:
    """days x servers CPU P95: trend x weekly x yearly x quarter-end, plus AR(1) noise, plus the
    month-end rise; month-end breachers (``month_end.breach``) follow their own trend."""
    n = len(archetype)
    level = np.select(
        [archetype == IDLE, archetype == OVER_PROVISIONED, archetype == HOT],
        [rng.uniform(0.6, 2.6, n), rng.uniform(5.0, 18.0, n), rng.uniform(35.0, 60.0, n)],
        rng.uniform(15.0, 50.0, n),
    )
    growth = np.select(
        [declining, archetype == IDLE, archetype == OVER_PROVISIONED],
        [rng.uniform(-0.45, -0.20, n), np.zeros(n), rng.normal(0.03, 0.05, n)],
        rng.normal(0.06, 0.08, n),
    )
    base = _trend(t, level, growth)
    base[:, hot] = _growth_to_breach(rng, t, int(hot.sum()), 80.0, 40.0, 72.0)
    e = effects
    strength = np.where(archetype == IDLE, 0.5, 1.0) * e.weekly_strength
    seasons = (1.0 + e.yearly) * (1.0 + e.quarter_end)
    # A month-end breacher's load is the close's: no season or quarter-end surge of its own
    # that could cross the threshold on other days; its busiest weekday sits on its trend.
    breach = month_end.breach
    seasons[:, breach] = 1.0
    busiest = 1.0 + strength[breach] * max(WEEKLY_SHAPE)
    ordinary = ordinary_level(t - t[-1], MonthEnd(*(field[breach] for field in month_end)))
    base[:, breach] = ordinary / busiest
    factor = (1.0 + strength[None, :] * e.weekly_shape) * seasons
    cv = np.where(archetype == IDLE, rng.uniform(0.05, 0.12, n), rng.uniform(0.04, 0.09, n))
    noise = _ar1(rng, len(t), rng.uniform(0.4, 0.8, n)) * cv[None, :]
    ramp = 0.35 + 0.65 * e.ramp
    return base * ramp * (factor + noise) + e.month_end * ramp


def memory(
    rng: np.random.Generator,
    t: np.ndarray,
    archetype: np.ndarray,
    hot: np.ndarray,
    declining: np.ndarray,
    effects: Effects,
) -> np.ndarray:
    """days x servers memory P95: higher base, weak weekly pattern, slow drift, leaks and restarts."""
    n, days = len(archetype), len(t)
    level = np.select(
        [archetype == IDLE, archetype == OVER_PROVISIONED, archetype == HOT],
        [rng.uniform(12.0, 30.0, n), rng.uniform(15.0, 35.0, n), rng.uniform(45.0, 70.0, n)],
        rng.uniform(40.0, 68.0, n),
    )
    growth = np.where(declining, rng.uniform(-0.25, -0.10, n), rng.normal(0.02, 0.04, n))
    base = _trend(t, level, growth)
    base[:, hot] = _growth_to_breach(rng, t, int(hot.sum()), 85.0, 50.0, 82.0)

    # Leaks grow memory between restarts (deploys, patching), which drop it back: a sawtooth.
    leaky = (rng.random(n) < 0.35) & ~hot
    leak_rate = np.where(leaky, rng.uniform(0.02, 0.12, n), rng.uniform(0.0, 0.01, n))
    restart_rate = np.where(leaky, 1.0 / rng.uniform(30, 90, n), 1.0 / rng.uniform(60, 240, n))
    restarts = rng.random((days, n)) < restart_rate[None, :]
    last_restart = np.where(restarts, t[:, None], -rng.integers(0, 60, n)[None, :])
    since_restart = t[:, None] - np.maximum.accumulate(last_restart, axis=0)
    leak = np.minimum(leak_rate[None, :] * since_restart, rng.uniform(8, 20, n)[None, :])
    drift = np.cumsum(rng.normal(0.0, 1.0, (days, n)) * rng.uniform(0.03, 0.10, n)[None, :], axis=0)
    drift -= drift[-1]  # anchored at the end, so the end level stays as drawn

    factor = (
        (1.0 + 0.15 * effects.weekly_strength[None, :] * effects.weekly_shape)
        * (1.0 + 0.3 * effects.yearly)
        * (1.0 + 0.3 * effects.quarter_end)
    )
    noise = _ar1(rng, days, rng.uniform(0.5, 0.9, n)) * rng.uniform(0.01, 0.03, n)[None, :]
    ramp = 0.5 + 0.5 * effects.ramp
    return (base + leak + drift) * ramp * (factor + noise) + MEMORY_SHARE * effects.month_end * ramp


def disk(
    rng: np.random.Generator,
    dates: pd.DatetimeIndex,
    first: np.ndarray,
    hot: np.ndarray,
    month_end: np.ndarray,
) -> np.ndarray:
    """days x servers disk P95: steady growth with cleanups when full (a sawtooth), no real weekly pattern.

    Hot disks grow fast with no cleanup, crossing 90% roughly 20-110 days after the window ends.
    ``month_end`` (days x servers, points of CPU) adds a passing rise on month-end days.
    """
    n, days = len(first), len(dates)
    t = np.arange(days)
    weekday = np.where(dates.day_of_week.to_numpy() < 5, 1.1, 0.75)[:, None]
    increments = _disk_increments(rng, days, n, weekday)
    level_end, in_span, hot_increments = _hot_disk_growth(rng, t, n, weekday)
    increments = np.where(hot[None, :] & in_span, hot_increments, increments)
    increments[t[:, None] < first[None, :]] = 0.0
    increments[first, np.arange(n)] = 0.0  # the first active day is the starting level

    start = np.where(first > 0, rng.uniform(3.0, 12.0, n), rng.uniform(15.0, 55.0, n))
    # Hot disks: scale the growth before the span so the start level stays positive.
    pre = np.where(~in_span, increments, 0.0).sum(axis=0)
    room = level_end - 3.0 - np.where(in_span, increments, 0.0).sum(axis=0)
    pre_scale = np.where(
        hot & (pre > room), np.clip(room, 0.0, None) / np.where(pre > 0, pre, 1.0), 1.0
    )
    increments = np.where(hot[None, :] & ~in_span, increments * pre_scale[None, :], increments)
    start = np.where(hot, level_end - increments.sum(axis=0), start)
    # The close's extracts are archived after it: the rise passes, the sawtooth goes on.
    return _fill_with_cleanups(rng, start, increments, hot) + DISK_SHARE * month_end


# --- helpers -------------------------------------------------------------------------------------


def _draw_archetypes(rng: np.random.Generator, env: np.ndarray) -> np.ndarray:
    """Utilisation archetype per server; fleets of 10+ get at least one idle, over-provisioned and hot."""
    archetype = draw_by_group(rng, np.arange(4), env, ARCHETYPES_BY_ENV, ARCHETYPES_BY_ENV["dev"])
    if len(archetype) >= 10:
        for kind in (IDLE, OVER_PROVISIONED, HOT):
            steady = np.flatnonzero(archetype == STEADY)
            if not (archetype == kind).any() and len(steady):
                archetype[rng.choice(steady)] = kind
    return archetype


def _ar1(rng: np.random.Generator, days: int, phi: np.ndarray) -> np.ndarray:
    """days x servers AR(1) noise with unit variance and a per-server coefficient."""
    shocks = rng.standard_normal((days, len(phi)))
    out = np.empty_like(shocks)
    scale = np.sqrt(1.0 - phi**2)
    out[0] = shocks[0]
    for day in range(1, days):
        out[day] = phi * out[day - 1] + scale * shocks[day]
    return out


def _trend(
    t: np.ndarray, level_end: np.ndarray, growth_per_year: np.ndarray, floor: float = 0.15
) -> np.ndarray:
    """days x servers linear trend ending at ``level_end``; relative growth per year, floored."""
    relative = 1.0 + growth_per_year[None, :] * (t[:, None] - t[-1]) / 365.0
    return level_end[None, :] * np.maximum(relative, floor)


def _growth_to_breach(
    rng: np.random.Generator, t: np.ndarray, n: int, threshold: float, floor: float, ceiling: float
) -> np.ndarray:
    """days x servers for hot servers: flat, then linear growth that crosses ``threshold``
    roughly 30-120 days after the window ends."""
    slope = rng.uniform(0.06, 0.16, n)
    level_end = np.clip(threshold - slope * rng.uniform(30, 120, n), floor, ceiling)
    span = rng.uniform(150, 400, n)
    since = np.maximum(t[:, None] - t[-1], -span[None, :])
    return level_end[None, :] + slope[None, :] * since


def _disk_increments(
    rng: np.random.Generator, days: int, n: int, weekday: np.ndarray
) -> np.ndarray:
    """days x servers daily disk growth (percentage points), busier on weekdays, minus housekeeping."""
    growth = np.clip(rng.lognormal(np.log(0.035), 0.6, n), 0.003, 0.15)  # percentage points per day
    increments = (
        growth[None, :] + rng.normal(0.0, 1.0, (days, n)) * 0.5 * growth[None, :]
    ) * weekday
    housekeeping = rng.random((days, n)) < 1.0 / rng.uniform(60, 200, n)[None, :]
    increments -= (
        housekeeping * growth[None, :] * rng.uniform(5.0, 40.0, (days, n))
    )  # logs, temp files
    return increments


def _hot_disk_growth(
    rng: np.random.Generator, t: np.ndarray, n: int, weekday: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(level at the window's end, days x servers mask of the growth span, daily increments) for
    disks that head for a breach: fast growth over the span's last 120-365 days."""
    hot_growth = rng.uniform(0.07, 0.20, n)
    level_end = np.clip(90.0 - hot_growth * rng.uniform(20, 110, n), 55.0, 86.0)
    span = np.minimum(rng.uniform(120, 365, n), (level_end - 10.0) / hot_growth)
    in_span = (t[:, None] - t[-1]) >= -span[None, :]
    hot_increments = hot_growth[None, :] * (1.0 + 0.3 * rng.standard_normal((len(t), n))) * weekday
    return level_end, in_span, hot_increments


def _fill_with_cleanups(
    rng: np.random.Generator, start: np.ndarray, increments: np.ndarray, hot: np.ndarray
) -> np.ndarray:
    """days x servers disk levels from ``start`` and daily ``increments``; cleanups (archiving,
    purges) free space when a disk passes its server's alert level, or ad hoc. Hot disks: none."""
    days, n = len(increments), len(start)
    threshold = np.where(hot, np.inf, rng.uniform(68.0, 86.0, n))
    ad_hoc = (rng.random((days, n)) < 1.0 / rng.uniform(250, 800, n)[None, :]) & ~hot[None, :]
    keep = 1.0 - rng.uniform(0.10, 0.35, n)
    out = np.empty((days, n))
    level = start
    for day in range(days):
        level = np.maximum(level + increments[day], 1.0)
        level = np.where((level > threshold) | ad_hoc[day], level * keep, level)
        out[day] = level
    return out
