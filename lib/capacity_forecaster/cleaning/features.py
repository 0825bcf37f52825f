"""Stage 03 (ETL): long-by-metric series, outlier cleaning, imputation, calendar and lag features.

The chain is ``to_long`` (a complete daily grid per server x metric) -> ``clean_series``
(Hampel outliers outside known business events and the weekly pattern, linear interpolation
of short gaps) ->
``add_calendar_features`` -> ``add_lag_features`` -> drop rows that are still incomplete.
Everything is vectorised over the whole long frame: series are contiguous blocks of rows on a
daily grid, so per-series windows become array offsets clipped at each block's first and last row.
Plain functions on frames; no I/O.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from capacity_forecaster.core.calendar import (
    country_for_region,
    days_to_quarter_end,
    holiday_mask,
    quarter_end_window,
)
from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.params import FeatureParams
from capacity_forecaster.core.vocabulary import METRICS

logger = logging.getLogger(__name__)

__all__ = [
    "CALENDAR_COLUMNS",
    "KEY_COLUMNS",
    "MAD_FLOOR",
    "METRICS",
    "VALUE_COLUMNS",
    "add_calendar_features",
    "add_lag_features",
    "build_features",
    "check_features",
    "clean_series",
    "feature_columns",
    "flag_outliers",
    "lag_columns",
    "output_columns",
    "to_long",
]

KEY_COLUMNS = ["server_id", "metric", "date"]
VALUE_COLUMNS = ["value", "value_raw", "is_outlier", "is_imputed"]
CALENDAR_COLUMNS = [
    "day_of_week",
    "month",
    "quarter",
    "day_of_year",
    "is_weekend",
    "is_eoq_window",
    "days_to_quarter_end",
    "is_holiday",
]
BOOL_COLUMNS = ["is_outlier", "is_imputed", "is_weekend", "is_eoq_window", "is_holiday"]

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


def lag_columns(lags: tuple[int, ...], windows: tuple[int, ...]) -> list[str]:
    """Names of the lag and rolling columns, in output order."""
    names = [f"lag_{k}" for k in lags]
    for w in windows:
        names += [f"roll_mean_{w}", f"roll_std_{w}", f"roll_max_{w}"]
    return names


def feature_columns(params: FeatureParams) -> list[str]:
    """The model feature columns (calendar, then lags and rolling stats) for ``params``."""
    return [*CALENDAR_COLUMNS, *lag_columns(params.lags, params.rolling_windows)]


def output_columns(params: FeatureParams) -> list[str]:
    """Every column of processed/features.parquet, in order."""
    return [*KEY_COLUMNS, *VALUE_COLUMNS, *feature_columns(params)]


# --------------------------------------------------------------------------- layout helpers


def _days(dates: pd.Series | pd.Index) -> np.ndarray:
    """Dates as integer days since the epoch."""
    return np.asarray(dates).astype("datetime64[D]").astype(np.int64)


def _layout(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the positions of its series' first and last rows.

    Requires the to_long layout: each (server_id, metric) is one contiguous block of rows whose
    dates step by exactly one day.
    """
    n = len(frame)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    server_codes = pd.factorize(frame["server_id"])[0].astype(np.int64)
    metric_codes = pd.factorize(frame["metric"])[0].astype(np.int64)
    key = server_codes * (metric_codes.max() + 1) + metric_codes
    new = _run_starts(key)
    steps = np.diff(_days(frame["date"]))[~new[1:]]
    if (steps != 1).any() or len(np.unique(key[new])) != new.sum():
        raise ValueError(
            "expected the to_long layout: rows sorted by server_id, metric, date, "
            "one contiguous block per series, on a complete daily grid"
        )
    return _run_bounds(new)


def _run_starts(key: np.ndarray) -> np.ndarray:
    """True where a run of equal consecutive ``key`` values begins."""
    new = np.ones(len(key), dtype=bool)
    new[1:] = key[1:] != key[:-1]
    return new


