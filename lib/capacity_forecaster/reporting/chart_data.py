"""Stage 09: the tables behind every chart, shared by the static and the interactive figures.

The same five figures exist twice: interactive (plotly, ``charts_interactive``) for the HTML
pages, and static (matplotlib, ``charts``) for PNGs and the PDF report. Both draw from the
tables built here, so they always show the same numbers (and, through ``model_style`` and
``risk_heatmap``, the same colours and words):

- ``urgent_series``: the most urgent at-risk server x metric series, ranked;
- ``risk_matrix``: servers by worst risk level per business unit x region, and
  ``risk_heatmap``, the one specification both risk heatmaps draw (cells, colours, text);
- ``accuracy_chart_table``: backtest accuracy by model x metric, from the report's
  ``tables.accuracy_frame``;
- ``savings_breakdown``: the monthly saving each server counts once (``clusters.parquet``).

Plain functions on frames; no I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from capacity_forecaster.core.vocabulary import (
    AT_RISK_LEVELS,
    BASELINE_MODEL,
    CHART_NAMES,
    RISK_LEVELS,
    SERIES_KEY,
)
from capacity_forecaster.reporting.style import RISK_SHARE_COLOURS, model_colour
from capacity_forecaster.reporting.tables import accuracy_frame, model_rank
from capacity_forecaster.reporting.text import ALL_METRICS, format_number

logger = logging.getLogger(__name__)

__all__ = [
    "ACCURACY_COLUMNS",
    "FIGURE_STEMS",
    "SAVINGS_COLUMNS",
    "SAVING_KINDS",
    "ModelStyle",
    "RiskHeatmap",
    "accuracy_chart_table",
    "chart_model_name",
    "cluster_groups",
    "interval_level",
    "metric_order",
    "model_order",
    "model_style",
    "risk_heatmap",
    "risk_matrix",
    "savings_breakdown",
    "savings_title",
    "savings_totals",
    "series_windows",
    "text_values",
    "urgent_series",
]

SERIES = list(SERIES_KEY)
UNKNOWN = "unknown"
SAVING_KINDS = ("consolidation", "right-sizing")
FIGURE_STEMS = CHART_NAMES  # the catalog names each chart page and image by these
ACCURACY_COLUMNS = [
    "model",
    "metric",
    "series",
    "mase",
    "mase_median",
    "smape",
    "coverage",
    "beats_baseline_share",
]
SAVINGS_COLUMNS = [
    "server_id",
    "business_unit",
    "finding",
    "action",
    "kind",
    "category",
    "monthly_savings_usd",
]


def text_values(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column as strings, "unknown" where missing or absent."""
    if column not in frame:
        return pd.Series(UNKNOWN, index=frame.index, dtype=object)
    values = frame[column].astype(object)
    return values.where(values.notna(), UNKNOWN).astype(str)


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(0.0, index=frame.index)
    return pd.to_numeric(frame[column], errors="coerce").fillna(0.0).astype(float)


# --------------------------------------------------------------------------- risk


def urgent_series(risk: pd.DataFrame, top_n: int) -> pd.DataFrame:
    """The ``top_n`` most urgent high/medium series with a 1-based ``rank`` column.

    Follows risk.parquet's ``urgency_rank`` (stage 06's one urgency order: level, days to
    breach, probability, criticality), so plots, reports and the risk notebook agree.
    """
    if "urgency_rank" not in risk:
        raise ValueError("risk frame lacks column 'urgency_rank' (written by stage 06_risk)")
    at_risk = risk[risk["risk_level"].isin(AT_RISK_LEVELS)].drop(columns="rank", errors="ignore")
    ranked = at_risk.sort_values("urgency_rank", kind="mergesort").head(top_n)
    ranked = ranked.reset_index(drop=True)
    ranked.insert(0, "rank", np.arange(1, len(ranked) + 1))
    return ranked


def series_windows(
    history: pd.DataFrame,
    forecasts: pd.DataFrame,
    rows: pd.DataFrame,
    history_days: int = 180,
) -> dict[tuple[str, str], tuple[pd.DataFrame, pd.DataFrame]]:
    """Per (server_id, metric) of ``rows``: its last ``history_days`` days of history (date,
    value) and its champion forecast (date, model, yhat, yhat_lower, yhat_upper), by date."""
    keys = rows[SERIES].drop_duplicates()
    past = history[[*SERIES, "date", "value"]].merge(keys, on=SERIES).sort_values([*SERIES, "date"])
    last_day = past.groupby(SERIES)["date"].transform("max")
    past = past[past["date"] > last_day - pd.Timedelta(days=history_days)]
    champion = forecasts[forecasts["is_champion"].astype(bool)]
    ahead = (
        champion[[*SERIES, "date", "model", "yhat", "yhat_lower", "yhat_upper"]]
        .merge(keys, on=SERIES)
        .sort_values([*SERIES, "date"])
    )
    past_by_key = {key: group for key, group in past.groupby(SERIES, sort=False)}
    ahead_by_key = {key: group for key, group in ahead.groupby(SERIES, sort=False)}
    empty_past = past.iloc[:0]
    empty_ahead = ahead.iloc[:0]
    return {
        key: (past_by_key.get(key, empty_past), ahead_by_key.get(key, empty_ahead))
        for key in keys.itertuples(index=False, name=None)
    }


