"""Stage 07: utilisation profiles, K-Means clusters, right-sizing and consolidation.

The chain is ``utilisation_features`` (one row per server from the cleaned daily history) ->
``cluster_servers`` (scaled K-Means, clusters numbered and labelled from their centroids, never
from the arbitrary K-Means index, so the same fleet in any row order gets the same answer) ->
``right_size`` (forecast peak demand plus headroom -> a realistic instance size and a finding)
-> ``consolidate`` (2-D first-fit-decreasing packing of over-provisioned and idle servers onto
fewer hosts of the same environment and criticality) -> ``recommendations`` (a JSON summary).

Savings are alternatives per server, never added twice: a server freed by consolidation saves
its whole ``monthly_cost_usd`` (consolidation saving); a server that stays and hosts nobody else
keeps its right-sizing saving (a downsize, or the whole cost for an idle decommission
candidate); a server that stays as a host of freed servers saves nothing, because its capacity
now carries their load. Total = consolidation + right-sizing of servers neither freed nor hosting.
Plain functions on frames; no I/O.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.params import RightSizingParams

logger = logging.getLogger(__name__)

__all__ = [
    "CORE_SIZES",
    "FEATURE_COLUMNS",
    "FINDINGS",
    "MEMORY_SIZES_GB",
    "check_clusters",
    "cluster_servers",
    "consolidate",
    "recommendations",
    "right_size",
    "round_up_to_size",
    "utilisation_features",
]

METRIC_PREFIX = {"cpu_p95": "cpu", "mem_p95": "mem", "disk_p95": "disk"}
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
CORE_SIZES = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128)
MEMORY_SIZES_GB = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
FINDINGS = ("idle", "under-provisioned", "over-provisioned", "optimal")
METADATA_COLUMNS = [
    "environment",
    "criticality",
    "business_unit",
    "region",
    "cpu_cores",
    "memory_gb",
    "monthly_cost_usd",
]
CRITICAL_TIER = "critical"
GROWING_MIN_POINTS = 1.0  # percent points per 30 days: below this a cluster is never "growing"
IDLE_MAX_CPU = 10.0  # percent: a centroid above this P95 CPU is never labelled "idle"
_TOLERANCE = 1e-9


def _with_server_column(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with ``server_id`` as a column (accepts it as the index or a column)."""
    if "server_id" in frame.columns:
        return frame.reset_index(drop=True)
    if frame.index.name == "server_id":
        return frame.reset_index()
    raise ValueError("expected a server_id column or index")


# --------------------------------------------------------------------------- features


def utilisation_features(history: pd.DataFrame, lookback_days: int) -> pd.DataFrame:
    """One row per server over the last ``lookback_days`` of the fleet's history.

    P95 and mean of the daily values per metric, the standard deviation of daily CPU, and the
    growth of each metric in percent points per 30 days (least-squares slope x 30). The window
    ends on the fleet's last day, so every server is judged over the same dates. A series with
    fewer than two days has volatility and growth 0; a missing metric stays NaN.
    """
    if lookback_days < 1:
        raise ValueError(f"lookback_days must be at least 1, got {lookback_days}")
    missing = {"server_id", "metric", "date", "value"} - set(history.columns)
    if missing:
        raise ValueError(f"history lacks columns {sorted(missing)}")
    frame = history.loc[
        history["metric"].isin(list(METRIC_PREFIX)), ["server_id", "metric", "date", "value"]
    ].dropna(subset=["value"])
    if frame.empty:
        raise ValueError("history has no cpu_p95/mem_p95/disk_p95 values")
    dates = pd.to_datetime(frame["date"])
    start = dates.max() - pd.Timedelta(days=lookback_days - 1)
    frame = frame[dates >= start].assign(x=(dates[dates >= start] - start).dt.days.astype(float))

    grouped = frame.groupby(["server_id", "metric"], sort=True)
    means = grouped[["x", "value"]].transform("mean")
    dx = frame["x"] - means["x"]
    dy = frame["value"] - means["value"]
    sums = (
        pd.DataFrame({"sxy": dx * dy, "sxx": dx * dx, "server_id": frame["server_id"]})
        .assign(metric=frame["metric"])
        .groupby(["server_id", "metric"], sort=True)[["sxy", "sxx"]]
        .sum()
    )
    slope = (sums["sxy"] / sums["sxx"].where(sums["sxx"] > 0)).fillna(0.0) * 30.0
    stats = pd.DataFrame(
        {
            "p95": grouped["value"].quantile(0.95),
            "mean": grouped["value"].mean(),
            "volatility": grouped["value"].std(ddof=1).fillna(0.0),
            "growth": slope,
        }
    )
    wide = stats.unstack("metric")
    wide.columns = [f"{METRIC_PREFIX[metric]}_{stat}" for stat, metric in wide.columns]
    features = wide.reindex(columns=FEATURE_COLUMNS)
    features.index.name = "server_id"
    features.columns.name = None
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


