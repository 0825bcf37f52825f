"""Stage 08: the report tables, with readable column names (``text.COLUMN_KINDS`` says how
each column is shown). ``pdf.build_pdf`` and ``workbook.build_workbook`` render them; the
accuracy charts draw from ``accuracy_frame``, the table behind ``accuracy_table``.

Plain functions on frames and dicts; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from capacity_forecaster.core import catalog
from capacity_forecaster.core.calendar_windows import window_label
from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.vocabulary import (
    AT_RISK_LEVELS,
    BASELINE_MODEL,
    CHAMPION,
    RISK_LEVELS,
)
from capacity_forecaster.reporting.inputs import (
    RISK_REQUIRED,
    check_levels,
    require_columns,
    require_keys,
)
from capacity_forecaster.reporting.text import (
    ALL_METRICS,
    format_number,
    format_value,
    is_missing,
    metric_label,
    model_label,
)

__all__ = [
    "CHAMPION_CALIBRATION",
    "RISK_COLUMNS",
    "accuracy_frame",
    "accuracy_table",
    "at_risk_table",
    "cluster_table",
    "forecast_table",
    "interval_calibration",
    "model_rank",
    "model_rows",
    "quality_table",
    "recommendation_table",
    "server_cluster_table",
]

CHAMPION_CALIBRATION = "each series' champion model's"

# risk/risk.parquet column -> its name in the report tables, in the order shown.
RISK_COLUMNS = MappingProxyType(
    {
        "server_id": "Server",
        "metric": "Metric",
        "risk_level": "Risk level",
        "over_now": "Over now",
        "trust_grade": "Trust",
        "days_to_breach": "Days to breach",
        "breach_date": "Breach date",
        "breach_probability": "Breach probability",
        "threshold": "Threshold %",
        "current_p95": "Current P95 %",
        "forecast_peak": "Forecast peak %",
        "peak_date": "Peak date",
        "business_unit": "Business unit",
        "region": "Region",
        "environment": "Environment",
        "criticality": "Criticality",
        "model": "Model",
        "breach_window": "Breach window",
        "seasonal_peak": "Seasonal peak",
        "risk_reason": "Reason",
        "trust_note": "Trust note",
    }
)

_ACCURACY_COLUMNS = MappingProxyType(
    {
        "metric": "Metric",
        "model": "Model",
        "series": "Series",
        "mase": "MASE",
        "mase_median": "MASE (median)",
        "beats_baseline_share": "Beats baseline",
        "coverage": "Coverage",
        "smape": "sMAPE %",
        "mae": "MAE",
        "rmse": "RMSE",
        "interval_width": "Interval width",
        "calibration": "Intervals calibrated on",
    }
)

CLUSTER_REQUIRED = (
    "server_id",
    "cluster",
    "cluster_label",
    "finding",
    "action",
    "monthly_savings_usd",
    "monthly_cost_usd",
    "freed",
    "host_server_id",
    "counted_savings_usd",
    "saving_kind",
)

_CLUSTER_TABLE_COLUMNS = [
    "Cluster",
    "Profile",
    "Servers",
    "CPU P95 %",
    "Memory P95 %",
    "Disk P95 %",
    "CPU growth (pts/30d)",
    "Idle",
    "Over-provisioned",
    "Under-provisioned",
    "Optimal",
    "Freed",
]


def _renamed(frame: pd.DataFrame, columns: Mapping[str, str]) -> pd.DataFrame:
    """The columns of ``columns`` that ``frame`` has, renamed, in that order, index 0..n-1."""
    present = {source: name for source, name in columns.items() if source in frame.columns}
    return frame[list(present)].rename(columns=present).reset_index(drop=True)


# --------------------------------------------------------------------------- risk


def at_risk_table(
    risk: pd.DataFrame,
    top_n: int | None = None,
    *,
    include_low: bool = False,
    clusters: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Series in stage 06's urgency order (``urgency_rank``: level, days to breach,
    probability, criticality), with readable column names and a 1-based Rank.

    Only high and medium series unless ``include_low``; at most ``top_n`` rows (None: all).
    With ``clusters`` (clusters/clusters.parquet), each high or medium series gets its sized
    action (``series_actions``) in an ``Action`` column.
    """
    if top_n is not None and top_n < 0:
        raise ValueError(f"top_n must be >= 0 or None, got {top_n}")
    require_columns(risk, RISK_REQUIRED, catalog.RISK.key)
    check_levels(risk)
    levels = RISK_LEVELS if include_low else AT_RISK_LEVELS
    chosen = risk[risk["risk_level"].isin(levels)]
    ordered = chosen.sort_values("urgency_rank", kind="mergesort")
    if top_n is not None:
        ordered = ordered.head(top_n)
    table = _renamed(ordered, RISK_COLUMNS)
    if clusters is not None:
        actions = series_actions(ordered, clusters)
        after = list(table.columns).index("Risk level") + 1
        table.insert(after, "Action", actions.to_numpy())
    table["Metric"] = table["Metric"].map(metric_label)
    if "Model" in table:
        table["Model"] = table["Model"].map(model_label)
    if "Breach window" in table:
        alone = ordered.get("breach_window_only", pd.Series(False, index=ordered.index))
        only = alone.fillna(False).astype(bool).to_numpy()
        table["Breach window"] = [
            window_text(str(names), bool(alone))
            for names, alone in zip(table["Breach window"].fillna(""), only, strict=True)
        ]
    table.insert(0, "Rank", np.arange(1, len(table) + 1))
    return table


