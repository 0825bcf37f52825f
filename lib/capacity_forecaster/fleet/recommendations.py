"""Step 5 of stage 07: the stage's products, recommendations.json and the per-server table.

``summarise`` gathers clusters, findings and savings into one JSON-ready dict without double
counting (see ``consolidation``); ``server_table`` joins each server's cluster, profile,
right-sizing and placement into the rows of clusters/clusters.parquet.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import pandas as pd

from capacity_forecaster.fleet._common import with_server_column
from capacity_forecaster.fleet.profiles import FEATURE_COLUMNS
from capacity_forecaster.fleet.rightsizing import FINDINGS

logger = logging.getLogger(__name__)

__all__ = ["server_table", "summarise"]

SAVINGS_NOTE = (
    "monthly USD; consolidation and right-sizing are alternatives per server: freed "
    "servers count once (consolidation), hosts of freed servers count nothing, "
    "right-sizing counts the remaining servers"
)


def summarise(
    clusters_info: dict, sizing: pd.DataFrame, consolidation_summary: dict, top_n: int = 20
) -> dict[str, Any]:
    """A JSON-ready summary (no NaN): clusters, findings, savings without double counting.

    Savings: consolidation (whole cost of freed servers) + right-sizing of the servers neither
    freed nor hosting freed ones = total. ``right_sizing_all_servers_usd`` is what
    right-sizing alone would save, for comparison; it is not added to the total.
    ``top_right_sizing_actions`` lists the largest savings among the counted servers.
    """
    frame = with_server_column(sizing)
    counted = _counted_servers(frame, consolidation_summary)
    findings = frame["finding"].value_counts()
    consolidation_usd = float(consolidation_summary.get("consolidation_savings_usd", 0.0))
    right_sizing_usd = round(float(counted["monthly_savings_usd"].sum()), 2)
    total = consolidation_summary.get("total", {})
    silhouette = _finite(clusters_info.get("silhouette", float("nan")))
    result = {
        "silhouette": None if silhouette is None else round(silhouette, 4),
        "k": int(clusters_info.get("k", len(clusters_info.get("labels", {})))),
        "k_note": str(clusters_info.get("k_note", "")),
        "clusters": _cluster_records(clusters_info),
        "findings": {f: int(findings.get(f, 0)) for f in FINDINGS},
        "servers": len(frame),
        "servers_freed": int(total.get("servers_freed", 0)),
        "hosts_kept": int(total.get("hosts_kept", 0)),
        "consolidation_savings_usd": round(consolidation_usd, 2),
        "right_sizing_savings_usd": right_sizing_usd,
        "total_savings_usd": round(consolidation_usd + right_sizing_usd, 2),
        "right_sizing_all_servers_usd": round(float(frame["monthly_savings_usd"].sum()), 2),
        "savings_note": SAVINGS_NOTE,
        "consolidation": _consolidation_section(consolidation_summary),
        "top_right_sizing_actions": _top_actions(counted, top_n),
        "upsize_cost_usd": round(float(_upsizes(frame)["monthly_cost_change_usd"].sum()), 2),
        "top_upsize_actions": _upsize_actions(frame, top_n),
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


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _counted_servers(frame: pd.DataFrame, consolidation_summary: dict) -> pd.DataFrame:
    """The servers whose right-sizing saving counts: neither freed nor hosting freed ones."""
    excluded = set(consolidation_summary.get("freed_server_ids", [])) | set(
        consolidation_summary.get("host_server_ids", [])
    )
    return frame[~frame["server_id"].astype(str).isin(excluded)]


def _cluster_records(clusters_info: dict) -> list[dict[str, Any]]:
    """Per cluster: number, label, size and the centroid rounded (NaN as None)."""
    return [
        {
            "cluster": int(c["cluster"]),
            "label": str(c["label"]),
            "size": int(c["size"]),
            "centroid": {col: _finite(round(c[col], 3)) for col in FEATURE_COLUMNS if col in c},
        }
        for c in clusters_info.get("centroids", [])
    ]


def _consolidation_section(consolidation_summary: dict) -> dict[str, Any]:
    """The consolidation summary without the per-host loads."""
    return {
        "target_utilisation": consolidation_summary.get("target_utilisation"),
        "consolidate_critical": consolidation_summary.get("consolidate_critical"),
        "total": consolidation_summary.get("total", {}),
        "groups": {
            name: {key: value for key, value in entry.items() if key != "host_loads"}
            for name, entry in consolidation_summary.get("groups", {}).items()
        },
        "excluded": consolidation_summary.get("excluded", {}),
    }


def _upsizes(frame: pd.DataFrame) -> pd.DataFrame:
    """The servers to upsize (a CPU or memory series at high or medium risk)."""
    return frame[frame["action"] == "upsize"]


def _upsize_actions(frame: pd.DataFrame, top_n: int) -> list[dict[str, Any]]:
    """The ``top_n`` upsizes, the fullest projected resource first: from and to, the projected
    peaks at the new size and the monthly cost change."""
    upsizes = _upsizes(frame)
    fullest = upsizes[["history_cpu_p95", "history_mem_p95"]].max(axis=1)
    ordered = upsizes.assign(_fullest=fullest).sort_values(
        ["_fullest", "server_id"], ascending=[False, True]
    )
    return [
        {
            "server_id": str(row["server_id"]),
            "from_cores": float(row["cpu_cores"]),
            "to_cores": float(row["recommended_cores"]),
            "from_memory_gb": float(row["memory_gb"]),
            "to_memory_gb": float(row["recommended_memory_gb"]),
            "projected_cpu_peak": _finite(round(row["projected_cpu_peak"], 1)),
            "projected_mem_peak": _finite(round(row["projected_mem_peak"], 1)),
            "monthly_cost_change_usd": round(float(row["monthly_cost_change_usd"]), 2),
        }
        for row in ordered.head(top_n).to_dict("records")
    ]


def _top_actions(counted: pd.DataFrame, top_n: int) -> list[dict[str, Any]]:
    """The ``top_n`` largest right-sizing savings among the counted servers (ties: server_id)."""
    actions = (
        counted[counted["monthly_savings_usd"] > 0]
        .sort_values(["monthly_savings_usd", "server_id"], ascending=[False, True])
        .head(top_n)
    )
    return [
        {
            "server_id": str(row["server_id"]),
            "finding": str(row["finding"]),
            "action": str(row["action"]),
            "from_cores": int(row["cpu_cores"]),
            "to_cores": int(row["recommended_cores"]),
            "from_memory_gb": int(row["memory_gb"]),
            "to_memory_gb": int(row["recommended_memory_gb"]),
            "monthly_savings_usd": round(float(row["monthly_savings_usd"]), 2),
        }
        for row in actions.to_dict("records")
    ]
