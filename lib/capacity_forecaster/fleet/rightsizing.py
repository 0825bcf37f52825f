"""Step 3 of stage 07: right-sizing, from each server's forecast peak demand plus headroom.

Per server: the forecast peak as a share of current capacity, the instance size that carries it
with headroom (rounded up to realistic core and memory sizes), a finding (idle, under-, over-
provisioned or optimal), the action it calls for, the monthly saving of that action alone and
its cost change, and the projected peak utilisation at the recommended size.

Too small has one meaning, stage 06's: a server is under-provisioned when one of its CPU or
memory series is at high or medium risk (risk/risk.parquet). Such a resource is sized so that
the forecast's upper bound (and the recent P95) stay at or under the series' threshold, and at
least one size up; a disk at risk gets the disk size that does the same.
"""

from __future__ import annotations

import logging
from typing import Literal, cast

import numpy as np
import pandas as pd

from capacity_forecaster.core.params import RightSizingParams
from capacity_forecaster.core.vocabulary import AT_RISK_LEVELS, SERIES_KEY
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
DISK_STEP_GB = 50  # a disk grows to a multiple of this
FINDINGS = ("idle", "under-provisioned", "over-provisioned", "optimal")
SIZED_METRICS: tuple[Literal["cpu_p95", "mem_p95"], ...] = ("cpu_p95", "mem_p95")  # sized for
RISK_METRICS = ("cpu_p95", "mem_p95", "disk_p95")  # whose risk calls for a bigger size
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
    "history_cpu_mean",
    "history_cpu_std",
    "history_mem_p95",
    "peak_cpu_p95",
    "peak_mem_p95",
    "peak_source",
    "peak_cpu_share",
    "peak_mem_share",
    "cpu_at_risk",
    "mem_at_risk",
    "disk_at_risk",
    "recommended_cores",
    "recommended_memory_gb",
    "disk_gb",
    "recommended_disk_gb",
    "projected_cpu_peak",
    "projected_mem_peak",
    "projected_disk_peak",
    "finding",
    "action",
    "monthly_savings_usd",
    "monthly_cost_change_usd",
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
    risk: pd.DataFrame,
) -> pd.DataFrame:
    """Per server: forecast peak share of capacity, recommended size, finding, saving and the
    projected peak at the recommended size.

    Peak share = the ``params.percentile`` percentile of the champion forecast over the horizon,
    / 100 (a share of current capacity; a series without a champion forecast falls back to its
    history P95, noted in ``peak_source``). Recommended cores = ceil(cores x peak share /
    (1 - headroom)), rounded up to ``CORE_SIZES``; memory likewise on ``MEMORY_SIZES_GB``. A
    resource at high or medium risk in ``risk`` (stage 06's rows: server_id, metric,
    risk_level, threshold, current_p95) gets at least the size at which the forecast's upper
    bound and the recent P95 stay at or under its threshold, and at least one size up.
    Finding: "under-provisioned" (CPU or memory at risk), else "idle" (nothing at risk, and
    CPU P95 less one standard deviation of the daily CPU, and the mean, under
    ``idle_cpu_p95``: a P95 of a few percent is mostly noise), else "over-provisioned" (the
    larger peak share below ``over_utilisation``), else "optimal". Monthly saving:
    over-provisioned = cost x (0.5 x core drop share + 0.5 x memory drop share), never
    negative (half the cost follows cores, half memory); idle = the whole cost (decommission
    candidate); 0 otherwise. The cost change of the action follows the same model (positive
    for an upsize), plus a grown disk's new GB at ``disk_usd_per_gb_month``. Projected peaks are the forecast's
    highest day at the recommended size, in percent.

    Returns:
        One row per server in ``SIZING_COLUMNS``, sorted by server_id.
    """
    for metric in SIZED_METRICS:
        headroom = params.headroom.get(metric, 0.0)
        if not 0 <= headroom < 1:
            raise ValueError(f"headroom for {metric} must be in [0, 1), got {headroom}")
    frame = _with_inventory(features, servers)
    frame = _with_peaks(frame, forecasts, params.percentile)
    frame = frame.merge(_risk_needs(risk, forecasts), on="server_id", how="left")
    for at_risk in ("cpu_at_risk", "mem_at_risk", "disk_at_risk"):
        frame[at_risk] = frame[at_risk].astype("boolean").fillna(False).astype(bool)
    frame = _with_recommended_size(frame, params)
    frame = _with_finding(frame, params)
    frame = _with_projection(frame)
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
    needed = ["server_id", *METADATA_COLUMNS, "disk_gb"]
    missing = [c for c in needed if c not in servers.columns]
    if missing:
        raise ValueError(f"servers lack columns {missing}")
    frame = profile[["server_id", "cpu_p95", "cpu_mean", "cpu_volatility", "mem_p95"]].rename(
        columns={
            "cpu_p95": "history_cpu_p95",
            "cpu_mean": "history_cpu_mean",
            "cpu_volatility": "history_cpu_std",
            "mem_p95": "history_mem_p95",
        }
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


def _risk_needs(risk: pd.DataFrame, forecasts: pd.DataFrame) -> pd.DataFrame:
    """Per server and metric of ``RISK_METRICS``: whether it is at high or medium risk
    (``cpu_at_risk``), the capacity multiple that keeps the forecast's upper bound and the
    recent P95 at or under its threshold (``cpu_need``), and the forecast's highest day
    (``cpu_forecast_max``)."""
    champion = forecasts[forecasts["is_champion"].astype(bool)]
    highest = champion.groupby(list(SERIES_KEY))[["yhat", "yhat_upper"]].max()
    rows = risk.set_index(list(SERIES_KEY))[["risk_level", "threshold", "current_p95"]]
    rows = rows.join(highest, how="left")
    rows = rows[rows.index.get_level_values("metric").isin(RISK_METRICS)]
    basis = rows[["yhat_upper", "current_p95"]].max(axis=1)
    needs = pd.DataFrame(
        {
            "at_risk": rows["risk_level"].isin(list(AT_RISK_LEVELS)),
            "need": basis / rows["threshold"],
            "forecast_max": rows["yhat"],
        }
    )
    wide = cast(pd.DataFrame, needs.unstack("metric"))
    pairs = zip(
        wide.columns.get_level_values(0), wide.columns.get_level_values("metric"), strict=True
    )
    wide.columns = [f"{str(metric)[:-4]}_{what}" for what, metric in pairs]
    columns = [f"{m[:-4]}_{what}" for m in RISK_METRICS for what in needs.columns]
    return wide.reindex(columns=columns).reset_index()


def _one_size_up(capacity: pd.Series, sizes: tuple[int, ...]) -> np.ndarray:
    """The next size on the ladder above ``capacity`` (a capacity between sizes: the next)."""
    return round_up_to_size(capacity.astype(float) + 0.5, sizes)


def _at_risk_size(capacity: pd.Series, need: pd.Series, sizes: tuple[int, ...]) -> np.ndarray:
    """For a resource at risk: the size that carries ``need`` x capacity, at least one up."""
    needed = round_up_to_size(np.ceil(capacity.astype(float) * need.fillna(1.0) - TOLERANCE), sizes)
    return np.maximum(needed, _one_size_up(capacity, sizes))


def _with_recommended_size(frame: pd.DataFrame, params: RightSizingParams) -> pd.DataFrame:
    """Adds the cores and memory that carry the peak with headroom, on the size ladders, and
    for a resource at risk at least the size that keeps it under its threshold."""
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
    cores = np.where(
        frame["cpu_at_risk"],
        np.maximum(cores, _at_risk_size(frame["cpu_cores"], frame["cpu_need"], CORE_SIZES)),
        cores,
    )
    memory = np.where(
        frame["mem_at_risk"],
        np.maximum(memory, _at_risk_size(frame["memory_gb"], frame["mem_need"], MEMORY_SIZES_GB)),
        memory,
    )
    # An unmeasured resource keeps its size.
    frame["recommended_cores"] = np.where(frame["peak_cpu_share"].isna(), frame["cpu_cores"], cores)
    frame["recommended_memory_gb"] = np.where(
        frame["peak_mem_share"].isna(), frame["memory_gb"], memory
    )
    disk = frame["disk_gb"].astype(float)
    grown = np.ceil(disk * frame["disk_need"].fillna(1.0) / DISK_STEP_GB - TOLERANCE)
    one_up = np.floor(disk / DISK_STEP_GB) + 1
    frame["recommended_disk_gb"] = np.where(
        frame["disk_at_risk"], np.maximum(grown, one_up) * DISK_STEP_GB, disk
    )
    return frame


def _with_finding(frame: pd.DataFrame, params: RightSizingParams) -> pd.DataFrame:
    """Adds the finding, the monthly saving of acting on it and the action."""
    peak = frame[["peak_cpu_share", "peak_mem_share"]].max(axis=1)  # of what was measured
    under = frame["cpu_at_risk"] | frame["mem_at_risk"]
    # Idling at 3 % mean CPU, half such servers had a P95 of 5.0-5.3 against a 5.0 cut: the
    # P95 less one standard deviation of the daily values allows for that noise.
    noise = frame["history_cpu_std"].fillna(0.0)
    idle = (
        ~under
        & ~frame["disk_at_risk"]
        & (frame["history_cpu_p95"] - noise < params.idle_cpu_p95)
        & (frame["history_cpu_mean"] < params.idle_cpu_p95)
    )
    frame["finding"] = np.select(
        [under, idle, peak < params.over_utilisation],
        ["under-provisioned", "idle", "over-provisioned"],
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
    resized = (
        0.5 * frame["recommended_cores"] / frame["cpu_cores"].astype(float)
        + 0.5 * frame["recommended_memory_gb"] / frame["memory_gb"].astype(float)
        - 1.0
    )
    compute_change = np.select(
        [frame["action"] == "decommission", frame["action"].isin(["downsize", "upsize"])],
        [-cost, cost * resized],
        default=0.0,
    )
    # A disk only grows here (at risk); its cost is its own, beside the cores' and memory's.
    grown_gb = (frame["recommended_disk_gb"] - frame["disk_gb"].astype(float)).clip(lower=0.0)
    frame["monthly_cost_change_usd"] = compute_change + (
        grown_gb.fillna(0.0) * params.disk_usd_per_gb_month
    )
    return frame


def _with_projection(frame: pd.DataFrame) -> pd.DataFrame:
    """Adds the forecast's highest day as a percent of the recommended size, per resource
    (the history P95 where a series has no forecast)."""
    for prefix, capacity, recommended in (
        ("cpu", "cpu_cores", "recommended_cores"),
        ("mem", "memory_gb", "recommended_memory_gb"),
        ("disk", "disk_gb", "recommended_disk_gb"),
    ):
        highest = frame[f"{prefix}_forecast_max"]
        if prefix != "disk":
            highest = highest.fillna(frame[f"peak_{prefix}_p95"])
        ratio = frame[capacity].astype(float) / frame[recommended].astype(float)
        frame[f"projected_{prefix}_peak"] = (highest * ratio).clip(0.0, 100.0)
    return frame
