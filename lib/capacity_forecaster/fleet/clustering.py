"""Step 2 of stage 07: K-Means clusters of the utilisation profiles, labelled from centroids.

The features are standardised, clustered with K-Means and the clusters numbered by their
centroids (cluster 0 has the lowest CPU P95), never by the arbitrary K-Means index, so the same
fleet in any row order gets the same clusters and labels. A 2-D PCA gives coordinates to plot.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.fleet._common import with_server_column
from capacity_forecaster.fleet.profiles import FEATURE_COLUMNS

logger = logging.getLogger(__name__)

__all__ = ["check_clusters", "cluster_servers"]

GROWING_MIN_POINTS = 1.0  # percent points per 30 days: below this a cluster is never "growing"
IDLE_MAX_CPU = 10.0  # percent: a centroid above this P95 CPU is never labelled "idle"
CENTROID_ORDER = ["cpu_p95", "mem_p95", "cpu_growth", "mem_growth"]  # cluster 0 sorts first


@dataclass(frozen=True)
class _Fit:
    """K-Means on the scaled features, clusters renumbered in centroid order."""

    scaled: np.ndarray  # the standardised features, one row per server
    cluster: np.ndarray  # each server's cluster number
    centroids: pd.DataFrame  # one row per cluster number, in original units
    inertia: float


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
    server_ids, values = _feature_values(features, k)
    n = len(values)
    made, note = _cluster_count(values, k)
    fit = _fit_kmeans(values, made, seed)
    names = _label_centroids(fit.centroids, values)
    sizes = np.bincount(fit.cluster, minlength=made)
    silhouette = _silhouette(fit.scaled, fit.cluster, made)

    clustered = pd.DataFrame(
        {
            "server_id": server_ids,
            "cluster": fit.cluster,
            "cluster_label": [names[c] for c in fit.cluster],
        }
    )
    clustered = pd.concat([clustered, values.reset_index(drop=True)], axis=1)
    coords = _pca_coordinates(fit.scaled, seed)
    clustered["pc1"] = coords[:, 0]
    clustered["pc2"] = coords[:, 1]
    info = {
        "k": made,
        "k_requested": k,
        "k_note": note,
        "seed": seed,
        "features": list(FEATURE_COLUMNS),
        "silhouette": silhouette,
        "inertia": fit.inertia,
        "sizes": {int(c): int(s) for c, s in enumerate(sizes)},
        "labels": {int(c): names[c] for c in range(made)},
        "centroids": _centroid_records(fit.centroids, names, sizes),
    }
    logger.info(
        "07_cluster: %d servers in %d clusters (%s), silhouette %.3f",
        n,
        made,
        ", ".join(f"{names[c]}: {sizes[c]}" for c in range(made)),
        silhouette,
    )
    return clustered, info


def _feature_values(features: pd.DataFrame, k: int) -> tuple[pd.Series, pd.DataFrame]:
    """The server ids and their features as floats, sorted by server_id, gaps filled.

    A fixed row order makes K-Means (and so every answer) independent of the input order.
    """
    frame = with_server_column(features)
    missing = [c for c in FEATURE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"features lack columns {missing}")
    if k < 2:
        raise ValueError(f"k must be at least 2 clusters, got k={k}")
    if len(frame) == 0:
        raise ValueError("no servers to cluster")
    if frame["server_id"].duplicated().any():
        raise ValueError("features have more than one row for some server_id")
    frame = frame.sort_values("server_id", ignore_index=True)
    values = frame[FEATURE_COLUMNS].astype(float)
    if values.isna().any().any():
        logger.warning(
            "07_cluster: filling %d missing feature values with the fleet median",
            int(values.isna().sum().sum()),
        )
        values = values.fillna(values.median()).fillna(0.0)
    return frame["server_id"], values


def _cluster_count(values: pd.DataFrame, k: int) -> tuple[int, str]:
    """``k``, or the number of distinct profiles when that is smaller, and why ("" if k)."""
    n = len(values)
    distinct = len(values.drop_duplicates())
    if distinct >= k:
        return k, ""
    what = (
        f"{n} server{'s' * (n != 1)}" if distinct == n else f"{distinct} distinct server profiles"
    )
    note = f"cluster.k={k} but the fleet has only {what}: {distinct} cluster{'s' * (distinct != 1)}"
    logger.warning("07_cluster: %s", note)
    return distinct, note


def _fit_kmeans(values: pd.DataFrame, k: int, seed: int) -> _Fit:
    """Scaled K-Means with clusters renumbered by centroid (``CENTROID_ORDER``)."""
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
    order = centroids.sort_values(CENTROID_ORDER).index
    renumber = np.empty(k, dtype=int)
    renumber[order.to_numpy()] = np.arange(k)
    return _Fit(
        scaled=scaled,
        cluster=renumber[raw_labels],
        centroids=centroids.loc[order].reset_index(drop=True),
        inertia=float(model.inertia_),
    )


def _silhouette(scaled: np.ndarray, cluster: np.ndarray, k: int) -> float:
    """The silhouette score; 0 for one cluster or one server per cluster (k == n)."""
    silhouette = float(silhouette_score(scaled, cluster)) if 1 < k < len(scaled) else 0.0
    return silhouette if math.isfinite(silhouette) else 0.0


def _pca_coordinates(scaled: np.ndarray, seed: int) -> np.ndarray:
    """Two principal components per server (zeros where the fleet has too few servers)."""
    n = len(scaled)
    coords = np.zeros((n, 2))
    if n > 1:
        components = min(2, n, scaled.shape[1])
        coords[:, :components] = PCA(n_components=components, random_state=seed).fit_transform(
            scaled
        )
    return coords


def _label_centroids(centroids: pd.DataFrame, fleet: pd.DataFrame) -> list[str]:
    """A human label per centroid from rules on its levels and growth against fleet quantiles.

    In order: "growing" (max CPU/memory growth in the fleet's top quartile and at least
    ``GROWING_MIN_POINTS`` per 30 days), "idle" (CPU P95 in the fleet's bottom quartile and
    below ``IDLE_MAX_CPU`` percent), "busy" (CPU or memory P95 in the fleet's top quartile),
    "low utilisation" (CPU P95 in the bottom quartile and memory P95 below the fleet median),
    else "steady". A label two clusters share says what tells them apart, the centroid's
    P95 levels ("steady: CPU 35 %, memory 60 %", disk and growth when those differ too), never
    a number in centroid order ("steady (2)" says nothing to a planner).
    """
    growth = fleet[["cpu_growth", "mem_growth"]].max(axis=1)
    quantiles = {
        "growth75": float(growth.quantile(0.75)),
        "cpu25": float(fleet["cpu_p95"].quantile(0.25)),
        "cpu75": float(fleet["cpu_p95"].quantile(0.75)),
        "mem50": float(fleet["mem_p95"].quantile(0.50)),
        "mem75": float(fleet["mem_p95"].quantile(0.75)),
    }
    labels = [_centroid_label(c, quantiles) for _, c in centroids.iterrows()]
    repeated = {label for label in labels if labels.count(label) > 1}
    named = labels
    # Coarse levels first; finer ones only where the coarse ones still read the same.
    for features, step in ((2, 5.0), (3, 5.0), (3, 1.0), (3, 0.1)):
        named = [
            f"{label}: {_levels(c, features, step)}" if label in repeated else label
            for label, (_, c) in zip(labels, centroids.iterrows(), strict=True)
        ]
        if len(set(named)) == len(named):
            break
    return _numbered_if_still_equal(named)


_LEVEL_FEATURES = (("cpu_p95", "CPU"), ("mem_p95", "memory"), ("disk_p95", "disk"))


def _levels(centroid: pd.Series, features: int, step: float) -> str:
    """``CPU 35 %, memory 60 %``: the centroid's first ``features`` P95 levels, rounded to
    ``step`` points."""
    shown = []
    for feature, words in _LEVEL_FEATURES[:features]:
        value = float(centroid[feature])
        level = f"{round(step * round(value / step), 1):g} %" if np.isfinite(value) else "n/a"
        shown.append(f"{words} {level}")
    return ", ".join(shown)


def _numbered_if_still_equal(names: list[str]) -> list[str]:
    """The last resort for centroids equal at every rounding: a suffix in centroid order."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return unique


def _centroid_label(c: pd.Series, q: dict[str, float]) -> str:
    """The first rule of ``_label_centroids`` that the centroid ``c`` meets."""
    c_growth = max(c["cpu_growth"], c["mem_growth"])
    if c_growth >= q["growth75"] and c_growth >= GROWING_MIN_POINTS:
        return "growing"
    if c["cpu_p95"] <= q["cpu25"] and c["cpu_p95"] < IDLE_MAX_CPU:
        return "idle"
    if c["cpu_p95"] >= q["cpu75"] or c["mem_p95"] >= q["mem75"]:
        return "busy"
    if c["cpu_p95"] <= q["cpu25"] and c["mem_p95"] < q["mem50"]:
        return "low utilisation"
    return "steady"


def _centroid_records(
    centroids: pd.DataFrame, names: list[str], sizes: np.ndarray
) -> list[dict[str, Any]]:
    """Per cluster: number, label, size and the centroid's features in original units."""
    rows = centroids.to_dict("records")
    return [
        {
            "cluster": int(c),
            "label": names[c],
            "size": int(sizes[c]),
            **{col: float(rows[c][col]) for col in FEATURE_COLUMNS},
        }
        for c in range(len(names))
    ]


def check_clusters(clustered: pd.DataFrame, info: dict, k: int, n_servers: int) -> None:
    """Post-conditions of the clusters (``k`` requested, at most that many made); raises
    StageCheckError saying what failed."""
    problems, made = _count_problems(info, k, n_servers)
    problems += _row_problems(clustered, made, n_servers)
    problems += _label_problems(clustered, info, made)
    silhouette = info.get("silhouette")
    if not (
        isinstance(silhouette, int | float) and math.isfinite(silhouette) and -1 <= silhouette <= 1
    ):
        problems.append(f"silhouette {silhouette!r} is not a finite number in [-1, 1]")
    if problems:
        raise StageCheckError("07_cluster clusters: " + "; ".join(problems))
    logger.info("07_cluster: clusters checked (%d servers, %d clusters)", n_servers, made)


def _count_problems(info: dict, k: int, n_servers: int) -> tuple[list[str], int]:
    """Whether the number of clusters made fits ``k`` and the fleet; and the number to check
    the rows against (``k`` when the one made is not usable)."""
    made = info.get("k")
    if not isinstance(made, int) or not 1 <= made <= min(k, n_servers):
        return [f"{made!r} clusters made, expected 1 to {min(k, n_servers)}"], k
    if made < k and not info.get("k_note"):
        return [f"{made} clusters made of the {k} requested, with no reason given"], made
    return [], made


def _row_problems(clustered: pd.DataFrame, k: int, n_servers: int) -> list[str]:
    """One row per server, each in one of ``k`` non-empty clusters."""
    problems = []
    ids = with_server_column(clustered)["server_id"]
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
    return problems


def _label_problems(clustered: pd.DataFrame, info: dict, k: int) -> list[str]:
    """``k`` unique non-empty labels, one per cluster."""
    problems = []
    labels = info.get("labels", {})
    names = [str(v) for v in labels.values()]
    if len(labels) != k or any(not name.strip() for name in names) or len(set(names)) != k:
        problems.append(f"cluster labels must be {k} unique non-empty names, got {names}")
    per_cluster = clustered.groupby("cluster")["cluster_label"].nunique()
    if (per_cluster != 1).any():
        problems.append("some cluster carries more than one label")
    return problems
