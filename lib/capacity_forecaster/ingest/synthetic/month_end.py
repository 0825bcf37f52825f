"""Month-end load: which servers rise on the month_end window's days, by how much, and which
of them head for a breach on those days only.

Bank fleets peak at month end (close, payroll, settlement). ``month_end_share`` of the servers
get an uplift drawn per server from ``month_end_uplift`` (points of CPU) on the days of the
calendar's month_end window in their country; memory and disk rise by a smaller share of it
(``MEMORY_SHARE``, ``DISK_SHARE``).

A rising server whose CPU is the metric heading for a breach (the hot archetype) breaches at
month end instead: its ordinary load grows slowly enough to stay 8 points under the threshold
through the default forecast horizon, while its month-end peaks cross it 30-90 days after the
window ends. When a fleet has such a server at all, at least one rises, so a default run has a
month-end-only breach to find.

Drawn from a child of the run's generator, so the rest of the fleet is the same draw with or
without month-end load: ``month_end_share`` 0 gives the same fleet, less the rises.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from capacity_forecaster.core.params import ForecastParams, RiskParams
from capacity_forecaster.ingest.synthetic.defects import round_half_up

# The close runs more batch work at once: CPU takes the whole uplift. Memory rises by less
# than half of it (heaps and caches are sized already; only the extra working sets add), disk
# by a little (extracts and reports written at the close, archived after it).
MEMORY_SHARE = 0.4
DISK_SHARE = 0.15
CPU_THRESHOLD = RiskParams().thresholds["cpu_p95"]
# A month-end-only breach must hold over the default forecast horizon: ordinary days stay this
# many points under the threshold (also under a stricter 75 % some runs set for critical
# servers), and an uplift smaller than that cannot make one.
HORIZON_DAYS = ForecastParams().horizon_days
ORDINARY_MARGIN = 8.0
# When the month-end peak reaches the threshold, in days after the window's end.
CROSSING_DAYS = (30.0, 90.0)
SLOPE = (0.03, 0.06)  # points a day of the ordinary load's growth
SPAN_DAYS = (150.0, 400.0)  # the growth's length; flat before it


class MonthEnd(NamedTuple):
    """Per server: the month-end uplift in points of CPU (0: no rise), whether it heads for a
    month-end-only CPU breach, and that breach's crossing day, growth slope and span."""

    uplift: np.ndarray
    breach: np.ndarray
    crossing_day: np.ndarray
    slope: np.ndarray
    span: np.ndarray


def draw_month_end(
    rng: np.random.Generator,
    hot_cpu: np.ndarray,
    share: float,
    uplift_range: tuple[float, float],
) -> MonthEnd:
    """Exactly ``round(share * n)`` servers rise at month end, each by a draw from
    ``uplift_range``; those with a hot CPU (``hot_cpu``) and an uplift big enough head for a
    month-end-only breach. When any such server exists, at least one of them rises (one other
    riser makes way, so the share stays exact)."""
    n = len(hot_cpu)
    # Per-server draws first, so a server keeps its draws whatever the share.
    uplift = rng.uniform(*uplift_range, n)
    crossing_day = rng.uniform(*CROSSING_DAYS, n)
    slope = rng.uniform(*SLOPE, n)
    span = rng.uniform(*SPAN_DAYS, n)
    order = rng.permutation(n)
    rises = np.zeros(n, dtype=bool)
    rises[order[: round_half_up(share * n)]] = True

    # Ordinary load at the horizon's end: the threshold less the uplift, plus the growth after
    # the month-end peak crossed it.
    ordinary_at_horizon = CPU_THRESHOLD - uplift + slope * (HORIZON_DAYS - crossing_day)
    candidate = hot_cpu & (ordinary_at_horizon <= CPU_THRESHOLD - ORDINARY_MARGIN)
    if rises.any() and candidate.any() and not (rises & candidate).any():
        rises[order[rises[order] & ~candidate[order]][0]] = False
        rises[order[candidate[order]][0]] = True
    return MonthEnd(
        uplift=np.where(rises, uplift, 0.0),
        breach=rises & candidate,
        crossing_day=crossing_day,
        slope=slope,
        span=span,
    )


def ordinary_level(since_end: np.ndarray, month_end: MonthEnd) -> np.ndarray:
    """days x servers expected CPU on the busiest ordinary weekday of month-end breachers, at
    ``since_end`` days after the window's last day (0 on it): flat, then a slow linear growth
    that brings the month-end peak (this plus the uplift) to the threshold ``crossing_day``
    days after the window's end."""
    since = np.maximum(since_end[:, None], -month_end.span[None, :])
    crossing = CPU_THRESHOLD - month_end.uplift - month_end.slope * month_end.crossing_day
    return np.maximum(crossing[None, :] + month_end.slope[None, :] * since, 1.0)
