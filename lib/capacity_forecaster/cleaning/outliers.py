"""Outliers: a Hampel filter per series, against its neighbours and against its own weekday.

A value is an outlier when it stands out both in the centred window of neighbouring days and
among the same weekday of the surrounding weeks, so a weekly pattern (a weekend dip) is not.
Windows are array offsets on the long grid (``grid.series_bounds``), computed in blocks of rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from capacity_forecaster.cleaning.grid import run_bounds, run_starts, series_bounds

MAD_SCALE = 1.4826  # MAD -> standard deviation for normally distributed noise
MAD_FLOOR = 0.5  # percentage points: below this a window is "flat" and its MAD is floored
# An outlier must also stand out among the same weekday's values over this many weeks (centred:
# three before, three after). Without it, the deep weekend dip of a business-hours server was
# "an outlier" of its weekday-dominated 15-day window: on the default synthetic fleet 676 of
# the 873 CPU values flagged were genuine weekend values (precision 0.22), overwritten by the
# weekday median; with it, 1 of 191 (precision 0.995, recall 0.85 -> 0.83;
# benchmarks/cleaning_accuracy.py).
WEEKDAY_WINDOW_WEEKS = 7
_CHUNK_ROWS = 1 << 16  # rows per block of the Hampel window matrix (bounds memory)


def flag_outliers(
    long: pd.DataFrame,
    *,
    window: int,
    threshold: float,
    protected: np.ndarray | pd.Series | None = None,
    mad_floor: float = MAD_FLOOR,
) -> pd.Series:
    """Hampel filter per series: |x - median| > threshold * 1.4826 * max(MAD, mad_floor), both
    against the centred window of ``window`` days and against the same weekday over the
    ``WEEKDAY_WINDOW_WEEKS`` weeks around it.

    Windows are on the to_long grid (min_periods = window // 2 + 1, so series edges are checked
    with half windows); where a row has too few same-weekday values, the daily window decides
    alone. The second test keeps a weekly pattern (a weekend dip) from being flagged: it stands
    out among its neighbours, not among its own weekday. ``mad_floor`` (percentage points) keeps
    flat series from flagging every wiggle. ``protected`` rows (positional array, or a Series
    aligned on the index) are never flagged. NaN values are never flagged.
    """
    flags, _ = hampel(long, window, threshold, protected, mad_floor)
    return pd.Series(flags, index=long.index, name="is_outlier")


def hampel(
    long: pd.DataFrame,
    window: int,
    threshold: float,
    protected: np.ndarray | pd.Series | None,
    mad_floor: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Outlier flags and the values that replace flagged ones: the same weekday's rolling
    median, or the daily window's where that has too few values (see ``flag_outliers``)."""
    start, end = series_bounds(long)
    values = long["value"].to_numpy(dtype=np.float64, na_value=np.nan)
    median, mad = _rolling_median_mad(values, start, end, window)
    weekday_median, weekday_mad = _same_weekday_median_mad(values, start, WEEKDAY_WINDOW_WEEKS)
    with np.errstate(invalid="ignore"):  # NaN value or too few neighbours -> not flagged
        off_neighbours = np.abs(values - median) > threshold * MAD_SCALE * np.maximum(
            mad, mad_floor
        )
        off_weekday = np.abs(values - weekday_median) > threshold * MAD_SCALE * np.maximum(
            weekday_mad, mad_floor
        )
    # Too few same-weekday values (short or gappy series): the daily window decides alone.
    weekday_known = ~np.isnan(weekday_median)
    flags = off_neighbours & (off_weekday | ~weekday_known)
    replacement = np.where(weekday_known, weekday_median, median)
    return flags & ~_as_mask(protected, long), replacement


def _nanmedian_rows(window: np.ndarray) -> np.ndarray:
    """Median of each row ignoring NaN (NaN where a row has no values); exact, vectorised."""
    ordered = np.sort(window, axis=1)  # NaN sort last
    count = (~np.isnan(ordered)).sum(axis=1)
    lower = np.maximum((count - 1) // 2, 0)[:, None]
    upper = np.minimum(count // 2, window.shape[1] - 1)[:, None]
    low = np.take_along_axis(ordered, lower, axis=1)[:, 0]
    high = np.take_along_axis(ordered, upper, axis=1)[:, 0]
    return np.where(count > 0, 0.5 * (low + high), np.nan)


def _rolling_median_mad(
    values: np.ndarray, start: np.ndarray, end: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Centered rolling median and MAD per series (min_periods = window // 2 + 1).

    The MAD of row i is the median of |x_j - median_i| over row i's own window (the exact
    Hampel statistic, not a median of medians). Windows are clipped at series boundaries.
    """
    n = len(values)
    offsets = np.arange(window) - window // 2  # same alignment as pandas rolling(center=True)
    min_periods = window // 2 + 1
    median = np.full(n, np.nan)
    mad = np.full(n, np.nan)
    for lo in range(0, n, _CHUNK_ROWS):  # blocks of rows, not series: bounds memory
        hi = min(n, lo + _CHUNK_ROWS)
        index = np.arange(lo, hi)[:, None] + offsets
        inside = (index >= start[lo:hi, None]) & (index <= end[lo:hi, None])
        win = np.where(inside, values[np.clip(index, 0, n - 1)], np.nan)
        enough = (~np.isnan(win)).sum(axis=1) >= min_periods
        m = _nanmedian_rows(win)
        d = _nanmedian_rows(np.abs(win - m[:, None]))
        median[lo:hi] = np.where(enough, m, np.nan)
        mad[lo:hi] = np.where(enough, d, np.nan)
    return median, mad


def _same_weekday_order(start: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A row order in which each series' same-weekday values are contiguous, by date, and each
    row's first and last position of its (series, weekday) run in that order."""
    n = len(start)
    # On the daily grid, the offset from the series' first row gives the weekday; a stable sort
    # keeps each run in date order.
    run_key = start * 7 + (np.arange(n) - start) % 7
    order = np.argsort(run_key, kind="stable")
    firsts, lasts = run_bounds(run_starts(run_key[order]))
    return order, firsts, lasts


def _same_weekday_median_mad(
    values: np.ndarray, start: np.ndarray, weeks: int
) -> tuple[np.ndarray, np.ndarray]:
    """Centred rolling median and MAD over the same weekday of the ``weeks`` weeks around each
    row (within its series), as ``_rolling_median_mad`` computes them on daily windows."""
    order, firsts, lasts = _same_weekday_order(start)
    median, mad = _rolling_median_mad(values[order], firsts, lasts, weeks)
    back = np.empty_like(order)
    back[order] = np.arange(len(order))
    return median[back], mad[back]


def _as_mask(mask: np.ndarray | pd.Series | None, frame: pd.DataFrame) -> np.ndarray:
    """A boolean row mask aligned to ``frame`` (a Series aligns on the index)."""
    if mask is None:
        return np.zeros(len(frame), dtype=bool)
    if isinstance(mask, pd.Series):
        mask = mask.reindex(frame.index, fill_value=False)
    array = np.asarray(mask, dtype=bool)
    if array.shape != (len(frame),):
        raise ValueError(f"protected mask has shape {array.shape}, expected ({len(frame)},)")
    return array
