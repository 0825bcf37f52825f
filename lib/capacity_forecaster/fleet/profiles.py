"""Step 1 of stage 07: a utilisation profile per server from the cleaned daily history.

Levels (P95 and mean of the daily values per metric), CPU volatility and the growth of each
metric, all over the same last days of the fleet's history: the features ``clustering`` groups
servers by and ``rightsizing`` starts from.
"""

from __future__ import annotations

import logging
from typing import cast

import pandas as pd

from capacity_forecaster.core.vocabulary import METRICS, SERIES_KEY

logger = logging.getLogger(__name__)

__all__ = ["FEATURE_COLUMNS", "utilisation_features"]

METRIC_PREFIX: dict[str, str] = {m: m.removesuffix("_p95") for m in METRICS}  # cpu_p95 -> cpu
FEATURE_COLUMNS = [
    "cpu_p95",
    "mem_p95",
    "disk_p95",
    "cpu_mean",
    "mem_mean",
    "disk_mean",
    "cpu_volatility",
    "cpu_growth",
    "mem_growth",
    "disk_growth",
]
HISTORY_COLUMNS = [*SERIES_KEY, "date", "value"]


def utilisation_features(history: pd.DataFrame, lookback_days: int) -> pd.DataFrame:
    """One row per server over the last ``lookback_days`` of the fleet's history.

    P95 and mean of the daily values per metric, the standard deviation of daily CPU, and the
    growth of each metric in percent points per 30 days (least-squares slope x 30). The window
    ends on the fleet's last day, so every server is judged over the same dates. A series with
    fewer than two days has volatility and growth 0; a missing metric stays NaN.

    Args:
        history: daily values, columns server_id, metric, date, value (other metrics ignored).
        lookback_days: the window's length in days, at least 1.

    Returns:
        One row per server: ``server_id`` then ``FEATURE_COLUMNS``.
    """
    window = _last_days(history, lookback_days)
    features = _one_row_per_server(_series_stats(window))
    gaps = features.isna().any(axis=1)
    if gaps.any():
        logger.warning(
            "07_cluster: %d of %d servers lack a metric in the last %d days",
            int(gaps.sum()),
            len(features),
            lookback_days,
        )
    logger.info(
        "07_cluster: utilisation features for %d servers over %d days", len(features), lookback_days
    )
    return features.reset_index()


def _last_days(history: pd.DataFrame, lookback_days: int) -> pd.DataFrame:
    """The metrics' values in the window, with ``x``: days since the window's first day."""
    if lookback_days < 1:
        raise ValueError(f"lookback_days must be at least 1, got {lookback_days}")
    missing = set(HISTORY_COLUMNS) - set(history.columns)
    if missing:
        raise ValueError(f"history lacks columns {sorted(missing)}")
    frame = history.loc[history["metric"].isin(list(METRIC_PREFIX)), HISTORY_COLUMNS].dropna(
        subset=["value"]
    )
    if frame.empty:
        raise ValueError("history has no cpu_p95/mem_p95/disk_p95 values")
    dates = pd.to_datetime(frame["date"])
    start = dates.max() - pd.Timedelta(days=lookback_days - 1)
    return frame[dates >= start].assign(x=(dates[dates >= start] - start).dt.days.astype(float))


def _series_stats(frame: pd.DataFrame) -> pd.DataFrame:
    """Per server x metric: p95, mean, volatility (daily std) and growth (points per 30 days)."""
    grouped = frame.groupby(list(SERIES_KEY), sort=True)
    return pd.DataFrame(
        {
            "p95": grouped["value"].quantile(0.95),
            "mean": grouped["value"].mean(),
            "volatility": grouped["value"].std(ddof=1).fillna(0.0),
            "growth": _slope_per_30_days(frame),
        }
    )


def _slope_per_30_days(frame: pd.DataFrame) -> pd.Series:
    """Per server x metric: the least-squares slope of value on ``x``, x 30 (0 for one day)."""
    means = frame.groupby(list(SERIES_KEY), sort=True)[["x", "value"]].transform("mean")
    dx = frame["x"] - means["x"]
    dy = frame["value"] - means["value"]
    sums = (
        pd.DataFrame({"sxy": dx * dy, "sxx": dx * dx, "server_id": frame["server_id"]})
        .assign(metric=frame["metric"])
        .groupby(list(SERIES_KEY), sort=True)[["sxy", "sxx"]]
        .sum()
    )
    return (sums["sxy"] / sums["sxx"].where(sums["sxx"] > 0)).fillna(0.0) * 30.0


def _one_row_per_server(stats: pd.DataFrame) -> pd.DataFrame:
    """The stats spread to ``FEATURE_COLUMNS`` (cpu_p95, ..., disk_growth), indexed by server."""
    # Unstacking one level of a two-level index always gives a frame (the stubs allow a Series).
    wide = cast(pd.DataFrame, stats.unstack("metric"))
    stats_, metrics = wide.columns.get_level_values(0), wide.columns.get_level_values("metric")
    wide.columns = [
        f"{METRIC_PREFIX[metric]}_{stat}" for stat, metric in zip(stats_, metrics, strict=True)
    ]
    features = wide.reindex(columns=FEATURE_COLUMNS)
    features.index.name = "server_id"
    features.columns.name = None
    return features
