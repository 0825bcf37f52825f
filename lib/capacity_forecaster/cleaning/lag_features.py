"""Lag and rolling features per series, from past days only (the row for day t sees up to t-1)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from capacity_forecaster.cleaning.grid import series_bounds


def lag_columns(lags: tuple[int, ...], windows: tuple[int, ...]) -> list[str]:
    """Names of the lag and rolling columns, in output order."""
    names = [f"lag_{k}" for k in lags]
    for w in windows:
        names += [f"roll_mean_{w}", f"roll_std_{w}", f"roll_max_{w}"]
    return names


def add_lag_features(
    frame: pd.DataFrame, lags: tuple[int, ...], windows: tuple[int, ...]
) -> pd.DataFrame:
    """Add lag_{k} and roll_mean/std/max_{w} per series, from past days only.

    The row for day t sees values up to t-1: lag_k is the value at t-k and the rolling stats
    cover days t-w..t-1. A window must be complete (min_periods = w, inside the series), so
    warm-up rows and rows whose window touches a NaN are NaN. roll_std is the population
    standard deviation (ddof=0), defined for every w >= 1.
    """
    start, _ = series_bounds(frame)
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
