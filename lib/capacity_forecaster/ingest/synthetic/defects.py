"""The data-quality defects real monitoring has, injected after the series are drawn.

Missing server-days (single days, multi-day runs, region-wide monitoring outages), one-day
outliers (spikes to 97-100 %, drops to 0) and a few single-metric NaN values. The budgets are
exact, so ``check_generated`` can count them back.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

REGIONAL_OUTAGE_SHARE = 0.15  # of missing rows that come from region-wide monitoring outages
NAN_SHARE_OF_MISSING = 0.1  # single-metric NaN values, as a share of missing_share


def round_half_up(x: float) -> int:
    """Round half up (the same count in the generator and in the check)."""
    return int(np.floor(x + 0.5))


def missing_budget(first: np.ndarray, days: int, missing_share: float) -> tuple[int, int]:
    """(expected server-days, rows to remove); a server's first and last day are never removed."""
    expected = int((days - first).sum())
    removable = int(np.maximum(days - first - 2, 0).sum())
    return expected, min(round_half_up(missing_share * expected), removable)


def expected_rows(
    servers: pd.DataFrame, dates: pd.DatetimeIndex, missing_share: float
) -> tuple[int, int]:
    """(expected server-days, injected missing rows) for a fleet over a window."""
    commissioned = pd.DatetimeIndex(servers["commissioned_date"]).normalize()
    first = np.clip(np.asarray((commissioned - dates[0]).days, dtype=np.int64), 0, len(dates))
    return missing_budget(first, len(dates), missing_share)


def nan_target(rows: int, missing_share: float) -> int:
    """Single-metric NaN values injected into ``rows`` kept rows."""
    return min(round_half_up(NAN_SHARE_OF_MISSING * missing_share * rows), rows)


def missing_cells(
    rng: np.random.Generator, first: np.ndarray, days: int, missing_share: float, region: np.ndarray
) -> np.ndarray:
    """servers x days mask of removed server-days: regional outages, then per-server runs.

    Exactly the budgeted number of cells, never a server's first or last day.
    """
    n = len(first)
    _, target = missing_budget(first, days, missing_share)
    missing = np.zeros((n, days), dtype=bool)
    if target == 0:
        return missing
    removable = np.zeros((n, days), dtype=bool)
    day = np.arange(days)
    removable[:] = (day[None, :] > first[:, None]) & (day[None, :] < days - 1)

    candidates = [
        *_regional_outages(rng, region, days, target),
        _server_outages(rng, first, days, target),
    ]
    flat = np.concatenate(candidates)
    flat = flat[removable.ravel()[flat]]
    _, first_seen = np.unique(flat, return_index=True)
    chosen = flat[np.sort(first_seen)][:target]
    missing.ravel()[chosen] = True
    if (short := target - len(chosen)) > 0:  # very high shares: top up with random days
        pool = np.flatnonzero(removable.ravel() & ~missing.ravel())
        missing.ravel()[rng.choice(pool, size=short, replace=False)] = True
    return missing


def inject_outliers(rng: np.random.Generator, values: np.ndarray, share: float) -> None:
    """Replace ``share`` of the values in place by one-day spikes (97-100) or drops (0)."""
    count = min(round_half_up(share * values.size), values.size)
    if count == 0:
        return
    cells = rng.choice(values.size, size=count, replace=False)
    spikes = rng.random(count) < 0.55
    values.ravel()[cells] = np.where(spikes, rng.uniform(97.0, 100.0, count), 0.0)


def inject_nan(rng: np.random.Generator, values: np.ndarray, count: int) -> None:
    """Set one metric to NaN in ``count`` distinct rows, in place."""
    if count == 0:
        return
    rows = rng.choice(len(values), size=count, replace=False)
    values[rows, rng.integers(0, values.shape[1], count)] = np.nan


def _regional_outages(
    rng: np.random.Generator, region: np.ndarray, days: int, target: int
) -> list[np.ndarray]:
    """Flat servers x days cells of region-wide monitoring outages (1-2 days, every server in
    the region), about ``REGIONAL_OUTAGE_SHARE`` of ``target``."""
    regions = np.unique(region.astype(str))
    per_region = len(region) / len(regions)
    outages = []
    for _ in range(int(REGIONAL_OUTAGE_SHARE * target / (1.5 * per_region))):
        members = np.flatnonzero(region == regions[rng.integers(len(regions))])
        start, length = int(rng.integers(1, max(days - 1, 2))), int(rng.integers(1, 3))
        cells = members[:, None] * days + np.arange(start, min(start + length, days))[None, :]
        outages.append(cells.ravel())
    return outages


def _server_outages(
    rng: np.random.Generator, first: np.ndarray, days: int, target: int
) -> np.ndarray:
    """Flat servers x days cells of per-server outages: mostly single days, some runs of 2-10."""
    weights = np.maximum(days - first - 2, 0).astype(np.float64)
    n_runs = int(1.5 * target / 3.25) + 10
    server = rng.choice(len(first), size=n_runs, p=weights / weights.sum())
    span = np.maximum(days - 2 - first[server], 1)
    start = first[server] + 1 + (rng.random(n_runs) * span).astype(np.int64)
    length = np.where(rng.random(n_runs) < 0.55, 1, rng.integers(2, 11, n_runs))
    offset = np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length)
    days_in_run = np.repeat(start, length) + offset
    return np.repeat(server, length) * days + np.minimum(days_in_run, days - 1)
