"""Data quality of a validated fleet: coverage per metric, a table to show and a JSON summary.

Missing counts are empty values plus absent days within each server's first..last date, the
same measure validation holds against ``data.max_missing_share``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from capacity_forecaster.core.vocabulary import METRICS, MetricName


def coverage(metrics: pd.DataFrame) -> tuple[int, int, dict[MetricName, int]]:
    """(expected server-days, present rows, non-missing values per metric) over each server's range."""
    if metrics.empty:
        return 0, 0, dict.fromkeys(METRICS, 0)
    grouped = metrics.groupby("server_id", sort=False, observed=True)
    span = grouped["date"].agg(["min", "max"])
    expected = int(((span["max"] - span["min"]).dt.days + 1).sum())
    present = int(metrics[["server_id", "date"]].drop_duplicates().shape[0])
    counts = {m: int(metrics[m].notna().sum()) for m in METRICS}
    return expected, present, counts


def quality_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per metric: count, missing (empty values plus absent days), missing_share, min, p50, p95, max."""
    expected, _, counts = coverage(metrics)
    rows = []
    for metric in METRICS:
        values = metrics[metric].dropna()
        missing = expected - counts[metric]
        quantiles = values.quantile([0.5, 0.95]) if len(values) else pd.Series([np.nan, np.nan])
        rows.append(
            {
                "metric": metric,
                "count": counts[metric],
                "missing": missing,
                "missing_share": missing / expected if expected else np.nan,
                "min": values.min() if len(values) else np.nan,
                "p50": float(quantiles.iloc[0]),
                "p95": float(quantiles.iloc[1]),
                "max": values.max() if len(values) else np.nan,
            }
        )
    table = pd.DataFrame(rows).set_index("metric")
    return table.astype({"count": "int64", "missing": "int64"})


def quality_summary(
    metrics: pd.DataFrame,
    servers: pd.DataFrame,
    warnings: list[str],
    *,
    clipped: Mapping[str, Mapping[str, int]] | None = None,
    source: Mapping[str, Any] | None = None,
    reclamation: list[dict[str, Any]] | None = None,
    all_zero_days: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """A JSON-ready data-quality summary of a validated fleet: counts, dates, per-metric stats
    (monitored or not, the servers that never report it, values clipped to 100 %), the input
    it came from with the export reader's counts (``source``), the servers set aside as powered
    off or stale (``reclamation``, ``retired.set_aside_records``), all-zero days per server,
    and the warnings."""
    expected, present, counts = coverage(metrics)
    silent = servers_not_reporting(metrics)
    clipped = clipped or {}
    per_metric = {
        metric: {
            "monitored": metric not in silent
            or len(silent[metric]) < metrics["server_id"].nunique(),
            "missing_share": _number((expected - counts[metric]) / expected) if expected else None,
            "min": _number(metrics[metric].min()),
            "max": _number(metrics[metric].max()),
            "mean": _number(metrics[metric].mean()),
            "servers_not_reporting": silent.get(metric, []),
            "clipped_over_100": sum(int(c.get(metric, 0)) for c in clipped.values()),
        }
        for metric in METRICS
    }
    for stats in per_metric.values():
        if not stats["monitored"]:
            stats["servers_not_reporting"] = []  # the whole fleet: said once, by "monitored"
    return {
        "rows": len(metrics),
        "servers": int(metrics["server_id"].nunique()),
        **_date_range(metrics),
        "metrics": per_metric,
        "metrics_monitored": [m for m in METRICS if per_metric[m]["monitored"]],
        "missing_server_days_share": _number((expected - present) / expected) if expected else None,
        "servers_by_environment": _counts_by(servers, "environment"),
        "servers_by_business_unit": _counts_by(servers, "business_unit"),
        "clipped_over_100": {s: dict(c) for s, c in sorted(clipped.items())},
        "all_zero_days": {s: int(n) for s, n in sorted((all_zero_days or {}).items())},
        "reclamation": list(reclamation or []),
        "source": dict(source or {}),
        "warnings": [str(w) for w in warnings],
    }


def servers_not_reporting(metrics: pd.DataFrame) -> dict[str, list[str]]:
    """Per metric, the servers (sorted) without a single value of it; metrics every server
    reports are left out."""
    reported = metrics.groupby("server_id", sort=True)[list(METRICS)].count()
    return {
        metric: [str(s) for s in reported.index[reported[metric].eq(0)]]
        for metric in METRICS
        if reported[metric].eq(0).any()
    }


def _number(value: Any) -> float | None:
    """A JSON number: rounded to 6 decimals, None for NaN."""
    value = float(value)
    return None if np.isnan(value) else round(value, 6)


def _date_range(metrics: pd.DataFrame) -> dict[str, Any]:
    """date_start, date_end (ISO dates, None without rows) and days (0 without rows)."""
    if metrics.empty:
        return {"date_start": None, "date_end": None, "days": 0}
    start, end = pd.Timestamp(metrics["date"].min()), pd.Timestamp(metrics["date"].max())
    return {
        "date_start": start.strftime("%Y-%m-%d"),
        "date_end": end.strftime("%Y-%m-%d"),
        "days": int((end - start).days + 1),
    }


def _counts_by(servers: pd.DataFrame, column: str) -> dict[str, int]:
    """Servers per value of ``column`` (sorted), or {} when the column is absent."""
    if column not in servers.columns:
        return {}
    return {str(k): int(v) for k, v in servers[column].value_counts().sort_index().items()}