def risk_matrix(risk: pd.DataFrame) -> pd.DataFrame:
    """Servers per business unit x region by their worst level over metrics.

    Columns: business_unit, region, servers, high, medium, low, servers_at_risk (high or
    medium), share_at_risk. Missing business units or regions count as "unknown".
    """
    levels = list(RISK_LEVELS)
    columns = ["business_unit", "region", "servers", *levels, "servers_at_risk", "share_at_risk"]
    if risk.empty:
        return pd.DataFrame(columns=columns)
    severity = risk["risk_level"].map({level: i for i, level in enumerate(levels)})
    worst = severity.groupby(risk["server_id"]).min().map(dict(enumerate(levels)))
    servers = risk.drop_duplicates("server_id").set_index("server_id")
    place = pd.DataFrame(index=servers.index)
    for column in ("business_unit", "region"):
        values = servers[column] if column in servers else pd.Series(pd.NA, index=servers.index)
        place[column] = values.astype(object).where(values.notna(), UNKNOWN).astype(str)
    place["worst"] = worst
    counts = (
        place.groupby(["business_unit", "region", "worst"]).size().unstack("worst", fill_value=0)
    )
    counts = counts.reindex(columns=levels, fill_value=0)
    counts.columns.name = None
    counts["servers"] = counts[levels].sum(axis=1)
    counts["servers_at_risk"] = counts[list(AT_RISK_LEVELS)].sum(axis=1)
    counts["share_at_risk"] = counts["servers_at_risk"] / counts["servers"]
    return counts.reset_index()[columns].sort_values(["business_unit", "region"], ignore_index=True)


@dataclass(frozen=True)
class RiskHeatmap:
    """What both risk heatmaps draw, business unit (rows) x region (columns): each cell
    coloured by the share of its servers at risk and labelled "at risk/servers".

    ``share`` is NaN, ``labels`` and ``level_counts`` empty, where no server is. The colour
    scale runs evenly from ``colour_stops[0]`` at share 0 to ``colour_stops[-1]`` at share 1.
    """

    title: str
    caption: str  # how to read a cell, under the title
    units: list[str]
    regions: list[str]
    share: np.ndarray
    labels: np.ndarray  # "1/17": servers at risk / servers
    level_counts: np.ndarray  # "high 1, medium 0, low 16"
    colour_stops: tuple[str, ...] = RISK_SHARE_COLOURS
    colourbar_title: str = "share at risk"


def risk_heatmap(risk: pd.DataFrame) -> RiskHeatmap:
    """The risk heatmap of ``risk_matrix(risk)``, drawn by ``charts`` and
    ``charts_interactive`` alike.

    Coloured by share, not count: one server at risk of 17 must not look as urgent as one of
    one. The count stays on the cell, so a large group's few servers at risk are still seen.
    """
    title = "Share of servers at risk (high or medium) by business unit and region"
    matrix = risk_matrix(risk)
    units = sorted(matrix["business_unit"].unique())
    regions = sorted(matrix["region"].unique())
    row_of = {unit: i for i, unit in enumerate(units)}
    column_of = {region: j for j, region in enumerate(regions)}
    shape = (len(units), len(regions))
    share = np.full(shape, np.nan)
    labels = np.full(shape, "", dtype=object)
    level_counts = np.full(shape, "", dtype=object)
    for cell in matrix.to_dict("records"):
        i, j = row_of[cell["business_unit"]], column_of[cell["region"]]
        share[i, j] = cell["share_at_risk"]
        labels[i, j] = f"{int(cell['servers_at_risk'])}/{int(cell['servers'])}"
        level_counts[i, j] = ", ".join(f"{level} {int(cell[level])}" for level in RISK_LEVELS)
    if len(matrix) and not int(matrix["servers_at_risk"].sum()):
        title += ": none at risk"
    caption = "colour: share of the servers at risk; cell: servers at risk/servers"
    return RiskHeatmap(title, caption, units, regions, share, labels, level_counts)


# --------------------------------------------------------------------------- accuracy


