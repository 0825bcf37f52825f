"""Small constructed fleets for the stage 07 tests: history, champion forecasts, inventory."""

from __future__ import annotations

import numpy as np
import pandas as pd

from capacity_forecaster.core.params import RightSizingParams

END = pd.Timestamp("2026-06-30")
RS = RightSizingParams()  # percentile 95, headroom 0.2, idle < 5 %, under > 0.9, over < 0.4


def make_history(
    levels: dict[str, dict[str, float]], days: int = 90, seed: int = 0
) -> pd.DataFrame:
    """Daily values per server and metric: level + slope x day + small noise."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(end=END, periods=days, freq="D")
    rows = []
    for server, spec in levels.items():
        for metric in ("cpu_p95", "mem_p95", "disk_p95"):
            level = spec.get(metric, 30.0)
            slope = spec.get(f"{metric}_slope", 0.0)
            noise = spec.get("noise", 0.3)
            values = level + slope * np.arange(days) + rng.normal(0, noise, days)
            rows.append(
                pd.DataFrame(
                    {"server_id": server, "metric": metric, "date": dates, "value": values}
                )
            )
    return pd.concat(rows, ignore_index=True)


def make_forecasts(peaks: dict[str, tuple[float, float]], horizon: int = 120) -> pd.DataFrame:
    """Champion forecasts flat at the given cpu/mem percent, plus a wild non-champion model."""
    dates = pd.date_range(END + pd.Timedelta(days=1), periods=horizon, freq="D")
    rows = []
    for server, (cpu, mem) in peaks.items():
        for metric, level in (("cpu_p95", cpu), ("mem_p95", mem), ("disk_p95", 50.0)):
            for model, value, champion in (("prophet", level, True), ("rf", 99.0, False)):
                rows.append(
                    pd.DataFrame(
                        {
                            "server_id": server,
                            "metric": metric,
                            "date": dates,
                            "horizon": np.arange(1, horizon + 1),
                            "model": model,
                            "yhat": value,
                            "yhat_lower": value - 5,
                            "yhat_upper": value + 5,
                            "is_champion": champion,
                        }
                    )
                )
    return pd.concat(rows, ignore_index=True)


def make_servers(specs: dict[str, dict]) -> pd.DataFrame:
    """Inventory rows: defaults overridden per server."""
    rows = []
    for server, spec in specs.items():
        row = {
            "server_id": server,
            "business_unit": "Payments",
            "region": "eu-west",
            "environment": "prod",
            "criticality": "medium",
            "cpu_cores": 16,
            "memory_gb": 64,
            "disk_gb": 500,
            "monthly_cost_usd": 1000.0,
            "platform": "aws",
        }
        row.update(spec)
        rows.append(row)
    return pd.DataFrame(rows)


THRESHOLDS = {"cpu_p95": 80.0, "mem_p95": 85.0, "disk_p95": 90.0}  # stage 06's defaults


def make_risk(
    forecasts: pd.DataFrame, levels: dict[tuple[str, str], str] | None = None
) -> pd.DataFrame:
    """Stage 06's rows for the champion series of ``forecasts``: the default thresholds, the
    first forecast day as the recent P95, and high where the forecast reaches the threshold
    (low otherwise) unless ``levels`` names the level of a (server, metric)."""
    champion = forecasts[forecasts["is_champion"]]
    rows = champion.groupby(["server_id", "metric"], as_index=False).agg(
        current_p95=("yhat", "first"), peak=("yhat", "max")
    )
    rows["threshold"] = rows["metric"].map(THRESHOLDS)
    rows["risk_level"] = np.where(rows["peak"] >= rows["threshold"], "high", "low")
    for (server, metric), level in (levels or {}).items():
        rows.loc[(rows["server_id"] == server) & (rows["metric"] == metric), "risk_level"] = level
    return rows.drop(columns="peak")