def _run_bounds(new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per position, the first and last positions of its run (``new`` marks where runs begin)."""
    starts = np.flatnonzero(new)
    run = np.cumsum(new) - 1
    ends = np.append(starts[1:], len(new)) - 1
    return starts[run], ends[run]


def _by_date(dates: pd.Series, func: Any) -> np.ndarray:
    """Apply a date-vectorised ``func`` to the unique dates only, then spread it to the rows."""
    codes, uniques = pd.factorize(dates)
    return np.asarray(func(pd.DatetimeIndex(uniques)))[codes]


def _server_countries(servers: pd.DataFrame) -> pd.Series:
    """ISO country per server_id: the ``country`` column where set, else from ``region``."""
    if "region" not in servers.columns and "country" not in servers.columns:
        raise ValueError("servers frame needs a region or country column for the holiday calendar")
    table = servers.drop_duplicates("server_id").set_index("server_id")
    if len(table) < len(servers):
        logger.warning("servers: %d duplicate server_id rows ignored", len(servers) - len(table))
    country = pd.Series(None, index=table.index, dtype=object)
    if "region" in table.columns:
        regions = table["region"].dropna().unique()
        lookup = {region: country_for_region(region) for region in regions}
        country = table["region"].map(lookup).astype(object)
    if "country" in table.columns:
        given = table["country"].astype(object).where(table["country"].notna())
        given = given.map(lambda c: str(c).strip().upper() or None, na_action="ignore")
        country = given.where(given.notna(), country)
    return country.where(country.notna(), None)


def _holiday_rows(frame: pd.DataFrame, servers: pd.DataFrame, *, warn: bool = True) -> np.ndarray:
    """Per row, True on a public holiday in its server's country (computed per country)."""
    n = len(frame)
    if n == 0:
        return np.zeros(0, dtype=bool)
    server_codes, server_ids = pd.factorize(frame["server_id"])
    date_codes, dates = pd.factorize(frame["date"])
    country = _server_countries(servers).reindex(server_ids)
    unknown = int(country.isna().sum())
    if unknown and warn:
        logger.warning(
            "%d server(s) with no known country: holidays are not flagged there", unknown
        )
    country_codes, countries = pd.factorize(country)  # missing -> -1 -> the all-False last row
    table = np.zeros((len(countries) + 1, len(dates)), dtype=bool)
    for i, code in enumerate(countries):  # one holiday lookup per country, not per row
        table[i] = holiday_mask(pd.DatetimeIndex(dates), str(code))
    return table[country_codes[server_codes], date_codes]


# --------------------------------------------------------------------------- stage functions


def to_long(metrics: pd.DataFrame) -> pd.DataFrame:
    """Wide metrics -> long ``server_id, metric, date, value`` on a complete daily grid.

    Each server x metric spans its first to last observed (non-NaN) day; absent days and NaN
    values in between become NaN rows. A metric never observed for a server has no rows.
    Sorted by server_id, metric (alphabetical), date; ``metric`` is a string column and
    ``date`` keeps the input's datetime64 unit.
    """
    missing = [c for c in ("date", "server_id", *METRICS) if c not in metrics.columns]
    if missing:
        raise ValueError(f"metrics frame is missing column(s): {', '.join(missing)}")
    if metrics["date"].isna().any() or metrics["server_id"].isna().any():
        raise ValueError("metrics frame has missing date or server_id values")
    names = sorted(METRICS)
    date_dtype = metrics["date"].dtype
    server_codes, server_ids = pd.factorize(metrics["server_id"], sort=True)
    days = _days(metrics["date"])
    first = days.min() if len(days) else 0
    span = days.max() - first + 1 if len(days) else 1
    row_key = server_codes.astype(np.int64) * span + (days - first)
    duplicates = int(pd.Series(row_key).duplicated().sum())
    if duplicates:
        raise ValueError(f"metrics frame has {duplicates} duplicate (server_id, date) rows")

    keys, obs_days, obs_values = [], [], []
    for metric_code, name in enumerate(names):
        values = metrics[name].to_numpy(dtype=np.float64, na_value=np.nan)
        seen = ~np.isnan(values)
        keys.append(server_codes[seen].astype(np.int64) * len(names) + metric_code)
        obs_days.append(days[seen])
        obs_values.append(values[seen])
    key, day, value = np.concatenate(keys), np.concatenate(obs_days), np.concatenate(obs_values)

    order = np.lexsort((day, key))
    key, day, value = key[order], day[order], value[order]
    boundary = key[1:] != key[:-1]
    first_of_block = np.flatnonzero(np.r_[True, boundary]) if len(key) else key
    last_of_block = np.flatnonzero(np.r_[boundary, True]) if len(key) else key
    block_key, first_day = key[first_of_block], day[first_of_block]
    lengths = day[last_of_block] - first_day + 1
    offsets = np.cumsum(lengths) - lengths  # grid row of each block's first day
    total = int(lengths.sum())

    grid_key = np.repeat(block_key, lengths)
    grid_day = np.repeat(first_day, lengths) + (np.arange(total) - np.repeat(offsets, lengths))
    grid_value = np.full(total, np.nan)
    block_of_obs = np.repeat(np.arange(len(block_key)), last_of_block - first_of_block + 1)
    grid_value[offsets[block_of_obs] + day - first_day[block_of_obs]] = value

    long = pd.DataFrame(
        {
            "server_id": server_ids.take(grid_key // len(names)).array,
            "metric": pd.Index(names, dtype="str").take(grid_key % len(names)).array,
            "date": grid_day.astype("datetime64[D]").astype(date_dtype),
            "value": grid_value,
        }
    )
    logger.info(
        "to_long: %d wide rows -> %d long rows in %d series (%d absent or NaN days on the grid)",
        len(metrics),
        len(long),
        len(block_key),
        total - len(value),
    )
    return long


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


def _same_weekday_order(start: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A row order in which each series' same-weekday values are contiguous, by date, and each
    row's first and last position of its (series, weekday) run in that order."""
    n = len(start)
    # On the daily grid, the offset from the series' first row gives the weekday; a stable sort
    # keeps each run in date order.
    run_key = start * 7 + (np.arange(n) - start) % 7
    order = np.argsort(run_key, kind="stable")
    firsts, lasts = _run_bounds(_run_starts(run_key[order]))
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


def _hampel(
    long: pd.DataFrame,
    window: int,
    threshold: float,
    protected: np.ndarray | pd.Series | None,
    mad_floor: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Outlier flags and the values that replace flagged ones (see ``flag_outliers``)."""
    start, end = _layout(long)
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
    flags, _ = _hampel(long, window, threshold, protected, mad_floor)
    return pd.Series(flags, index=long.index, name="is_outlier")


def _interpolate_short_gaps(
    values: np.ndarray, start: np.ndarray, end: np.ndarray, limit: int
) -> np.ndarray:
    """Linear interpolation of interior NaN runs of at most ``limit`` days; longer runs stay NaN."""
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


def clean_series(long: pd.DataFrame, params: FeatureParams, servers: pd.DataFrame) -> pd.DataFrame:
    """Add ``value_raw``, ``is_outlier``, ``is_imputed``; clean ``value``.

    Outliers (Hampel, see flag_outliers) are replaced by the same weekday's rolling median (the
    daily window's where that has too few values), so a flagged weekend day of a business-hours
    server gets a weekend value. Quarter-end windows
    and the server's public holidays are protected: real business load (or its absence) is the
    signal, not noise. Then interior NaN runs of at most ``impute_limit_days`` days are filled
    by linear interpolation; longer runs stay NaN entirely.
    """
    start, end = _layout(long)
    raw = long["value"].to_numpy(dtype=np.float64, na_value=np.nan)
    eoq = _by_date(long["date"], lambda d: quarter_end_window(d, params.quarter_end_business_days))
    protected = eoq | _holiday_rows(long, servers, warn=False)  # the calendar step warns
    flags, replacement = _hampel(
        long, params.outlier_window, params.outlier_mad_threshold, protected, MAD_FLOOR
    )
    despiked = np.where(flags, replacement, raw)
    value = _interpolate_short_gaps(despiked, start, end, params.impute_limit_days)
    imputed = np.isnan(despiked) & ~np.isnan(value)
    logger.info(
        "clean_series: %d outliers replaced (%d rows protected), %d of %d missing days imputed "
        "(gaps <= %d days)",
        int(flags.sum()),
        int(protected.sum()),
        int(imputed.sum()),
        int(np.isnan(raw).sum()),
        params.impute_limit_days,
    )
    return long.assign(value=value, value_raw=raw, is_outlier=flags, is_imputed=imputed)


def add_calendar_features(
    frame: pd.DataFrame, servers: pd.DataFrame, quarter_end_business_days: int
) -> pd.DataFrame:
    """Add day_of_week (0=Mon), month, quarter, day_of_year, is_weekend, is_eoq_window,
    days_to_quarter_end and is_holiday (public holiday in the server's country).

    Date features are computed once per unique date, holidays once per country.
    """
    codes, uniques = pd.factorize(frame["date"])
    dates = pd.DatetimeIndex(uniques)
    weekday = np.asarray(dates.day_of_week, dtype=np.int64)
    per_date = {
        "day_of_week": weekday,
        "month": np.asarray(dates.month, dtype=np.int64),
        "quarter": np.asarray(dates.quarter, dtype=np.int64),
        "day_of_year": np.asarray(dates.day_of_year, dtype=np.int64),
        "is_weekend": weekday >= 5,
        "is_eoq_window": quarter_end_window(dates, quarter_end_business_days),
        "days_to_quarter_end": days_to_quarter_end(dates).astype(np.int64),
    }
    columns: dict[str, np.ndarray] = {name: values[codes] for name, values in per_date.items()}
    columns["is_holiday"] = _holiday_rows(frame, servers)
    return frame.assign(**columns)


def add_lag_features(
    frame: pd.DataFrame, lags: tuple[int, ...], windows: tuple[int, ...]
) -> pd.DataFrame:
    """Add lag_{k} and roll_mean/std/max_{w} per series, from past days only.

    The row for day t sees values up to t-1: lag_k is the value at t-k and the rolling stats
    cover days t-w..t-1. A window must be complete (min_periods = w, inside the series), so
    warm-up rows and rows whose window touches a NaN are NaN. roll_std is the population
    standard deviation (ddof=0), defined for every w >= 1.
    """
    start, _ = _layout(frame)
    n = len(frame)
    position = np.arange(n) - start  # days since the series' first row
    values = frame["value"].to_numpy(dtype=np.float64, na_value=np.nan)
    columns: dict[str, np.ndarray] = {}
    for k in lags:
        lag = np.full(n, np.nan)
        if k < n:
            lag[k:] = values[: n - k]
        lag[position < k] = np.nan
        columns[f"lag_{k}"] = lag
    # Shift by one day, roll over the concatenated series, then blank every row whose window
    # would reach back past its own series' first row: the same as a per-series groupby rolling.
    past = pd.Series(np.r_[np.nan, values[:-1]] if n else values)
    for w in windows:
        rolling = past.rolling(w, min_periods=w)
        young = position < w
        for stat, result in (
            ("mean", rolling.mean()),
            ("std", rolling.std(ddof=0)),
            ("max", rolling.max()),
        ):
            column = result.to_numpy(dtype=np.float64, copy=True)
            column[young] = np.nan
            columns[f"roll_{stat}_{w}"] = column
    return frame.assign(**columns)


def build_features(
    metrics: pd.DataFrame, servers: pd.DataFrame, params: FeatureParams
) -> tuple[pd.DataFrame, dict]:
    """Stage 03: metrics + servers -> (features, summary).

    Rows still NaN in ``value`` or any feature (warm-up rows, long gaps and the days after them)
    are dropped. Summary counts are over the long grid: rows_in (grid rows), rows_out,
    dropped_rows, missing (NaN days on the grid), outliers, imputed, and the same by metric.
    """
    began = time.perf_counter()
    long = to_long(metrics)
    frame = clean_series(long, params, servers)
    frame = add_calendar_features(frame, servers, params.quarter_end_business_days)
    frame = add_lag_features(frame, params.lags, params.rolling_windows)

    must_be_set = ["value", *lag_columns(params.lags, params.rolling_windows)]
    complete = np.isfinite(frame[must_be_set].to_numpy(dtype=np.float64)).all(axis=1)
    features = frame.loc[complete, output_columns(params)].reset_index(drop=True)

    counts = pd.DataFrame(
        {
            "metric": frame["metric"],
            "rows_in": 1,
            "rows_out": complete,
            "missing": frame["value_raw"].isna(),
            "outliers": frame["is_outlier"],
            "imputed": frame["is_imputed"],
        }
    )
    by_metric = (
        counts.groupby("metric").sum().reindex(sorted(METRICS), fill_value=0).astype(np.int64)
    )
    by_metric["dropped_rows"] = by_metric["rows_in"] - by_metric["rows_out"]
    totals = by_metric.sum()
    summary: dict[str, Any] = {
        "input_rows": len(metrics),
        "rows_in": int(totals.get("rows_in", 0)),
        "rows_out": len(features),
        "dropped_rows": int(totals.get("dropped_rows", 0)),
        "missing": int(totals.get("missing", 0)),
        "outliers": int(totals.get("outliers", 0)),
        "imputed": int(totals.get("imputed", 0)),
        "servers": int(features["server_id"].nunique()),
        "series": int(features.groupby(["server_id", "metric"]).ngroups) if len(features) else 0,
        "date_min": features["date"].min().date().isoformat() if len(features) else None,
        "date_max": features["date"].max().date().isoformat() if len(features) else None,
        "feature_columns": feature_columns(params),
        "by_metric": {
            str(metric): {key: int(value) for key, value in row.items()}
            for metric, row in by_metric.to_dict(orient="index").items()
        },
    }
    logger.info(
        "build_features: %d grid rows -> %d rows x %d columns (%d dropped: warm-up, gaps > %d days) "
        "in %.1fs",
        summary["rows_in"],
        features.shape[0],
        features.shape[1],
        summary["dropped_rows"],
        params.impute_limit_days,
        time.perf_counter() - began,
    )
    return features, summary


def check_features(features: pd.DataFrame, params: FeatureParams) -> None:
    """Stage 03 post-conditions; raises StageCheckError listing every failure.

    Non-empty; every expected column; boolean flags as bool; no NaN or inf in any numeric
    column (``value_raw`` may be NaN exactly on imputed rows, where no value was observed);
    unique (server_id, metric, date); every metric present.
    """
    where = "processed/features.parquet"
    if features.empty:
        raise StageCheckError(f"{where}: no rows")
    missing = [c for c in output_columns(params) if c not in features.columns]
    if missing:
        raise StageCheckError(f"{where}: missing column(s): {', '.join(missing)}")

    problems = []
    for name in BOOL_COLUMNS:
        if features[name].dtype != bool:
            problems.append(f"column {name} has dtype {features[name].dtype}, expected bool")
    imputed = features["is_imputed"].to_numpy(dtype=bool)
    for name in features.select_dtypes(include="number").columns:
        values = features[name].to_numpy(dtype=np.float64, na_value=np.nan)
        nan = np.isnan(values)
        if name == "value_raw":
            nan &= ~imputed
        if nan.any():
            problems.append(f"column {name} has {int(nan.sum())} NaN value(s)")
        inf = np.isinf(values)
        if inf.any():
            problems.append(f"column {name} has {int(inf.sum())} infinite value(s)")
    duplicates = int(features.duplicated(KEY_COLUMNS).sum())
    if duplicates:
        problems.append(f"{duplicates} duplicate (server_id, metric, date) row(s)")
    absent = sorted(set(METRICS) - set(features["metric"].astype(str).unique()))
    if absent:
        problems.append(f"metric(s) absent: {', '.join(absent)}")
    if problems:
        raise StageCheckError(f"{where}: " + "; ".join(problems))
    logger.info("check_features: %d rows x %d columns ok", *features.shape)
