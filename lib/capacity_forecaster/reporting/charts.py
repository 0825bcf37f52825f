"""Stage 09 figures, static: matplotlib versions of the five charts, for PNGs and the PDF.

The same five figures exist twice: interactive (plotly, ``charts_interactive``) for the HTML
pages, and static (matplotlib, here). Both draw from the tables and specifications of
``chart_data``, so they always show the same numbers, and take their colours from ``style``,
so a model or a kind of saving has the same colour in both.

Static figures are built on ``matplotlib.figure.Figure`` directly, not through pyplot, so they
never join pyplot's global figure list and need no GUI backend; ``figure_png`` renders one.
``forecast_panels`` stays a pyplot figure because notebook 06 relies on inline auto-display.
Plain functions on frames; no I/O.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from capacity_forecaster.reporting.chart_data import (
    SAVING_KINDS,
    accuracy_chart_table,
    cluster_groups,
    interval_level,
    metric_order,
    model_order,
    model_style,
    risk_heatmap,
    savings_breakdown,
    savings_title,
    savings_totals,
    series_windows,
    urgent_series,
)
from capacity_forecaster.reporting.style import (
    HISTORY_COLOUR,
    INTERVAL_OPACITY,
    KIND_COLOURS,
    THRESHOLD_COLOUR,
)
from capacity_forecaster.reporting.text import format_number, matplotlib_safe

logger = logging.getLogger(__name__)

__all__ = [
    "figure_png",
    "forecast_panels",
    "static_clusters",
    "static_figures",
    "static_model_accuracy",
    "static_risk_heatmap",
    "static_savings",
    "static_urgent_servers",
]


def _empty_figure(title: str, message: str, size: tuple[float, float] = (8, 3)) -> Figure:
    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, color="0.35")
    ax.set_title(title)
    ax.set_axis_off()
    return fig


def _draw_forecast_panel(
    ax: Axes, row: Mapping[Any, Any], past: pd.DataFrame, ahead: pd.DataFrame
) -> None:
    ax.plot(past["date"], past["value"], color=HISTORY_COLOUR, label="history")
    model = str(ahead["model"].iloc[0]) if len(ahead) else "none"
    colour = model_style(model).colour  # the model's colour in the accuracy chart too
    ax.plot(
        ahead["date"],
        ahead["yhat"],
        color=colour,
        label=matplotlib_safe(f"forecast ({model})"),
    )
    ax.fill_between(
        ahead["date"],
        ahead["yhat_lower"],
        ahead["yhat_upper"],
        color=colour,
        alpha=INTERVAL_OPACITY,
        label="interval",
    )
    ax.axhline(
        row["threshold"],
        color=THRESHOLD_COLOUR,
        linestyle="--",
        label=f"threshold {row['threshold']:.0f}%",
    )
    prefix = f"#{row['rank']} " if "rank" in row else ""
    suffix = f": {row['risk_level']}" if "risk_level" in row else ""
    ax.set_title(matplotlib_safe(f"{prefix}{row['server_id']} {row['metric']}{suffix}"))
    ax.set_ylabel("%")
    ax.legend(loc="upper left", fontsize=8)


def _draw_forecast_panels(
    fig: Figure,
    history: pd.DataFrame,
    forecasts: pd.DataFrame,
    rows: pd.DataFrame,
    history_days: int,
) -> None:
    axes = fig.subplots(max(len(rows), 1), 1, squeeze=False)[:, 0]
    if rows.empty:
        axes[0].text(0.5, 0.5, "no server at risk", ha="center", va="center")
        axes[0].set_axis_off()
        return
    windows = series_windows(history, forecasts, rows, history_days)
    for ax, row in zip(axes, rows.to_dict("records"), strict=True):
        past, ahead = windows[(row["server_id"], row["metric"])]
        _draw_forecast_panel(ax, row, past, ahead)
    fig.tight_layout()


def forecast_panels(
    history: pd.DataFrame, forecasts: pd.DataFrame, rows: pd.DataFrame, history_days: int = 180
) -> Figure:
    """One panel per row of ``rows`` (server_id, metric, threshold, and optionally rank and
    risk_level): recent history, the champion forecast with its interval, the threshold.

    A pyplot figure, so a notebook shows it inline; ``static_urgent_servers`` is the same chart
    outside pyplot."""
    fig = plt.figure(figsize=(11, 2.6 * max(len(rows), 1)))
    _draw_forecast_panels(fig, history, forecasts, rows, history_days)
    return fig


def static_urgent_servers(
    history: pd.DataFrame,
    forecasts: pd.DataFrame,
    risk: pd.DataFrame,
    top_n: int = 4,
    history_days: int = 180,
) -> Figure:
    """Forecast panels of the ``top_n`` most urgent series (see ``urgent_series``)."""
    rows = urgent_series(risk, top_n)
    fig = Figure(figsize=(11, 2.6 * max(len(rows), 1)))
    _draw_forecast_panels(fig, history, forecasts, rows, history_days)
    if rows.empty:
        fig.axes[0].set_title("Most urgent servers")
    return fig


def static_risk_heatmap(risk: pd.DataFrame) -> Figure:
    """Business unit x region heatmap coloured by the share of servers at risk, each cell
    annotated "at risk/servers" (``chart_data.risk_heatmap``, as the interactive one)."""
    spec = risk_heatmap(risk)
    if not spec.units:
        return _empty_figure(spec.title, "no risk assessment to show")
    rows, columns = spec.share.shape
    fig = Figure(figsize=(max(6.0, 1.3 * columns + 3), max(3.0, 0.5 * rows + 1.8)))
    ax = fig.add_subplot()
    sns.heatmap(
        pd.DataFrame(spec.share),
        ax=ax,
        annot=spec.labels,
        fmt="",
        cmap=LinearSegmentedColormap.from_list("risk_share", spec.colour_stops),
        vmin=0.0,
        vmax=1.0,
        linewidths=0.5,
        cbar_kws={"label": spec.colourbar_title, "format": PercentFormatter(xmax=1.0)},
    )
    ax.set_xticklabels([matplotlib_safe(c) for c in spec.regions], rotation=30, ha="right")
    ax.set_yticklabels([matplotlib_safe(i) for i in spec.units], rotation=0)
    ax.set_xlabel("region")
    ax.set_ylabel("business unit")
    ax.set_title(spec.caption, fontsize=9, color="0.35")
    fig.suptitle(spec.title)
    fig.tight_layout()
    return fig


def static_clusters(clusters: pd.DataFrame) -> Figure:
    """Servers on the first two principal components, coloured by cluster label."""
    title = "Server clusters (principal components of the utilisation profile)"
    if clusters.empty:
        return _empty_figure(title, "no clustered servers")
    fig = Figure(figsize=(8, 5.5))
    ax = fig.add_subplot()
    for label, group in cluster_groups(clusters):
        ax.scatter(group["pc1"], group["pc2"], label=matplotlib_safe(label), s=36, alpha=0.8)
    ax.set_xlabel("PC1")
    ax.set_ylabel("PC2")
    ax.set_title(title)
    ax.legend(title="cluster", fontsize=8)
    fig.tight_layout()
    return fig


def static_model_accuracy(metrics: Mapping[str, Any]) -> Figure:
    """Grouped bars by metric x model: MASE (1 = in-sample seasonal naive) and interval
    coverage against the nominal level."""
    title = "Model accuracy against the seasonal-naive baseline"
    table = accuracy_chart_table(metrics)
    if table.empty:
        return _empty_figure(title, "no backtest metrics")
    models = model_order(table)
    metric_names = metric_order(table)
    fig = Figure(figsize=(12, 4.5))
    mase_ax, coverage_ax = fig.subplots(1, 2)
    positions = np.arange(len(metric_names))
    width = 0.8 / len(models)
    for i, model in enumerate(models):
        rows = table[table["model"] == model].set_index("metric").reindex(metric_names)
        offset = positions - 0.4 + width * (i + 0.5)
        look = model_style(model)
        bars = {
            "label": matplotlib_safe(look.label),
            "color": look.colour,
            "hatch": "//" if look.hatched else None,
        }
        mase_ax.bar(offset, rows["mase"], width, **bars)
        coverage_ax.bar(offset, rows["coverage"], width, **bars)
    mase_ax.axhline(1.0, color="black", linestyle="--", linewidth=1)
    mase_ax.set_ylabel("MASE (lower is better)")
    mase_ax.set_title("MASE; dashed: in-sample seasonal naive")
    level = interval_level(metrics)
    if level is not None:
        coverage_ax.axhline(level, color=THRESHOLD_COLOUR, linestyle="--", linewidth=1)
    coverage_ax.set_ylim(0, 1.05)
    coverage_ax.set_ylabel("share of actuals inside the interval")
    coverage_ax.set_title(
        f"Interval coverage; dashed: nominal {format_number(level, '.0%')}"
        if level
        else "Interval coverage"
    )
    for ax in (mase_ax, coverage_ax):
        ax.set_xticks(positions, [matplotlib_safe(m) for m in metric_names])
    mase_ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def static_savings(
    clusters: pd.DataFrame, recommendations: Mapping[str, Any] | None = None
) -> Figure:
    """Monthly savings by action (consolidation vs right-sizing) and by business unit."""
    breakdown = savings_breakdown(clusters)
    totals = savings_totals(breakdown, recommendations)
    title = savings_title(totals)
    if breakdown.empty:
        return _empty_figure(title, "no savings identified")
    by_category = breakdown.groupby(["kind", "category"])["monthly_savings_usd"].sum().sort_values()
    by_unit = (
        breakdown.pivot_table(
            index="business_unit", columns="kind", values="monthly_savings_usd", aggfunc="sum"
        )
        .fillna(0.0)
        .reindex(columns=list(SAVING_KINDS), fill_value=0.0)
    )
    by_unit = by_unit.loc[by_unit.sum(axis=1).sort_values().index]
    fig = Figure(figsize=(12, max(3.5, 0.4 * max(len(by_category), len(by_unit)) + 2)))
    action_ax, unit_ax = fig.subplots(1, 2)
    action_ax.barh(
        [matplotlib_safe(category) for _, category in by_category.index],
        by_category.to_numpy(),
        color=[KIND_COLOURS[kind] for kind, _ in by_category.index],
    )
    action_ax.set_title("by action")
    left = np.zeros(len(by_unit))
    for kind in by_unit.columns:
        values = by_unit[kind].to_numpy()
        unit_ax.barh(
            [matplotlib_safe(u) for u in by_unit.index],
            values,
            left=left,
            color=KIND_COLOURS[kind],
            label=kind,
        )
        left += values
    unit_ax.set_title("by business unit")
    unit_ax.legend(fontsize=8)
    for ax in (action_ax, unit_ax):
        ax.set_xlabel("USD per month")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def static_figures(
    history: pd.DataFrame,
    forecasts: pd.DataFrame,
    risk: pd.DataFrame,
    clusters: pd.DataFrame,
    metrics: Mapping[str, Any],
    recommendations: Mapping[str, Any] | None = None,
    top_n: int = 4,
    history_days: int = 180,
) -> dict[str, Figure]:
    """The five static figures keyed by file stem (``chart_data.FIGURE_STEMS``); render with
    ``figure_png``. ``top_n`` bounds the urgent-server panels (one panel each)."""
    figures = {
        "urgent_servers": static_urgent_servers(history, forecasts, risk, top_n, history_days),
        "risk_heatmap": static_risk_heatmap(risk),
        "clusters": static_clusters(clusters),
        "model_accuracy": static_model_accuracy(metrics),
        "savings": static_savings(clusters, recommendations),
    }
    logger.info("09_visualize: built %d static figures", len(figures))
    return figures


def figure_png(fig: Figure, dpi: int = 150) -> bytes:
    """The figure as PNG bytes; the figure is closed afterwards (also if pyplot made it)."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buffer.getvalue()
