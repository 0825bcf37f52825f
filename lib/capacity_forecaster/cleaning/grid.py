"""The long daily grid every later step works on: one row per server x metric x day.

``to_long`` turns the wide metrics table into series that are contiguous blocks of rows on a
complete daily grid, so per-series windows become array offsets clipped at each block's first
and last row (``series_bounds``): the cleaning and feature steps are vectorised over the whole
frame, never looped per series.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import cast

import numpy as np
import pandas as pd

from capacity_forecaster.core.contract import METRIC_COLUMNS
from capacity_forecaster.core.vocabulary import METRICS, SERIES_KEY

logger = logging.getLogger(__name__)

KEY_COLUMNS = (*SERIES_KEY, "date")  # one row of the long grid


def day_numbers(dates: pd.Series | pd.Index) -> np.ndarray:
    """Dates as integer days since the epoch."""
    return np.asarray(dates).astype("datetime64[D]").astype(np.int64)


def run_starts(key: np.ndarray) -> np.ndarray:
    """True where a run of equal consecutive ``key`` values begins."""
    new = np.ones(len(key), dtype=bool)
    new[1:] = key[1:] != key[:-1]
    return new


def run_bounds(new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per position, the first and last positions of its run (``new`` marks where runs begin)."""
    starts = np.flatnonzero(new)
    run = np.cumsum(new) - 1
    ends = np.append(starts[1:], len(new)) - 1
    return starts[run], ends[run]


def series_bounds(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the positions of its series' first and last rows.

    Requires the to_long layout: each (server_id, metric) is one contiguous block of rows whose
    dates step by exactly one day.
    """
    if len(frame) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    server_codes = pd.factorize(frame["server_id"])[0].astype(np.int64)
    metric_codes = pd.factorize(frame["metric"])[0].astype(np.int64)
    key = server_codes * (metric_codes.max() + 1) + metric_codes
    new = run_starts(key)
    steps = np.diff(day_numbers(frame["date"]))[~new[1:]]
    if (steps != 1).any() or len(np.unique(key[new])) != new.sum():
        raise ValueError(
            "expected the to_long layout: rows sorted by server_id, metric, date, "
            "one contiguous block per series, on a complete daily grid"
        )
    return run_bounds(new)


def to_long(metrics: pd.DataFrame) -> pd.DataFrame:
    """Wide metrics -> long ``server_id, metric, date, value`` on a complete daily grid.

    Each server x metric spans its first to last observed (non-NaN) day; absent days and NaN
    values in between become NaN rows. A metric never observed for a server has no rows.
    Sorted by server_id, metric (alphabetical), date; ``metric`` is a string column and
    ``date`` keeps the input's datetime64 unit.
    """
    missing = [c for c in METRIC_COLUMNS if c not in metrics.columns]
    if missing:
        raise ValueError(f"metrics frame is missing column(s): {', '.join(missing)}")
    if metrics["date"].isna().any() or metrics["server_id"].isna().any():
        raise ValueError("metrics frame has missing date or server_id values")
    names = sorted(METRICS)
    date_dtype = cast(np.dtype, metrics["date"].dtype)  # datetime64, of the input's unit
    server_codes, server_ids = pd.factorize(metrics["server_id"], sort=True)
    days = day_numbers(metrics["date"])
    _check_one_row_per_day(server_codes, days)
    key, day, value = _observations(metrics, names, server_codes, days)
    grid_key, grid_day, grid_value, n_series = _daily_grid(key, day, value)

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
        n_series,
        len(long) - len(value),
    )
    return long


def _check_one_row_per_day(server_codes: np.ndarray, days: np.ndarray) -> None:
    """Raise ValueError when a server has two rows for one day."""
    first = days.min() if len(days) else 0
    span = days.max() - first + 1 if len(days) else 1
    row_key = server_codes.astype(np.int64) * span + (days - first)
    duplicates = int(pd.Series(row_key).duplicated().sum())
    if duplicates:
        raise ValueError(f"metrics frame has {duplicates} duplicate (server_id, date) rows")


def _observations(
    metrics: pd.DataFrame, names: Sequence[str], server_codes: np.ndarray, days: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(series key, day, value) of every observed (non-NaN) value, sorted by key and day; the
    key is server code x len(names) + the metric's position in ``names``."""
    keys, obs_days, obs_values = [], [], []
    for metric_code, name in enumerate(names):
        values = metrics[name].to_numpy(dtype=np.float64, na_value=np.nan)
        seen = ~np.isnan(values)
        keys.append(server_codes[seen].astype(np.int64) * len(names) + metric_code)
        obs_days.append(days[seen])
        obs_values.append(values[seen])
    key, day, value = np.concatenate(keys), np.concatenate(obs_days), np.concatenate(obs_values)
    order = np.lexsort((day, key))
    return key[order], day[order], value[order]


def _daily_grid(
    key: np.ndarray, day: np.ndarray, value: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(key, day, value) per row of the grid that spans each series' first to last observed
    day (NaN where nothing was observed), and the number of series."""
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
    return grid_key, grid_day, grid_value, len(block_key)