def recurring_peaks_table(effects: pd.DataFrame) -> pd.DataFrame:
    """The series with a clear recurring uplift in a business-calendar window
    (processed/calendar_effects.parquet), largest first: Server, Metric, ``Recurring peaks``
    (``month end +19 pts, quarter end +8 pts``) and the largest uplift in points."""
    require_columns(
        effects,
        ["server_id", "metric", "window", "uplift_pts", "clear"],
        catalog.CALENDAR_EFFECTS.key,
    )
    clear = effects[effects["clear"].astype(bool)].sort_values(
        ["uplift_pts", "server_id", "metric"], ascending=[False, True, True], kind="mergesort"
    )
    text = [
        f"{window_label(str(w))} {u:+.0f} pts"
        for w, u in zip(clear["window"], clear["uplift_pts"], strict=True)
    ]
    grouped = clear.assign(text=text).groupby(["server_id", "metric"], sort=False)
    table = grouped.agg(peaks=("text", ", ".join), largest=("uplift_pts", "max")).reset_index()
    table = table.sort_values("largest", ascending=False, kind="mergesort", ignore_index=True)
    table["metric"] = table["metric"].map(metric_label)
    return table.rename(
        columns={
            "server_id": "Server",
            "metric": "Metric",
            "peaks": "Recurring peaks",
            "largest": "Largest uplift (pts)",
        }
    )


def window_text(names: str, window_only: bool) -> str:
    """Stage 06's ``breach_window`` for a reader: ``month end`` (``month end only`` when the
    series crosses on that window's days only), '' for none."""
    if not names:
        return ""
    labels = ", ".join(window_label(name) for name in names.split(", "))
    return f"{labels} only" if window_only else labels


# What each at-risk metric resizes: (capacity column, recommended column, projected peak
# column, unit).
_SIZED_RESOURCES = {
    "cpu_p95": ("cpu_cores", "recommended_cores", "projected_cpu_peak", "cores"),
    "mem_p95": ("memory_gb", "recommended_memory_gb", "projected_mem_peak", "GB memory"),
    "disk_p95": ("disk_gb", "recommended_disk_gb", "projected_disk_peak", "GB disk"),
}


