"""The daily metrics table: P95 CPU, memory and disk per server per day, with defects.

Vectorised over a days x servers matrix, in blocks of servers: behaviour (``utilisation``),
month-end rises (``month_end``), calendar effects (``seasonality``), the three series, then
defects (``defects``). A server reports from its commissioning date (or the window start).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from capacity_forecaster.core.params_calendar import CalendarParams
from capacity_forecaster.core.vocabulary import METRICS
from capacity_forecaster.ingest.synthetic.defects import (
    inject_nan,
    inject_outliers,
    missing_cells,
    nan_target,
)
from capacity_forecaster.ingest.synthetic.month_end import MonthEnd, draw_month_end
from capacity_forecaster.ingest.synthetic.seasonality import (
    CalendarDays,
    calendar_days,
    draw_effects,
)
from capacity_forecaster.ingest.synthetic.utilisation import (
    ARCHETYPE_NAMES,
    HOT,
    Behaviour,
    cpu,
    disk,
    draw_behaviour,
    memory,
)

logger = logging.getLogger(__name__)

SERVERS_NEEDED = (
    "server_id",
    "business_unit",
    "region",
    "country",
    "environment",
    "commissioned_date",
)
_BLOCK_SERVERS = 1000  # servers per block of series (fixed: results depend on it)


def window(end_date: dt.date, days: int) -> pd.DatetimeIndex:
    """The ``days`` daily dates ending on ``end_date`` (naive, midnight, nanosecond unit)."""
    return pd.date_range(end=pd.Timestamp(end_date), periods=days, freq="D").as_unit("ns")


def generate_metrics(
    servers: pd.DataFrame,
    end_date: dt.date,
    days: int,
    rng: np.random.Generator,
    *,
    outlier_share: float,
    missing_share: float,
    calendar: CalendarParams | None = None,
    month_end_share: float = 0.0,
    month_end_uplift: tuple[float, float] = (10.0, 25.0),
) -> pd.DataFrame:
    """Draw daily P95 CPU, memory and disk (percent) for every server over ``days`` ending ``end_date``.

    A server reports from its commissioning date (or the window start). The business calendar
    (default: its default windows) places the quarter-end surge on its quarter_end window and,
    for ``month_end_share`` of the servers, a rise drawn from ``month_end_uplift`` (points of
    CPU; memory and disk less) on its month_end window, in each server's country (none without
    the window). Defects: ``outlier_share`` of the values become one-day spikes or drops,
    ``missing_share`` of the server-days are removed as whole rows (single days, multi-day
    runs, region-wide outages) and about a tenth of that share of rows get one metric set to
    NaN. Rows are sorted by ``server_id``, ``date``.
    """
    started = time.perf_counter()
    _check_arguments(servers, days, outlier_share, missing_share)
    calendar = calendar or CalendarParams()
    dates = window(end_date, days)
    first = _first_active_day(servers, dates)
    behaviour = draw_behaviour(rng, servers["environment"].to_numpy(dtype=object))
    # A child stream: the rest of the fleet is the same draw with or without month-end rises.
    month_end = draw_month_end(
        rng.spawn(1)[0],
        (behaviour.archetype == HOT) & (behaviour.hot_metric == 0),
        month_end_share if calendar.window("month_end") else 0.0,
        month_end_uplift,
    )
    series = _draw_series(rng, dates, servers, first, behaviour, month_end, calendar)

    missing = missing_cells(
        rng, first, days, missing_share, servers["region"].to_numpy(dtype=object)
    )
    active = np.arange(days)[None, :] >= first[:, None]
    rows = np.flatnonzero((active & ~missing).ravel())  # server-major, the output order
    values = np.empty((len(rows), len(METRICS)))
    for i in range(len(METRICS)):
        values[:, i] = series[i].ravel()[rows]
    del series
    inject_outliers(rng, values, outlier_share)
    inject_nan(rng, values, nan_target(len(rows), missing_share))

    metrics = _metrics_frame(servers, dates, rows, values)
    counts = np.bincount(behaviour.archetype, minlength=4)
    logger.info(
        "generated %d metric rows for %d servers over %d days in %.1fs (%s; %d commissioned in "
        "window; %d rise at month end, %d of them heading for a month-end-only CPU breach)",
        len(metrics),
        len(servers),
        days,
        time.perf_counter() - started,
        ", ".join(f"{c} {name}" for c, name in zip(counts, ARCHETYPE_NAMES, strict=True)),
        int((first > 0).sum()),
        int((month_end.uplift > 0).sum()),
        int(month_end.breach.sum()),
    )
    return metrics


def _check_arguments(
    servers: pd.DataFrame, days: int, outlier_share: float, missing_share: float
) -> None:
    """Raise ValueError on a window of no days, a share outside [0, 1) or a missing column."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    for name, share in (("outlier_share", outlier_share), ("missing_share", missing_share)):
        if not 0 <= share < 1:
            raise ValueError(f"{name} must be in [0, 1), got {share}")
    if absent := sorted(set(SERVERS_NEEDED) - set(servers.columns)):
        raise ValueError(f"servers is missing columns {absent}")