# --------------------------------------------------------------------------- clusters


def _label_centroids(centroids: pd.DataFrame, fleet: pd.DataFrame) -> list[str]:
    """A human label per centroid from rules on its levels and growth against fleet quantiles.

    In order: "growing" (max CPU/memory growth in the fleet's top quartile and at least
    ``GROWING_MIN_POINTS`` per 30 days), "idle" (CPU P95 in the fleet's bottom quartile and
    below ``IDLE_MAX_CPU`` percent), "busy" (CPU or memory P95 in the fleet's top quartile),
    "low utilisation" (CPU P95 in the bottom quartile and memory P95 below the fleet median),
    else "steady". Repeated labels get a suffix in centroid order: "steady", "steady (2)".
    """
    growth = fleet[["cpu_growth", "mem_growth"]].max(axis=1)
    q = {
        "growth75": growth.quantile(0.75),
        "cpu25": fleet["cpu_p95"].quantile(0.25),
        "cpu75": fleet["cpu_p95"].quantile(0.75),
        "mem50": fleet["mem_p95"].quantile(0.50),
        "mem75": fleet["mem_p95"].quantile(0.75),
    }
    labels = []
    for _, c in centroids.iterrows():
        c_growth = max(c["cpu_growth"], c["mem_growth"])
        if c_growth >= q["growth75"] and c_growth >= GROWING_MIN_POINTS:
            label = "growing"
        elif c["cpu_p95"] <= q["cpu25"] and c["cpu_p95"] < IDLE_MAX_CPU:
            label = "idle"
        elif c["cpu_p95"] >= q["cpu75"] or c["mem_p95"] >= q["mem75"]:
            label = "busy"
        elif c["cpu_p95"] <= q["cpu25"] and c["mem_p95"] < q["mem50"]:
            label = "low utilisation"
        else:
            label = "steady"
        labels.append(label)
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return unique