def series_actions(risk: pd.DataFrame, clusters: pd.DataFrame) -> pd.Series:
    """Per risk row, the sized action stage 07 found for a high or medium series, in words:
    ``4 -> 8 cores: forecast peak 45 %, +$120/month`` ("" for a low series). The cost change
    is the server's, so a resize of its other resource is named too (``192 -> 256 GB memory:
    forecast peak 62 %; 48 -> 16 cores, -$369/month``)."""
    require_columns(
        clusters,
        ["server_id", "monthly_cost_change_usd"]
        + [c for spec in _SIZED_RESOURCES.values() for c in spec[:3]],
        catalog.CLUSTERS.key,
    )
    rows = risk[["server_id", "metric", "risk_level"]].merge(
        clusters.drop(columns=["metric", "risk_level"], errors="ignore"),
        on="server_id",
        how="left",
    )
    texts = []
    for row in rows.to_dict("records"):
        spec = _SIZED_RESOURCES.get(str(row["metric"]))
        if row["risk_level"] not in AT_RISK_LEVELS or spec is None:
            texts.append("")
            continue
        capacity, recommended, projected, unit = spec
        if is_missing(row.get(recommended)) or is_missing(row.get(capacity)):
            texts.append("no size known: check the inventory")
            continue
        text = (
            f"{format_number(row[capacity], 'g')} -> {format_number(row[recommended], 'g')} "
            f"{unit}: forecast peak {format_number(row[projected], '.0f')} %"
        )
        # The cost change is the server's: say when its other resources resize too.
        for other_metric, (other_cap, other_rec, _, other_unit) in _SIZED_RESOURCES.items():
            if other_metric == row["metric"] or is_missing(row.get(other_rec)):
                continue
            if row[other_rec] != row[other_cap]:
                text += (
                    f"; {format_number(row[other_cap], 'g')} -> "
                    f"{format_number(row[other_rec], 'g')} {other_unit}"
                )
        change = row["monthly_cost_change_usd"]
        text += f", {'+' if change >= 0 else '-'}{format_value(abs(change), 'money')}/month"
        texts.append(text)
    return pd.Series(texts, index=risk.index, dtype=object)


# --------------------------------------------------------------------------- accuracy


def model_rank(model: str) -> int:
    """Where a model goes in accuracy tables and charts: the champion first (0), the
    seasonal-naive baseline last (2), every other model between (1)."""
    return {CHAMPION: 0, BASELINE_MODEL: 2}.get(model, 1)


