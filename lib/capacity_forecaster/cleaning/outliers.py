"""Outliers: a Hampel filter per series, against its neighbours, its own weekday and its own
place in the month.

A value is an outlier when it stands out in the centred window of neighbouring days, among the
same weekday of the surrounding weeks and at the same place in the month of the surrounding
months, where that place has a level of its own: so a weekly pattern (a weekend dip) is not,
nor a monthly one (a month-end peak), while an ordinary day of the month is judged as before.
Windows are array offsets on the long grid (``grid.series_bounds``), computed in blocks of rows.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from capacity_forecaster.cleaning.calendar_features import NOT_PLACED, month_places
from capacity_forecaster.cleaning.grid import run_bounds, run_starts, series_bounds
from capacity_forecaster.core.params_calendar import CalendarParams

MAD_SCALE = 1.4826  # MAD -> standard deviation for normally distributed noise
MAD_FLOOR = 0.5  # percentage points: below this a window is "flat" and its MAD is floored
# Share of the outlier threshold a place's usual residual must reach to be a recurring effect
# that may vouch for the values there (see ``hampel``).
RECURRING_SHARE = 0.5
# An outlier must also stand out among the same weekday's values over this many weeks (centred:
# three before, three after). Without it, the deep weekend dip of a business-hours server was
# "an outlier" of its weekday-dominated 15-day window: on the default synthetic fleet 676 of
# the 873 CPU values flagged were genuine weekend values (precision 0.22), overwritten by the
# weekday median; with it, 1 of 191 (precision 0.995, recall 0.85 -> 0.83;
# benchmarks/cleaning_accuracy.py).
WEEKDAY_WINDOW_WEEKS = 7
# And among the values at the same place in the month over this many months (centred: three
# before, three after): its day within each monthly calendar window, its business days to
# month end, its day of month. A monthly effect (a month-end close, a payroll run) is at every
# one of them, so their median is its level and it is not an outlier there, named in params or
# not; a value far beyond what the other months show at that place still is. Seven months keep
# the median robust to one bad month, span little of a trend or of the yearly cycle, and need
# four months of history (fewer: the month tests do not veto). An effect seen in fewer than
# four of seven months (a quarter end) still stands out, which is why the calendar's
# non-monthly windows are protected instead (``clean.protected_rows``). On 150 servers x 730
# days whose series rise 10-25 points on the last two business days of every month (60 %),
# genuine values flagged fell from 6303 (6297 of them month-end days; CPU precision 0.12) to
# 4 (none on a month end; precision 0.98-1.0), CPU recall 0.77 -> 0.74; without month-end
# load, CPU recall 0.83 -> 0.80 (benchmarks/cleaning_accuracy.py).
MONTH_WINDOW_MONTHS = 7
_CHUNK_ROWS = 1 << 16  # rows per block of the Hampel window matrix (bounds memory)


def flag_outliers(
    long: pd.DataFrame,
    *,
    window: int,
    threshold: float,
    protected: np.ndarray | pd.Series | None = None,
    mad_floor: float = MAD_FLOOR,
    places: Mapping[str, np.ndarray] | None = None,
) -> pd.Series:
    """Hampel filter per series: |x - median| > threshold * 1.4826 * max(MAD, mad_floor),
    against the centred window of ``window`` days, against the same weekday over the
    ``WEEKDAY_WINDOW_WEEKS`` weeks around it, and against the same place in the month over the
    ``MONTH_WINDOW_MONTHS`` months around it (each key of ``places``, compared as residuals
    from the local level, see ``hampel``).

    Windows are on the to_long grid (min_periods = window // 2 + 1, so series edges are checked
    with half windows). A value is an outlier only when every test finds it out of line; a
    test with too few values for a row (short or gappy series) does not veto it. The weekday
    test keeps a weekly pattern (a weekend dip) from being flagged, the month tests a monthly
    one (a month-end peak): each stands out among its neighbours, not at its own place.
    ``places`` defaults to Monday-Friday business days with no holidays and the default
    calendar's windows (``calendar_features.month_places``). ``mad_floor`` (percentage points)
    keeps flat series from flagging every wiggle. ``protected`` rows (positional array, or a
    Series aligned on the index) are never flagged. NaN values are never flagged.
    """
    if places is None:
        no_country = np.full(len(long), None, dtype=object)
        places = month_places(long, no_country, CalendarParams())
    flags, _ = hampel(long, window, threshold, protected, mad_floor, places)
    return pd.Series(flags, index=long.index, name="is_outlier")


def hampel(
    long: pd.DataFrame,
    window: int,
    threshold: float,
    protected: np.ndarray | pd.Series | None,
    mad_floor: float,
    places: Mapping[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Outlier flags and the values that replace flagged ones (see ``flag_outliers``).

    The month tests compare residuals from the local level (the same weekday's rolling median,
    the daily window's where that has too few values), so a trend or the yearly cycle over the
    months compared does not widen their spread, nor a weekly pattern mix into a day of month.
    Each place whose median residual is itself out of line has a level of its own (a month-end
    peak): it is taken out of the residual before the next place in ``places`` is compared,
    and a flagged value is replaced by the local level plus those levels, so cleaning a bad
    month end leaves a month end.
    """
    start, end = series_bounds(long)
    values = long["value"].to_numpy(dtype=np.float64, na_value=np.nan)

    def out_of_line(x: np.ndarray, median: np.ndarray, mad: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):  # NaN value or too few values -> False
            return np.abs(x - median) > threshold * MAD_SCALE * np.maximum(mad, mad_floor)

    median, mad = _rolling_median_mad(values, start, end, window)
    weekday = (np.arange(len(values)) - start) % 7  # the daily grid's offset gives the weekday
    weekday_median, weekday_mad = _same_key_median_mad(values, start, weekday, WEEKDAY_WINDOW_WEEKS)
    weekday_known = ~np.isnan(weekday_median)
    flags = out_of_line(values, median, mad) & (
        out_of_line(values, weekday_median, weekday_mad) | ~weekday_known
    )
    level = np.where(weekday_known, weekday_median, median)
    level_mad = np.where(weekday_known, weekday_mad, mad)
    residual = values - level
    place_level = np.zeros(len(values))
    for key in places.values():
        place_median, place_mad = _same_key_median_mad(residual, start, key, MONTH_WINDOW_MONTHS)
        known = ~np.isnan(place_median)
        # Only a place whose usual value is at least half way to an outlier of its weekday (a
        # month-end peak) can vouch for a value: elsewhere the month test only cost recall (CPU
        # 0.80 against 0.83 without month tests, on the benchmark fleet without month-end load).
        with np.errstate(invalid="ignore"):
            recurring = known & (
                np.abs(place_median)
                > RECURRING_SHARE * threshold * MAD_SCALE * np.maximum(level_mad, mad_floor)
            )
        flags &= out_of_line(residual, place_median, place_mad) | ~recurring
        # A place with a level of its own (a month-end peak) leaves it out of the residual the
        # next, coarser place compares: month ends among the 30ths would widen their spread.
        own = known & out_of_line(np.zeros(len(values)), place_median, place_mad)
        shift = np.where(own, place_median, 0.0)
        residual -= shift
        place_level += shift
    return flags & ~_as_mask(protected, long), level + place_level


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


def _same_key_median_mad(
    values: np.ndarray, start: np.ndarray, key: np.ndarray, span: int
) -> tuple[np.ndarray, np.ndarray]:
    """Centred rolling median and MAD over the ``span`` nearest rows of each row's run of the
    same ``key`` in its series (its same weekday, its place in the month), as
    ``_rolling_median_mad`` computes them on daily windows; NaN where ``key`` is NOT_PLACED."""
    median = np.full(len(values), np.nan)
    mad = np.full(len(values), np.nan)
    rows = np.flatnonzero(key != NOT_PLACED)
    if len(rows) == 0:
        return median, mad
    # Sorted by series, then key; a stable sort keeps each run in date order.
    run_key = start[rows] * (int(key[rows].max()) + 1) + key[rows]
    by_run = np.argsort(run_key, kind="stable")
    order = rows[by_run]
    firsts, lasts = run_bounds(run_starts(run_key[by_run]))
    median[order], mad[order] = _rolling_median_mad(values[order], firsts, lasts, span)
    return median, mad


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
