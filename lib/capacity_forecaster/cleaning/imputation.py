"""Imputation: short gaps in a series are interpolated linearly; longer gaps stay gaps.

A long gap is an outage, not noise: filling it would invent history, so its rows stay NaN and
``build_features`` drops them (and the days whose lags reach into them).
"""

from __future__ import annotations

import numpy as np


def interpolate_short_gaps(
    values: np.ndarray, start: np.ndarray, end: np.ndarray, limit: int
) -> np.ndarray:
    """Linear interpolation of interior NaN runs of at most ``limit`` days; longer runs stay NaN.

    ``start`` and ``end`` are each row's series bounds on the long grid (``grid.series_bounds``):
    a run at a series' edge, or one that would borrow from another series, is not filled.
    """
    n = len(values)
    index = np.arange(n)
    valid = ~np.isnan(values)
    prev = np.maximum.accumulate(np.where(valid, index, -1))
    nxt = np.minimum.accumulate(np.where(valid, index, n)[::-1])[::-1]
    fill = ~valid & (prev >= start) & (nxt <= end) & (nxt - prev - 1 <= limit)
    out = values.copy()
    p, q, i = prev[fill], nxt[fill], index[fill]
    out[fill] = values[p] + (values[q] - values[p]) * (i - p) / (q - p)
    return out