def model_rows(metrics: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """The rows under ``key`` (``models`` or ``models_by_metric``) of models/metrics.json."""
    rows = metrics.get(key, [])
    if not isinstance(rows, list):
        raise StageCheckError(f"08_report: models/metrics.json key {key!r} is not a list")
    return rows


def interval_calibration(metrics: Mapping[str, Any]) -> dict[str, str]:
    """Per model, where stage 04 calibrated its intervals (``interval_calibration`` in
    models/metrics.json; empty for a metrics.json written before stage 04 recorded it)."""
    sources = metrics.get("interval_calibration") or {}
    if not isinstance(sources, Mapping):
        raise StageCheckError(
            "08_report: models/metrics.json interval_calibration must map models to text, "
            f"not {type(sources).__name__}"
        )
    return {str(model): str(text) for model, text in sorted(sources.items())}


def accuracy_frame(metrics: Mapping[str, Any], *, by_metric: bool = False) -> pd.DataFrame:
    """Backtest accuracy per model from models/metrics.json, with its own column names.

    The fleet-wide ``models`` rows come first with metric ``ALL_METRICS``, then (with
    ``by_metric``) the ``models_by_metric`` rows by metric; within a metric the champion
    first, then the other models by MASE, the seasonal-naive baseline last. A
    ``calibration`` column says where each model's intervals were calibrated, when
    metrics.json records it. ``accuracy_table`` and the accuracy charts show this frame.
    """
    require_keys(metrics, ["models"], catalog.BACKTEST_REPORT.key)
    rows = [dict(r, metric=ALL_METRICS) for r in model_rows(metrics, "models")]
    if by_metric:
        rows += [dict(r) for r in model_rows(metrics, "models_by_metric")]
    frame = pd.DataFrame(rows)
    require_columns(frame, ["model", "mase", "coverage"], "models/metrics.json models")
    frame["_order"] = frame["model"].map(model_rank)
    frame["_metric_order"] = (frame["metric"] != ALL_METRICS).astype(int)
    frame = frame.sort_values(["_metric_order", "metric", "_order", "mase", "model"])
    frame = frame.drop(columns=["_order", "_metric_order"]).reset_index(drop=True)
    sources = interval_calibration(metrics)
    if sources:
        # The champion has no calibration of its own: each series keeps its model's.
        frame["calibration"] = frame["model"].map(
            lambda model: CHAMPION_CALIBRATION if model == CHAMPION else sources.get(model)
        )
    return frame


def accuracy_table(metrics: Mapping[str, Any], *, by_metric: bool = False) -> pd.DataFrame:
    """``accuracy_frame`` with readable names and labels: the champion first, the
    seasonal-naive baseline last.

    With ``by_metric`` a leading Metric column holds ``All metrics`` for the overall rows,
    followed by the rows of each metric.
    """
    frame = accuracy_frame(metrics, by_metric=by_metric)
    columns = dict(_ACCURACY_COLUMNS)
    if not by_metric:
        del columns["metric"]
    table = _renamed(frame, columns)
    table["Model"] = table["Model"].map(model_label)
    if by_metric:
        table["Metric"] = table["Metric"].map(lambda m: m if m == ALL_METRICS else metric_label(m))
    return table


# --------------------------------------------------------------------------- clusters


def _cluster_row(
    entry: Mapping[str, Any], findings: Mapping[Any, Mapping[Any, Any]], freed: pd.Series
) -> dict:
    require_keys(entry, ["cluster", "label", "size"], "clusters/recommendations.json clusters")
    number = int(entry["cluster"])
    centroid = entry.get("centroid", {})
    counts = findings.get(number, {})
    return {
        "Cluster": number,
        "Profile": str(entry["label"]),
        "Servers": int(entry["size"]),
        "CPU P95 %": centroid.get("cpu_p95"),
        "Memory P95 %": centroid.get("mem_p95"),
        "Disk P95 %": centroid.get("disk_p95"),
        "CPU growth (pts/30d)": centroid.get("cpu_growth"),
        "Idle": int(counts.get("idle", 0)),
        "Over-provisioned": int(counts.get("over-provisioned", 0)),
        "Under-provisioned": int(counts.get("under-provisioned", 0)),
        "Optimal": int(counts.get("optimal", 0)),
        "Freed": int(freed.get(number, 0)),
    }


def cluster_table(recommendations: Mapping[str, Any], clusters: pd.DataFrame) -> pd.DataFrame:
    """One row per cluster: label, size, centroid P95s and growth, findings, servers freed."""
    require_keys(recommendations, ["clusters"], catalog.RECOMMENDATIONS.key)
    require_columns(clusters, CLUSTER_REQUIRED, catalog.CLUSTERS.key)
    findings = pd.crosstab(clusters["cluster"], clusters["finding"]).to_dict("index")
    freed = clusters.groupby("cluster")["freed"].apply(lambda s: int(s.fillna(False).sum()))
    rows = [_cluster_row(entry, findings, freed) for entry in recommendations["clusters"]]
    return pd.DataFrame(rows, columns=_CLUSTER_TABLE_COLUMNS)


def server_cluster_table(clusters: pd.DataFrame) -> pd.DataFrame:
    """One row per server: its cluster, utilisation profile, inventory and attributes."""
    require_columns(clusters, ["server_id", "cluster", "cluster_label"], catalog.CLUSTERS.key)
    columns = {
        "server_id": "Server",
        "cluster": "Cluster",
        "cluster_label": "Profile",
        "cpu_p95": "CPU P95 %",
        "mem_p95": "Memory P95 %",
        "disk_p95": "Disk P95 %",
        "cpu_mean": "CPU mean %",
        "mem_mean": "Memory mean %",
        "disk_mean": "Disk mean %",
        "cpu_growth": "CPU growth (pts/30d)",
        "mem_growth": "Memory growth (pts/30d)",
        "disk_growth": "Disk growth (pts/30d)",
        "business_unit": "Business unit",
        "region": "Region",
        "environment": "Environment",
        "criticality": "Criticality",
        "cpu_cores": "Cores",
        "memory_gb": "Memory GB",
        "monthly_cost_usd": "Monthly cost (USD)",
    }
    ordered = clusters.sort_values(["cluster", "server_id"], kind="mergesort")
    return _renamed(ordered, columns)


def recommendation_table(clusters: pd.DataFrame) -> pd.DataFrame:
    """Servers with an action or freed by consolidation, largest counted saving first.

    ``Monthly saving (USD)`` is the saving stage 07 counts for the server
    (``counted_savings_usd``), so the column sums to ``total_savings_usd``; ``Saving type``
    says which kind it is. ``Move onto`` names the host of a freed server.
    """
    require_columns(
        clusters,
        [*CLUSTER_REQUIRED, "cpu_cores", "memory_gb", "recommended_cores", "recommended_memory_gb"],
        catalog.CLUSTERS.key,
    )
    freed = clusters["freed"].fillna(False).astype(bool)
    frame = clusters.assign(
        _saving=clusters["counted_savings_usd"].astype(float),
        _kind=clusters["saving_kind"],
        _freed=freed,
        _move_onto=clusters["host_server_id"].where(freed),
    )
    chosen = frame[(frame["action"] != "none") | frame["_freed"]]
    chosen = chosen.sort_values(["_saving", "server_id"], ascending=[False, True], kind="mergesort")
    columns = {
        "server_id": "Server",
        "cluster_label": "Profile",
        "finding": "Finding",
        "action": "Action",
        "cpu_cores": "Cores",
        "recommended_cores": "Recommended cores",
        "memory_gb": "Memory GB",
        "recommended_memory_gb": "Recommended memory GB",
        "projected_cpu_peak": "Projected CPU peak %",
        "projected_mem_peak": "Projected memory peak %",
        "monthly_cost_usd": "Monthly cost (USD)",
        "monthly_cost_change_usd": "Monthly cost change (USD)",
        "_saving": "Monthly saving (USD)",
        "_kind": "Saving type",
        "_freed": "Freed by consolidation",
        "_move_onto": "Move onto",
        "move_crosses": "Move crosses",
        "business_unit": "Business unit",
        "environment": "Environment",
        "criticality": "Criticality",
        "excluded_reason": "Not consolidated because",
    }
    return _renamed(chosen, columns)


# --------------------------------------------------------------------------- forecasts, quality


def forecast_table(forecasts: pd.DataFrame) -> pd.DataFrame:
    """Champion forecast rows (``is_champion``) by server, metric and date, readable names."""
    columns = {
        "server_id": "Server",
        "metric": "Metric",
        "date": "Date",
        "model": "Model",
        "yhat": "Forecast %",
        "yhat_lower": "Lower %",
        "yhat_upper": "Upper %",
    }
    require_columns(forecasts, [*columns, "is_champion"], catalog.FORECASTS.key)
    champion = forecasts[forecasts["is_champion"].fillna(False).astype(bool)]
    ordered = champion.sort_values(["server_id", "metric", "date"], kind="mergesort")
    table = _renamed(ordered, columns)
    table["Metric"] = table["Metric"].map(metric_label)
    table["Model"] = table["Model"].map(model_label)
    return table


def quality_table(quality: Mapping[str, Any], cleaning: Mapping[str, Any]) -> pd.DataFrame:
    """Per metric: monitored (by every server, some, or none), missing share and range after
    loading, values clipped above 100 %, outliers and imputed days in cleaning."""
    require_keys(quality, ["metrics"], catalog.QUALITY.key)
    cleaned = cleaning.get("by_metric", {})
    columns = [
        "Metric",
        "Monitored",
        "Missing share",
        "Min %",
        "Max %",
        "Mean %",
        "Clipped above 100 %",
        "Outliers replaced",
        "Imputed days",
    ]
    rows = [
        [
            metric_label(metric),
            _monitored(stats, int(quality.get("servers", 0))),
            stats.get("missing_share"),
            stats.get("min"),
            stats.get("max"),
            stats.get("mean"),
            stats.get("clipped_over_100"),
            cleaned.get(metric, {}).get("outliers"),
            cleaned.get(metric, {}).get("imputed"),
        ]
        for metric, stats in sorted(quality["metrics"].items())
    ]
    return pd.DataFrame(rows, columns=columns)


def _monitored(stats: Mapping[str, Any], servers: int) -> str:
    """'yes', 'no (left out)', or 'N of M servers' when some servers never report it."""
    if not stats.get("monitored", True):
        return "no (left out)"
    silent = len(stats.get("servers_not_reporting") or [])
    return f"{servers - silent} of {servers} servers" if silent and servers else "yes"
