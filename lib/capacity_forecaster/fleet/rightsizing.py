"""Step 3 of stage 07: right-sizing, from each server's forecast peak demand plus headroom.

Per server: the forecast peak as a share of current capacity, the instance size that carries it
with headroom (rounded up to realistic core and memory sizes), a finding (idle, under-, over-
provisioned or optimal), the action it calls for and the monthly saving of that action alone.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd

from capacity_forecaster.core.params import RightSizingParams
from capacity_forecaster.core.vocabulary import SERIES_KEY
from capacity_forecaster.fleet._common import TOLERANCE, with_server_column

logger = logging.getLogger(__name__)

__all__ = [
    "CORE_SIZES",
    "FINDINGS",
    "MEMORY_SIZES_GB",
    "METADATA_COLUMNS",
    "right_size",
    "round_up_to_size",
]

CORE_SIZES = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128)
MEMORY_SIZES_GB = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
FINDINGS = ("idle", "under-provisioned", "over-provisioned", "optimal")
SIZED_METRICS: tuple[Literal["cpu_p95", "mem_p95"], ...] = ("cpu_p95", "mem_p95")  # sized for
METADATA_COLUMNS = [
    "environment",
    "criticality",
    "business_unit",
    "region",
    "cpu_cores",
    "memory_gb",
    "monthly_cost_usd",
]
SIZING_COLUMNS = [
    "server_id",
    *METADATA_COLUMNS,
    "history_cpu_p95",
    "history_mem_p95",
    "peak_cpu_p95",
    "peak_mem_p95",
    "peak_source",
    "peak_cpu_share",
    "peak_mem_share",
    "recommended_cores",
    "recommended_memory_gb",
    "finding",
    "action",
    "monthly_savings_usd",
]


def round_up_to_size(values: np.ndarray | pd.Series, sizes: tuple[int, ...]) -> np.ndarray:
    """Each value rounded up to the next listed size (at least the smallest).

    Above the largest size, values round up to a multiple of the last step between sizes
    (cores: 32, memory: 256 GB), e.g. 130 cores -> 160.
    """
    ladder = np.asarray(sizes, dtype=float)
    x = np.nan_to_num(np.asarray(values, dtype=float), nan=ladder[0])
    index = np.searchsorted(ladder, x - TOLERANCE, side="left")
    inside = ladder[np.minimum(index, len(ladder) - 1)]
    step = ladder[-1] - ladder[-2]
    beyond = np.ceil((x - TOLERANCE) / step) * step
    return np.where(index < len(ladder), inside, beyond).astype(int)


def right_size(
    features: pd.DataFrame,
    forecasts: pd.DataFrame,
    servers: pd.DataFrame,
    params: RightSizingParams,
) -> pd.DataFrame:
    """Per server: forecast peak share of capacity, recommended size, finding and saving.

    Peak share = the ``params.percentile`` percentile of the champion forecast over the horizon,
    / 100 (a share of current capacity; a series without a champion forecast falls back to its
    history P95, noted in ``peak_source``). Recommended cores = ceil(cores x peak share /
    (1 - headroom)), rounded up to ``CORE_SIZES``; memory likewise on ``MEMORY_SIZES_GB``.
    Finding: "idle" (history CPU P95 below ``idle_cpu_p95``), else "under-provisioned" /
    "over-provisioned" when the larger of the CPU and memory peak shares is above
    ``under_utilisation`` / below ``over_utilisation``, else "optimal". Monthly saving:
    over-provisioned = cost x (0.5 x core drop share + 0.5 x memory drop share), never
    negative (half the cost follows cores, half memory); idle = the whole cost (decommission
    candidate); 0 otherwise.

    Returns:
        One row per server in ``SIZING_COLUMNS``, sorted by server_id.
    """
    for metric in SIZED_METRICS:
        headroom = params.headroom.get(metric, 0.0)
        if not 0 <= headroom < 1:
            raise ValueError(f"headroom for {metric} must be in [0, 1), got {headroom}")
    frame = _with_inventory(features, servers)
    frame = _with_peaks(frame, forecasts, params.percentile)
    frame = _with_recommended_size(frame, params)
    frame = _with_finding(frame, params)
    result = frame[SIZING_COLUMNS].sort_values("server_id", ignore_index=True)
    counts = result["finding"].value_counts()
    logger.info(
        "07_cluster: right-sized %d servers (%s), potential %.0f USD/month",
        len(result),
        ", ".join(f"{f}: {int(counts.get(f, 0))}" for f in FINDINGS),
        result["monthly_savings_usd"].sum(),
    )
    return result


def _with_inventory(features: pd.DataFrame, servers: pd.DataFrame) -> pd.DataFrame:
    """Per server: its history P95 of CPU and memory and its inventory (``METADATA_COLUMNS``)."""
    profile = with_server_column(features)
    needed = ["server_id", *METADATA_COLUMNS]
    missing = [c for c in needed if c not in servers.columns]
    if missing:
        raise ValueError(f"servers lack columns {missing}")
    frame = profile[["server_id", "cpu_p95", "mem_p95"]].rename(
        columns={"cpu_p95": "history_cpu_p95", "mem_p95": "history_mem_p95"}
    )
    frame = frame.merge(servers[needed], on="server_id", how="left", validate="one_to_one")
    unknown = frame["cpu_cores"].isna() | frame["memory_gb"].isna()
    if unknown.any():
        raise ValueError(
            f"{int(unknown.sum())} servers have no inventory (cpu_cores, memory_gb), "
            f"e.g. {frame.loc[unknown, 'server_id'].iloc[0]}"
        )
    return frame


def _forecast_peaks(forecasts: pd.DataFrame, percentile: float) -> pd.DataFrame:
    """Per server: the ``percentile`` of the champion yhat over the horizon, cpu and mem, in %."""
    champion = forecasts[
        forecasts["is_champion"].astype(bool) & forecasts["metric"].isin(list(SIZED_METRICS))
    ]
    models = champion.groupby(list(SERIES_KEY))["model"].nunique()
    if (models > 1).any():
        worst = models[models > 1].index[0]
        raise ValueError(
            f"forecasts: {int((models > 1).sum())} series have more than one champion model, e.g. {worst}"
        )
    peaks = (
        champion.groupby(list(SERIES_KEY))["yhat"]
        .quantile(percentile / 100.0)
        .unstack("metric")
        .reindex(columns=list(SIZED_METRICS))
    )
    peaks.columns.name = None
    return peaks


def _with_peaks(frame: pd.DataFrame, forecasts: pd.DataFrame, percentile: float) -> pd.DataFrame:
    """Adds the forecast peaks (history P95 where a server has no champion forecast), their
    source and the peak shares of capacity."""
    peaks = _forecast_peaks(forecasts, percentile)
    frame = frame.merge(
        peaks.rename(columns={"cpu_p95": "peak_cpu_p95", "mem_p95": "peak_mem_p95"}),
        left_on="server_id",
        right_index=True,
        how="left",
    )
    no_forecast = frame["peak_cpu_p95"].isna() | frame["peak_mem_p95"].isna()
    frame["peak_source"] = np.where(no_forecast, "history", "forecast")
    frame["peak_cpu_p95"] = frame["peak_cpu_p95"].fillna(frame["history_cpu_p95"])
    frame["peak_mem_p95"] = frame["peak_mem_p95"].fillna(frame["history_mem_p95"])
    if no_forecast.any():
        logger.warning(
            "07_cluster: %d servers have no champion cpu/mem forecast; using history P95",
            int(no_forecast.sum()),
        )
    # NaN where the resource was never measured (a fleet without a memory agent): no size
    # is judged from it, rather than from a made-up zero.
    frame["peak_cpu_share"] = (frame["peak_cpu_p95"] / 100.0).clip(lower=0.0)
    frame["peak_mem_share"] = (frame["peak_mem_p95"] / 100.0).clip(lower=0.0)
    return frame


def _with_recommended_size(frame: pd.DataFrame, params: RightSizingParams) -> pd.DataFrame:
    """Adds the cores and memory that carry the peak with headroom, on the size ladders."""
    need_cores = np.ceil(
        frame["cpu_cores"].astype(float)
        * frame["peak_cpu_share"]
        / (1 - params.headroom.get("cpu_p95", 0.0))
        - TOLERANCE
    )
    need_memory = np.ceil(
        frame["memory_gb"].astype(float)
        * frame["peak_mem_share"]
        / (1 - params.headroom.get("mem_p95", 0.0))
        - TOLERANCE
    )
    cores = round_up_to_size(np.maximum(need_cores.fillna(1), 1), CORE_SIZES)
    memory = round_up_to_size(np.maximum(need_memory.fillna(1), 1), MEMORY_SIZES_GB)
    # An unmeasured resource keeps its size.
    frame["recommended_cores"] = np.where(frame["peak_cpu_share"].isna(), frame["cpu_cores"], cores)
    frame["recommended_memory_gb"] = np.where(
        frame["peak_mem_share"].isna(), frame["memory_gb"], memory
    )
    return frame


def _with_finding(frame: pd.DataFrame, params: RightSizingParams) -> pd.DataFrame:
    """Adds the finding, the monthly saving of acting on it and the action."""
    peak = frame[["peak_cpu_share", "peak_mem_share"]].max(axis=1)  # of what was measured
    idle = frame["history_cpu_p95"] < params.idle_cpu_p95
    frame["finding"] = np.select(
        [idle, peak > params.under_utilisation, peak < params.over_utilisation],
        ["idle", "under-provisioned", "over-provisioned"],
        default="optimal",
    )
    # Half the cost follows cores, half memory.
    drop = 0.5 * (1 - frame["recommended_cores"] / frame["cpu_cores"].astype(float)) + 0.5 * (
        1 - frame["recommended_memory_gb"] / frame["memory_gb"].astype(float)
    )
    cost = frame["monthly_cost_usd"].astype(float).fillna(0.0)
    frame["monthly_savings_usd"] = np.select(
        [frame["finding"] == "over-provisioned", frame["finding"] == "idle"],
        [(cost * drop).clip(lower=0.0), cost],
        default=0.0,
    )
    frame["action"] = np.select(
        [
            frame["finding"] == "idle",
            (frame["finding"] == "over-provisioned") & (frame["monthly_savings_usd"] > 0),
            frame["finding"] == "under-provisioned",
        ],
        ["decommission", "downsize", "upsize"],
        default="none",
    )
    return frame
