"""The words every stage shares: metric and model names, series keys, risk levels, labels.

Defined once here so that a product's writer and its readers cannot drift apart; the
catalog (``core.catalog``) builds the products' schemas from these names.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Literal, get_args

MetricName = Literal["cpu_p95", "mem_p95", "disk_p95"]
METRICS: tuple[MetricName, ...] = get_args(MetricName)
METRIC_LABELS = MappingProxyType({"cpu_p95": "CPU", "mem_p95": "Memory", "disk_p95": "Disk"})

SERIES_KEY = ("server_id", "metric")  # one forecast series: a server's metric

ModelName = Literal[
    "seasonal_naive",
    "robust_trend",
    "prophet",
    "random_forest",
    "gradient_boosting",
    "recent_level",
]
MODEL_NAMES: tuple[ModelName, ...] = get_args(ModelName)
BASELINE_MODEL: ModelName = "seasonal_naive"  # every model is judged against it
CHAMPION = "champion"  # each series' backtest winner, reported as one pseudo-model
MODEL_LABELS = MappingProxyType(
    {
        CHAMPION: "Champion (per metric)",
        BASELINE_MODEL: "Seasonal naive (baseline)",
        "robust_trend": "Robust trend",
        "prophet": "Prophet",
        "random_forest": "Random forest",
        "gradient_boosting": "Gradient boosting",
        "recent_level": "Recent level",
    }
)

RISK_LEVELS = ("high", "medium", "low")
AT_RISK_LEVELS = ("high", "medium")
CRITICALITIES = ("critical", "high", "medium", "low")  # most critical first

# How far a series' forecast can be trusted (risk.trust), and what each grade means.
TRUST_GRADES = ("A", "B", "C", "D")
TRUST_MEANINGS = MappingProxyType(
    {
        "A": "no weakness: long, complete history, backtested over the whole horizon, beats "
        "seasonal-naive, intervals as stated",
        "B": "one minor weakness; the date holds",
        "C": "a serious weakness or several; treat the date as indicative",
        "D": "too little history or an unproven model behind it; verify before acting on it",
    }
)

# The report charts, each drawn as an interactive page and as an image (stage 09).
CHART_NAMES = ("urgent_servers", "risk_heatmap", "clusters", "model_accuracy", "savings")
