"""Small metrics and servers tables in contract dtypes, and the validation call the tests share."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from capacity_forecaster.core.vocabulary import METRICS
from capacity_forecaster.ingest.validate import validate_metrics

M_SRC = "metrics.csv"
S_SRC = "servers.csv"
MIN_DAYS = 28
MAX_MISSING = 0.1


def make_metrics(n_servers: int = 3, days: int = 40, start: str = "2025-01-01") -> pd.DataFrame:
    """A valid metrics frame in contract dtypes, sorted by server_id, date."""
    dates = pd.date_range(start, periods=days, freq="D").as_unit("ns")
    ids = [f"srv-{i:02d}" for i in range(n_servers)]
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "date": np.tile(dates.to_numpy(), n_servers),
            "server_id": pd.Series(np.repeat(ids, days), dtype="str"),
            **{m: rng.uniform(5, 95, n_servers * days).round(2) for m in METRICS},
        }
    )
    return frame


def make_servers(n_servers: int = 3) -> pd.DataFrame:
    """Valid server metadata for ``make_metrics`` servers, with one extra column."""
    return pd.DataFrame(
        {
            "server_id": pd.Series([f"srv-{i:02d}" for i in range(n_servers)], dtype="str"),
            "business_unit": (["retail", "finance", "retail", "ops"] * n_servers)[:n_servers],
            "region": ["eu-west-1"] * n_servers,
            "environment": (["prod", "dev"] * n_servers)[:n_servers],
            "criticality": ["high"] * n_servers,
            "cpu_cores": [8.0] * n_servers,
            "memory_gb": [32.0] * n_servers,
            "disk_gb": [500.0] * n_servers,
            "monthly_cost_usd": [120.0] * n_servers,
            "owner": ["team-a"] * n_servers,
        }
    )


def check_metrics(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    validated = validate_metrics(
        frame, M_SRC, max_missing_share=MAX_MISSING, min_history_days=MIN_DAYS
    )
    return validated.frame, validated.warnings


def with_values(column: str, rows: list[int], values: list[object]) -> Callable[[], object]:
    """Validate a good metrics frame whose ``column`` has ``values`` at ``rows`` (as object)."""

    def run() -> object:
        frame = make_metrics()
        frame[column] = frame[column].astype(object)
        for row, value in zip(rows, values, strict=True):
            frame.at[row, column] = value
        return check_metrics(frame)

    return run