def _first_active_day(servers: pd.DataFrame, dates: pd.DatetimeIndex) -> np.ndarray:
    """Index of each server's first day in the window (0 when commissioned before it)."""
    commissioned = pd.DatetimeIndex(servers["commissioned_date"]).normalize()
    offset = np.asarray((commissioned - dates[0]).days, dtype=np.int64)
    if (late := offset > len(dates) - 1).any():
        examples = servers["server_id"].to_numpy()[late][:3].tolist()
        raise ValueError(
            f"{late.sum()} servers are commissioned after the window ends on {dates[-1]:%Y-%m-%d} "
            f"(e.g. {examples}); use generate_fleet or an end_date after their commissioning"
        )
    return np.maximum(offset, 0)


def _draw_series(
    rng: np.random.Generator,
    dates: pd.DatetimeIndex,
    servers: pd.DataFrame,
    first: np.ndarray,
    behaviour: Behaviour,
    month_end: MonthEnd,
    calendar: CalendarParams,
) -> np.ndarray:
    """metrics x servers x days, in [0, 100]; blocks of servers bound the memory of the
    days x servers temporaries."""
    n = len(servers)
    days_of = calendar_days(dates, servers["country"], calendar)
    series = np.empty((len(METRICS), n, len(dates)))
    for lo in range(0, n, _BLOCK_SERVERS):
        block = slice(lo, min(lo + _BLOCK_SERVERS, n))
        series[:, block] = _series_block(
            rng,
            dates,
            servers.iloc[block],
            first[block],
            Behaviour(*(field[block] for field in behaviour)),
            MonthEnd(*(field[block] for field in month_end)),
            CalendarDays(*(flags[:, block] for flags in days_of)),
        )
    return series


def _series_block(
    rng: np.random.Generator,
    dates: pd.DatetimeIndex,
    servers: pd.DataFrame,
    first: np.ndarray,
    behaviour: Behaviour,
    month_end: MonthEnd,
    days_of: CalendarDays,
) -> np.ndarray:
    """metrics x servers x days CPU, memory and disk P95 for a block of servers, in [0, 100]."""
    t = np.arange(len(dates))
    effects = draw_effects(rng, dates, servers, first, days_of, month_end.uplift)
    archetype, hot_metric, declining = behaviour
    cpu_p95 = cpu(rng, t, archetype, hot_metric == 0, declining, effects, month_end)
    mem_p95 = memory(rng, t, archetype, hot_metric == 1, declining, effects)
    disk_p95 = disk(rng, dates, first, hot_metric == 2, effects.month_end)
    return np.clip(np.stack([cpu_p95.T, mem_p95.T, disk_p95.T]), 0.0, 100.0)


def _metrics_frame(
    servers: pd.DataFrame, dates: pd.DatetimeIndex, rows: np.ndarray, values: np.ndarray
) -> pd.DataFrame:
    """The metrics table from the kept ``rows`` (flat server-major cells) and their values."""
    days = len(dates)
    ids = servers["server_id"].to_numpy(dtype=object)
    columns: dict[str, Any] = {
        "date": dates.to_numpy()[rows % days],
        "server_id": pd.array(ids, dtype="str").take(rows // days),
    }
    columns.update({name: values[:, i] for i, name in enumerate(METRICS)})
    metrics = pd.DataFrame(columns)
    order = np.argsort(ids, kind="stable")
    if not np.array_equal(order, np.arange(len(ids))):  # servers not sorted by id: sort the output
        metrics = metrics.sort_values(["server_id", "date"], ignore_index=True)
    return metrics
