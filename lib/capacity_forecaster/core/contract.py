"""The data contract: the daily metrics table and the servers table every input ends in.

Declared once here, on the ground floor: the synthetic generator writes these columns,
validation checks them, cleaning reads them, the catalog builds the validated products'
schemas from them, and a format reader (CloudWatch CSV, Prometheus JSON, raw samples) turns
its input into them before validation.
"""

from __future__ import annotations

import pandas as pd

from capacity_forecaster.core.vocabulary import METRICS, MetricName

# The daily metrics table, in column order: one row per server per day, P95 percent per metric.
METRIC_COLUMNS = ("date", "server_id", *METRICS)

# The servers table: text columns that must not be empty, capacity columns that must be > 0
# (integers when generated), and costs that may be zero (e.g. already paid-off hardware).
SERVER_TEXT_COLUMNS = ("business_unit", "region", "environment", "criticality")
SERVER_CAPACITY_COLUMNS = ("cpu_cores", "memory_gb", "disk_gb")
SERVER_COST_COLUMNS = ("monthly_cost_usd",)
# What a servers table must have; everything else is optional and kept as given.
SERVER_REQUIRED_COLUMNS = (
    "server_id",
    *SERVER_TEXT_COLUMNS,
    *SERVER_CAPACITY_COLUMNS,
    *SERVER_COST_COLUMNS,
)


def monitored_metrics(metrics: pd.DataFrame) -> list[MetricName]:
    """The metrics a daily metrics table has at least one value of, in ``METRICS`` order; the
    others are "not monitored" (a fleet without a disk agent) and every stage leaves them out."""
    return [m for m in METRICS if m in metrics.columns and bool(metrics[m].notna().any())]