def cluster_servers(features: pd.DataFrame, k: int, seed: int) -> tuple[pd.DataFrame, dict]:
    """K-Means on the standardised features; clusters numbered and labelled from centroids.

    A fleet with fewer distinct server profiles than ``k`` (a small own-data fleet, a single
    server) gets as many clusters as it has profiles, with a warning, rather than no clusters:
    the rest of the run (right-sizing, consolidation, the report) does not depend on them.
    ``info["k"]`` is the number used, ``info["k_requested"]`` the one asked for and
    ``info["k_note"]`` says why they differ ("" when they do not).

    Returns one row per server (server_id, cluster, cluster_label, the features, pc1/pc2 of a
    2-D PCA for a scatter) and info: silhouette (0 when there is a single cluster or every
    cluster is a single server: no separation to measure, the usual convention), inertia,
    sizes, labels and centroids in original units. Cluster 0 is the centroid with the lowest
    CPU P95 (ties: memory, then growth), so numbers and labels do not depend on row order.
    Missing feature values are filled with the fleet median.
    """
    frame = _with_server_column(features)
    missing = [c for c in FEATURE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"features lack columns {missing}")
    n = len(frame)
    if k < 2:
        raise ValueError(f"k must be at least 2 clusters, got k={k}")
    if n == 0:
        raise ValueError("no servers to cluster")
    if frame["server_id"].duplicated().any():
        raise ValueError("features have more than one row for some server_id")
    # A fixed row order makes K-Means (and so every answer) independent of the input order.
    frame = frame.sort_values("server_id", ignore_index=True)
    values = frame[FEATURE_COLUMNS].astype(float)
    if values.isna().any().any():
        logger.warning(
            "07_cluster: filling %d missing feature values with the fleet median",
            int(values.isna().sum().sum()),
        )
        values = values.fillna(values.median()).fillna(0.0)
    requested, note = k, ""
    distinct = len(values.drop_duplicates())
    if distinct < k:
        k = distinct
        what = (
            f"{n} server{'s' * (n != 1)}"
            if distinct == n
            else f"{distinct} distinct server profiles"
        )
        note = f"cluster.k={requested} but the fleet has only {what}: {k} cluster{'s' * (k != 1)}"
        logger.warning("07_cluster: %s", note)

    scaler = StandardScaler()
    scaled = scaler.fit_transform(values.to_numpy())
    model = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(scaled)
    raw_labels = model.labels_
    sizes = np.bincount(raw_labels, minlength=k)
    if (sizes == 0).any():
        raise ValueError(f"K-Means left {int((sizes == 0).sum())} of {k} clusters empty")

    centroids = pd.DataFrame(
        scaler.inverse_transform(model.cluster_centers_), columns=FEATURE_COLUMNS
    )
    order = centroids.sort_values(["cpu_p95", "mem_p95", "cpu_growth", "mem_growth"]).index
    renumber = np.empty(k, dtype=int)
    renumber[order.to_numpy()] = np.arange(k)
    centroids = centroids.loc[order].reset_index(drop=True)
    cluster = renumber[raw_labels]
    names = _label_centroids(centroids, values)
    sizes = np.bincount(cluster, minlength=k)

    # One cluster, or every cluster a single server (k == n): s(i) = 0 by convention.
    silhouette = float(silhouette_score(scaled, cluster)) if 1 < k < n else 0.0
    if not math.isfinite(silhouette):
        silhouette = 0.0
    coords = np.zeros((n, 2))
    if n > 1:
        components = min(2, n, scaled.shape[1])
        coords[:, :components] = PCA(n_components=components, random_state=seed).fit_transform(
            scaled
        )

    clustered = pd.DataFrame(
        {
            "server_id": frame["server_id"],
            "cluster": cluster,
            "cluster_label": [names[c] for c in cluster],
        }
    )
    clustered = pd.concat([clustered, values.reset_index(drop=True)], axis=1)
    clustered["pc1"] = coords[:, 0]
    clustered["pc2"] = coords[:, 1]
    info = {
        "k": k,
        "k_requested": requested,
        "k_note": note,
        "seed": seed,
        "features": list(FEATURE_COLUMNS),
        "silhouette": silhouette,
        "inertia": float(model.inertia_),
        "sizes": {int(c): int(s) for c, s in enumerate(sizes)},
        "labels": {int(c): names[c] for c in range(k)},
        "centroids": [
            {
                "cluster": int(c),
                "label": names[c],
                "size": int(sizes[c]),
                **{col: float(centroids.at[c, col]) for col in FEATURE_COLUMNS},
            }
            for c in range(k)
        ],
    }
    logger.info(
        "07_cluster: %d servers in %d clusters (%s), silhouette %.3f",
        n,
        k,
        ", ".join(f"{names[c]}: {sizes[c]}" for c in range(k)),
        silhouette,
    )
    return clustered, info