def accuracy_chart_table(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """Backtest accuracy rows (``ACCURACY_COLUMNS``) for the accuracy charts: the report's
    ``tables.accuracy_frame`` by metric, the fleet-wide rows as metric ``ALL_METRICS``.

    Models run champion first, then the others by name, the seasonal-naive baseline last;
    metrics by name, ``ALL_METRICS`` last. Empty when metrics.json has no model rows."""
    if not metrics.get("models"):
        return pd.DataFrame(columns=ACCURACY_COLUMNS)
    table = accuracy_frame(metrics, by_metric=True).reindex(columns=ACCURACY_COLUMNS)
    table["model"] = table["model"].astype(str)
    table["metric"] = table["metric"].astype(str)
    models = sorted(table["model"].unique(), key=lambda m: (model_rank(m), m))
    metrics_shown = sorted(table["metric"].unique(), key=lambda m: (m == ALL_METRICS, m))
    table["model"] = pd.Categorical(table["model"], categories=models, ordered=True)
    table["metric"] = pd.Categorical(table["metric"], categories=metrics_shown, ordered=True)
    table = table.sort_values(["model", "metric"], ignore_index=True)
    table["model"] = table["model"].astype(str)
    table["metric"] = table["metric"].astype(str)
    return table


def model_order(table: pd.DataFrame) -> list[str]:
    """The models of an ``accuracy_chart_table`` in display order."""
    return list(dict.fromkeys(table["model"]))


def metric_order(table: pd.DataFrame) -> list[str]:
    """The metrics of an ``accuracy_chart_table`` in display order (``ALL_METRICS`` last)."""
    return sorted(dict.fromkeys(table["metric"]), key=lambda m: (m == ALL_METRICS, m))


def chart_model_name(model: str) -> str:
    """A model's name in the charts' legends: ``seasonal_naive (baseline)``, else the name."""
    return f"{model} (baseline)" if model == BASELINE_MODEL else model


@dataclass(frozen=True)
class ModelStyle:
    """How a model looks in every chart: its legend label, its colour, hatched or not."""

    label: str
    colour: str
    hatched: bool  # the seasonal-naive baseline: the reference every model is judged against


def model_style(model: str) -> ModelStyle:
    """``model``'s legend label (``chart_model_name``), colour (``style.model_colour``, the
    same in every chart and run) and hatching (the baseline only)."""
    return ModelStyle(chart_model_name(model), model_colour(model), model == BASELINE_MODEL)


def interval_level(metrics: Mapping[str, Any]) -> float | None:
    """The nominal interval level the backtest checked coverage against, if recorded."""
    level = metrics.get("interval_level")
    return float(level) if level is not None else None


# --------------------------------------------------------------------------- clusters, savings


def cluster_groups(clusters: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Groups by cluster_label, in cluster-number order where a number exists."""
    labels = text_values(clusters, "cluster_label")
    order_key = clusters.get("cluster", labels)
    order = (
        pd.DataFrame({"label": labels, "key": order_key})
        .sort_values(["key", "label"])["label"]
        .drop_duplicates()
    )
    return [(label, clusters[labels == label]) for label in order]


def savings_breakdown(clusters: pd.DataFrame) -> pd.DataFrame:
    """Per server with a saving (``SAVINGS_COLUMNS``): stage 07's ``counted_savings_usd`` and
    ``saving_kind`` (a freed server saves its whole cost as consolidation, a host of freed
    servers nothing, any other server its right-sizing saving). ``category`` names the
    action: "consolidate (freed)" or "<action> (<finding>)".
    """
    if clusters.empty:
        return pd.DataFrame(columns=SAVINGS_COLUMNS)
    frame = clusters.reset_index(drop=True)
    missing = [c for c in ("counted_savings_usd", "saving_kind") if c not in frame]
    if missing:
        raise ValueError(f"clusters frame lacks columns {missing} (written by stage 07_cluster)")
    freed = frame["saving_kind"] == "consolidation"
    finding = text_values(frame, "finding")
    action = text_values(frame, "action")
    breakdown = pd.DataFrame(
        {
            "server_id": frame["server_id"].astype(str),
            "business_unit": text_values(frame, "business_unit"),
            "finding": finding,
            "action": action,
            "kind": np.where(freed, "consolidation", "right-sizing"),
            "category": np.where(freed, "consolidate (freed)", action + " (" + finding + ")"),
            "monthly_savings_usd": _numeric(frame, "counted_savings_usd"),
        }
    )
    return breakdown[breakdown["monthly_savings_usd"] > 0].reset_index(drop=True)


def savings_totals(
    breakdown: pd.DataFrame, recommendations: Mapping[str, Any] | None
) -> dict[str, float]:
    """Consolidation and right-sizing totals: recommendations.json's where present (the numbers
    the report quotes), else the breakdown's; a disagreement over 1 USD is logged."""
    computed = {
        kind: float(breakdown.loc[breakdown["kind"] == kind, "monthly_savings_usd"].sum())
        for kind in SAVING_KINDS
    }
    recommendations = recommendations or {}
    quoted = {
        "consolidation": recommendations.get("consolidation_savings_usd"),
        "right-sizing": recommendations.get("right_sizing_savings_usd"),
    }
    totals = {}
    for kind, value in computed.items():
        given = quoted[kind]
        if given is None:
            totals[kind] = value
            continue
        totals[kind] = float(given)
        if abs(totals[kind] - value) > 1.0:
            logger.warning(
                "09_visualize: %s savings %.2f in recommendations, %.2f from clusters",
                kind,
                totals[kind],
                value,
            )
    return totals


def savings_title(totals: Mapping[str, float]) -> str:
    """The savings headline; "USD", not "$", which plotly under MathJax would read as TeX."""
    total, consolidation, right_sizing = (
        format_number(usd, ",.0f")
        for usd in (sum(totals.values()), totals["consolidation"], totals["right-sizing"])
    )
    return (
        f"Monthly savings: {total} USD (consolidation {consolidation}, right-sizing {right_sizing})"
    )