def check_clusters(clustered: pd.DataFrame, info: dict, k: int, n_servers: int) -> None:
    """Post-conditions of the clusters (``k`` requested, at most that many made); raises
    StageCheckError saying what failed."""
    problems = []
    made = info.get("k")
    if not isinstance(made, int) or not 1 <= made <= min(k, n_servers):
        problems.append(f"{made!r} clusters made, expected 1 to {min(k, n_servers)}")
        made = k
    elif made < k and not info.get("k_note"):
        problems.append(f"{made} clusters made of the {k} requested, with no reason given")
    k = made
    ids = _with_server_column(clustered)["server_id"]
    if len(ids) != n_servers or ids.nunique() != n_servers:
        problems.append(
            f"{ids.nunique()} distinct servers in {len(ids)} rows, expected one row for each of {n_servers}"
        )
    if ids.isna().any():
        problems.append(f"{int(ids.isna().sum())} rows without a server_id")
    counts = clustered["cluster"].value_counts()
    empty = sorted(set(range(k)) - set(counts.index.tolist()))
    if empty or len(counts) != k:
        problems.append(
            f"{len(counts)} non-empty clusters, expected {k} (empty: {empty or 'none'})"
        )
    labels = info.get("labels", {})
    names = [str(v) for v in labels.values()]
    if len(labels) != k or any(not name.strip() for name in names) or len(set(names)) != k:
        problems.append(f"cluster labels must be {k} unique non-empty names, got {names}")
    per_cluster = clustered.groupby("cluster")["cluster_label"].nunique()
    if (per_cluster != 1).any():
        problems.append("some cluster carries more than one label")
    silhouette = info.get("silhouette")
    if not (
        isinstance(silhouette, int | float) and math.isfinite(silhouette) and -1 <= silhouette <= 1
    ):
        problems.append(f"silhouette {silhouette!r} is not a finite number in [-1, 1]")
    if problems:
        raise StageCheckError("07_cluster clusters: " + "; ".join(problems))
    logger.info("07_cluster: clusters checked (%d servers, %d clusters)", n_servers, k)


# --------------------------------------------------------------------------- right-sizing


def round_up_to_size(values: np.ndarray | pd.Series, sizes: tuple[int, ...]) -> np.ndarray:
    """Each value rounded up to the next listed size (at least the smallest).

    Above the largest size, values round up to a multiple of the last step between sizes
    (cores: 32, memory: 256 GB), e.g. 130 cores -> 160.
    """
    ladder = np.asarray(sizes, dtype=float)
    x = np.nan_to_num(np.asarray(values, dtype=float), nan=ladder[0])
    index = np.searchsorted(ladder, x - _TOLERANCE, side="left")
    inside = ladder[np.minimum(index, len(ladder) - 1)]
    step = ladder[-1] - ladder[-2]
    beyond = np.ceil((x - _TOLERANCE) / step) * step
    return np.where(index < len(ladder), inside, beyond).astype(int)


def _forecast_peaks(forecasts: pd.DataFrame, percentile: float) -> pd.DataFrame:
    """Per server: the ``percentile`` of the champion yhat over the horizon, cpu and mem, in %."""
    champion = forecasts[
        forecasts["is_champion"].astype(bool) & forecasts["metric"].isin(["cpu_p95", "mem_p95"])
    ]
    models = champion.groupby(["server_id", "metric"])["model"].nunique()
    if (models > 1).any():
        worst = models[models > 1].index[0]
        raise ValueError(
            f"forecasts: {int((models > 1).sum())} series have more than one champion model, e.g. {worst}"
        )
    peaks = (
        champion.groupby(["server_id", "metric"])["yhat"]
        .quantile(percentile / 100.0)
        .unstack("metric")
        .reindex(columns=["cpu_p95", "mem_p95"])
    )
    peaks.columns.name = None
    return peaks


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
    """
    for metric in ("cpu_p95", "mem_p95"):
        headroom = params.headroom.get(metric, 0.0)
        if not 0 <= headroom < 1:
            raise ValueError(f"headroom for {metric} must be in [0, 1), got {headroom}")
    profile = _with_server_column(features)
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

    peaks = _forecast_peaks(forecasts, params.percentile)
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
    frame["peak_cpu_share"] = (frame["peak_cpu_p95"].fillna(0.0) / 100.0).clip(lower=0.0)
    frame["peak_mem_share"] = (frame["peak_mem_p95"].fillna(0.0) / 100.0).clip(lower=0.0)
    peak = frame[["peak_cpu_share", "peak_mem_share"]].max(axis=1)

    cores = frame["cpu_cores"].astype(float)
    memory = frame["memory_gb"].astype(float)
    need_cores = np.ceil(
        cores * frame["peak_cpu_share"] / (1 - params.headroom.get("cpu_p95", 0.0)) - _TOLERANCE
    )
    need_memory = np.ceil(
        memory * frame["peak_mem_share"] / (1 - params.headroom.get("mem_p95", 0.0)) - _TOLERANCE
    )
    frame["recommended_cores"] = round_up_to_size(np.maximum(need_cores, 1), CORE_SIZES)
    frame["recommended_memory_gb"] = round_up_to_size(np.maximum(need_memory, 1), MEMORY_SIZES_GB)

    idle = frame["history_cpu_p95"] < params.idle_cpu_p95
    frame["finding"] = np.select(
        [idle, peak > params.under_utilisation, peak < params.over_utilisation],
        ["idle", "under-provisioned", "over-provisioned"],
        default="optimal",
    )
    drop = 0.5 * (1 - frame["recommended_cores"] / cores) + 0.5 * (
        1 - frame["recommended_memory_gb"] / memory
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
    columns = [
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
    result = frame[columns].sort_values("server_id", ignore_index=True)
    counts = result["finding"].value_counts()
    logger.info(
        "07_cluster: right-sized %d servers (%s), potential %.0f USD/month",
        len(result),
        ", ".join(f"{f}: {int(counts.get(f, 0))}" for f in FINDINGS),
        result["monthly_savings_usd"].sum(),
    )
    return result


# --------------------------------------------------------------------------- consolidation


def _pack_group(group: pd.DataFrame, target: float) -> tuple[dict[str, str], list[dict]]:
    """First-fit-decreasing 2-D packing of one group onto its own servers.

    Items (servers) go in decreasing order of their larger normalised demand (cores and GB
    over the group's largest host). Each tries the open hosts, largest capacity first; when
    none fits, the largest server not yet placed opens as a host (carrying its own demand
    first), until the item fits or opens as a host itself. A host is filled to at most
    ``target`` of its cores and of its memory.
    """
    ids = group["server_id"].to_numpy()
    cap_c = dict(zip(ids, group["cpu_cores"].astype(float), strict=True))
    cap_m = dict(zip(ids, group["memory_gb"].astype(float), strict=True))
    dem_c = dict(zip(ids, group["demand_cores"].astype(float), strict=True))
    dem_m = dict(zip(ids, group["demand_memory_gb"].astype(float), strict=True))
    norm = np.maximum(
        group["demand_cores"] / group["cpu_cores"].max(),
        group["demand_memory_gb"] / group["memory_gb"].max(),
    )
    items = (
        group.assign(norm=norm.to_numpy())
        .sort_values(["norm", "server_id"], ascending=[False, True])["server_id"]
        .tolist()
    )
    by_capacity = group.sort_values(
        ["cpu_cores", "memory_gb", "server_id"], ascending=[False, False, True]
    )["server_id"].tolist()
    rank = {server: i for i, server in enumerate(by_capacity)}

    host_of: dict[str, str] = {}
    load_c: dict[str, float] = {}
    load_m: dict[str, float] = {}
    open_hosts: list[str] = []  # kept in capacity order

    def fits(host: str, item: str) -> bool:
        return (
            load_c[host] + dem_c[item] <= target * cap_c[host] + _TOLERANCE
            and load_m[host] + dem_m[item] <= target * cap_m[host] + _TOLERANCE
        )

    def open_host(host: str) -> None:
        host_of[host] = host
        load_c[host], load_m[host] = dem_c[host], dem_m[host]
        open_hosts.append(host)
        open_hosts.sort(key=rank.__getitem__)

    next_candidate = 0
    for item in items:
        if item in host_of:
            continue  # already opened as a host, carrying itself
        while True:
            host = next((h for h in open_hosts if fits(h, item)), None)
            if host is not None:
                host_of[item] = host
                load_c[host] += dem_c[item]
                load_m[host] += dem_m[item]
                break
            while by_capacity[next_candidate] in host_of:
                next_candidate += 1
            open_host(by_capacity[next_candidate])
            if by_capacity[next_candidate] == item:
                break
    carried = Counter(host_of.values())
    loads = [
        {
            "host_server_id": str(h),
            "servers": int(carried[h]),
            "cores_used": round(load_c[h], 3),
            "cpu_cores": int(cap_c[h]),
            "cpu_load": round(load_c[h] / cap_c[h], 4),
            "memory_gb_used": round(load_m[h], 3),
            "memory_gb": int(cap_m[h]),
            "memory_load": round(load_m[h] / cap_m[h], 4),
        }
        for h in open_hosts
    ]
    return host_of, loads


def consolidate(
    sizing: pd.DataFrame, target_utilisation: float, consolidate_critical: bool
) -> tuple[pd.DataFrame, dict]:
    """Pack over-provisioned and idle servers onto fewer hosts; the rest are freed.

    Demand = forecast peak share x capacity (cores and GB). Groups are environment x
    criticality, so no host mixes environments or tiers; the 'critical' tier is left out
    unless ``consolidate_critical``. A server whose own demand exceeds ``target_utilisation``
    of its own capacity cannot host itself and is left out too. Returns a placement row for
    every server (server_id, host_server_id, freed, group, considered, excluded_reason,
    demand_cores, demand_memory_gb, and ``counted_savings_usd`` / ``saving_kind``: its saving as
    the totals count it) and a JSON-ready summary per group and in total.
    Savings: a freed server counts its whole monthly cost once, as consolidation saving; the
    right-sizing saving counted alongside is only that of servers neither freed nor hosting
    others (the two are alternatives per server, see the module docstring).
    """
    if not 0 < target_utilisation <= 1:
        raise ValueError(f"target_utilisation must be in (0, 1], got {target_utilisation}")
    frame = _with_server_column(sizing).copy()
    frame["demand_cores"] = frame["peak_cpu_share"] * frame["cpu_cores"].astype(float)
    frame["demand_memory_gb"] = frame["peak_mem_share"] * frame["memory_gb"].astype(float)
    frame["group"] = frame["environment"].astype(str) + "/" + frame["criticality"].astype(str)
    candidate = frame["finding"].isin(["over-provisioned", "idle"])
    critical = frame["criticality"].astype(str) == CRITICAL_TIER
    too_big = (frame["demand_cores"] > target_utilisation * frame["cpu_cores"] + _TOLERANCE) | (
        frame["demand_memory_gb"] > target_utilisation * frame["memory_gb"] + _TOLERANCE
    )
    frame["excluded_reason"] = np.select(
        [~candidate, critical & ~consolidate_critical, too_big],
        [
            "finding " + frame["finding"].astype(str),
            "critical tier",
            "own demand above target utilisation",
        ],
        default="",
    )
    frame["considered"] = frame["excluded_reason"] == ""
    frame["host_server_id"] = frame["server_id"]

    groups: dict[str, dict[str, Any]] = {}
    for name, group in frame[frame["considered"]].groupby("group", sort=True):
        host_of, loads = _pack_group(group, target_utilisation)
        index = group.index
        frame.loc[index, "host_server_id"] = group["server_id"].map(host_of).to_numpy()
        groups[str(name)] = {"host_loads": loads}
    frame["freed"] = frame["considered"] & (frame["host_server_id"] != frame["server_id"])
    hosting = set(frame.loc[frame["freed"], "host_server_id"])
    frame["hosts_others"] = frame["server_id"].isin(hosting)

    savings = frame["monthly_savings_usd"].astype(float)
    cost = frame["monthly_cost_usd"].astype(float).fillna(0.0)
    counted = ~frame["freed"] & ~frame["hosts_others"]
    # Each server's saving as the totals count it, so reports and charts never recount.
    frame["counted_savings_usd"] = np.select(
        [frame["freed"], counted], [cost, savings.fillna(0.0)], default=0.0
    )
    frame["saving_kind"] = np.select(
        [frame["freed"], counted & (savings > 0), frame["hosts_others"] & (savings > 0)],
        ["consolidation", "right-sizing", "none (hosts freed servers)"],
        default="",
    )
    for name, entry in groups.items():
        rows = frame["group"] == name
        considered = rows & frame["considered"]
        entry.update(
            servers_considered=int(considered.sum()),
            hosts_kept=int((considered & ~frame["freed"]).sum()),
            servers_freed=int((rows & frame["freed"]).sum()),
            monthly_savings_usd=round(float(cost[rows & frame["freed"]].sum()), 2),
        )
    consolidation_usd = float(cost[frame["freed"]].sum())
    right_sizing_usd = float(savings[counted].sum())
    all_loads = [load for entry in groups.values() for load in entry["host_loads"]]
    summary = {
        "target_utilisation": float(target_utilisation),
        "consolidate_critical": bool(consolidate_critical),
        "group_key": ["environment", "criticality"],
        "groups": groups,
        "total": {
            "servers_considered": int(frame["considered"].sum()),
            "hosts_kept": int((frame["considered"] & ~frame["freed"]).sum()),
            "servers_freed": int(frame["freed"].sum()),
            "monthly_savings_usd": round(consolidation_usd, 2),
            "max_cpu_load": max((x["cpu_load"] for x in all_loads), default=0.0),
            "max_memory_load": max((x["memory_load"] for x in all_loads), default=0.0),
        },
        "excluded": {
            str(k): int(v)
            for k, v in frame.loc[~frame["considered"], "excluded_reason"].value_counts().items()
        },
        "consolidation_savings_usd": round(consolidation_usd, 2),
        "right_sizing_savings_usd": round(right_sizing_usd, 2),
        "total_savings_usd": round(consolidation_usd + right_sizing_usd, 2),
        "freed_server_ids": sorted(str(s) for s in frame.loc[frame["freed"], "server_id"]),
        "host_server_ids": sorted(str(s) for s in hosting),
    }
    _check_placement(frame, target_utilisation)
    placement = frame[
        [
            "server_id",
            "host_server_id",
            "freed",
            "group",
            "considered",
            "excluded_reason",
            "demand_cores",
            "demand_memory_gb",
            "counted_savings_usd",
            "saving_kind",
        ]
    ].sort_values("server_id", ignore_index=True)
    logger.info(
        "07_cluster: consolidation considered %d servers in %d groups, kept %d hosts, freed %d "
        "(%.0f USD/month); right-sizing of the rest %.0f USD/month",
        summary["total"]["servers_considered"],
        len(groups),
        summary["total"]["hosts_kept"],
        summary["total"]["servers_freed"],
        consolidation_usd,
        right_sizing_usd,
    )
    return placement, summary


def _check_placement(frame: pd.DataFrame, target: float) -> None:
    """Invariants of a packing; raises StageCheckError (a bug, not a data problem)."""
    problems = []
    if frame["server_id"].duplicated().any():
        problems.append("a server is placed more than once")
    considered = frame[frame["considered"]]
    hosts = considered.set_index("server_id")
    unknown = ~considered["host_server_id"].isin(hosts.index)
    if unknown.any():
        problems.append(f"{int(unknown.sum())} servers placed on a host outside their group")
    else:
        host_group = hosts.loc[considered["host_server_id"], "group"].to_numpy()
        if (host_group != considered["group"].to_numpy()).any():
            problems.append("a host carries servers of another environment or criticality")
        freed_hosts = set(considered.loc[considered["freed"], "server_id"]) & set(
            considered.loc[considered["freed"], "host_server_id"]
        )
        if freed_hosts:
            problems.append(f"freed servers host others: {sorted(freed_hosts)[:5]}")
        load = considered.groupby("host_server_id")[["demand_cores", "demand_memory_gb"]].sum()
        capacity = hosts.loc[load.index, ["cpu_cores", "memory_gb"]].astype(float)
        over = (load["demand_cores"] > target * capacity["cpu_cores"] + 1e-6) | (
            load["demand_memory_gb"] > target * capacity["memory_gb"] + 1e-6
        )
        if over.any():
            problems.append(f"hosts above target utilisation: {list(load.index[over])[:5]}")
    if problems:
        raise StageCheckError("07_cluster consolidation: " + "; ".join(problems))


# --------------------------------------------------------------------------- summary


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def recommendations(
    clusters_info: dict, sizing: pd.DataFrame, consolidation_summary: dict, top_n: int = 20
) -> dict:
    """A JSON-ready summary (no NaN): clusters, findings, savings without double counting.

    Savings: consolidation (whole cost of freed servers) + right-sizing of the servers neither
    freed nor hosting freed ones = total. ``right_sizing_all_servers_usd`` is what
    right-sizing alone would save, for comparison; it is not added to the total.
    ``top_right_sizing_actions`` lists the largest savings among the counted servers.
    """
    frame = _with_server_column(sizing)
    excluded = set(consolidation_summary.get("freed_server_ids", [])) | set(
        consolidation_summary.get("host_server_ids", [])
    )
    counted = frame[~frame["server_id"].astype(str).isin(excluded)]
    actions = (
        counted[counted["monthly_savings_usd"] > 0]
        .sort_values(["monthly_savings_usd", "server_id"], ascending=[False, True])
        .head(top_n)
    )
    findings = frame["finding"].value_counts()
    consolidation_usd = float(consolidation_summary.get("consolidation_savings_usd", 0.0))
    right_sizing_usd = round(float(counted["monthly_savings_usd"].sum()), 2)
    total = consolidation_summary.get("total", {})
    silhouette = _finite(clusters_info.get("silhouette", float("nan")))
    result = {
        "silhouette": None if silhouette is None else round(silhouette, 4),
        "k": int(clusters_info.get("k", len(clusters_info.get("labels", {})))),
        "k_note": str(clusters_info.get("k_note", "")),
        "clusters": [
            {
                "cluster": int(c["cluster"]),
                "label": str(c["label"]),
                "size": int(c["size"]),
                "centroid": {col: _finite(round(c[col], 3)) for col in FEATURE_COLUMNS if col in c},
            }
            for c in clusters_info.get("centroids", [])
        ],
        "findings": {f: int(findings.get(f, 0)) for f in FINDINGS},
        "servers": len(frame),
        "servers_freed": int(total.get("servers_freed", 0)),
        "hosts_kept": int(total.get("hosts_kept", 0)),
        "consolidation_savings_usd": round(consolidation_usd, 2),
        "right_sizing_savings_usd": right_sizing_usd,
        "total_savings_usd": round(consolidation_usd + right_sizing_usd, 2),
        "right_sizing_all_servers_usd": round(float(frame["monthly_savings_usd"].sum()), 2),
        "savings_note": (
            "monthly USD; consolidation and right-sizing are alternatives per server: freed "
            "servers count once (consolidation), hosts of freed servers count nothing, "
            "right-sizing counts the remaining servers"
        ),
        "consolidation": {
            "target_utilisation": consolidation_summary.get("target_utilisation"),
            "consolidate_critical": consolidation_summary.get("consolidate_critical"),
            "total": total,
            "groups": {
                name: {key: value for key, value in entry.items() if key != "host_loads"}
                for name, entry in consolidation_summary.get("groups", {}).items()
            },
            "excluded": consolidation_summary.get("excluded", {}),
        },
        "top_right_sizing_actions": [
            {
                "server_id": str(row.server_id),
                "finding": str(row.finding),
                "action": str(row.action),
                "from_cores": int(row.cpu_cores),
                "to_cores": int(row.recommended_cores),
                "from_memory_gb": int(row.memory_gb),
                "to_memory_gb": int(row.recommended_memory_gb),
                "monthly_savings_usd": round(float(row.monthly_savings_usd), 2),
            }
            for row in actions.itertuples(index=False)
        ],
    }
    logger.info(
        "07_cluster: savings %.0f USD/month (consolidation %.0f + right-sizing %.0f)",
        result["total_savings_usd"],
        consolidation_usd,
        right_sizing_usd,
    )
    return result


def server_table(
    clustered: pd.DataFrame, sizing: pd.DataFrame, placement: pd.DataFrame
) -> pd.DataFrame:
    """One row per server for clusters/clusters.parquet: cluster, profile, right-sizing, placement."""
    table = clustered.merge(sizing, on="server_id", how="left", suffixes=("", "_sizing"))
    table = table.merge(placement, on="server_id", how="left", suffixes=("", "_placement"))
    return table.drop(columns=[c for c in table.columns if c.endswith(("_sizing", "_placement"))])
