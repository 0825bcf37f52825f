"""Stage 09 figures: the tables behind every chart, and static matplotlib versions of them.

The same five figures exist twice: interactive (plotly, ``plots_interactive``) for the HTML
pages, and static (matplotlib, here) for PNGs and the PDF report. Both draw from the tables
built here, so they always show the same numbers:

- ``urgent_series``: the most urgent at-risk server x metric series, ranked;
- ``risk_matrix``: servers by worst risk level per business unit x region;
- ``accuracy_table``: backtest accuracy by model x metric (``models/metrics.json``);
- ``savings_breakdown``: the monthly saving each server counts once (``clusters.parquet``).

Static figures are built on ``matplotlib.figure.Figure`` directly, not through pyplot, so they
never join pyplot's global figure list and need no GUI backend; ``figure_png`` renders one.
``forecast_panels`` stays a pyplot figure because notebook 06 relies on inline auto-display.
Plain functions on frames; no I/O.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from typing import Any, Literal

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

logger = logging.getLogger(__name__)

SERIES = ["server_id", "metric"]
LEVELS = ("high", "medium", "low")
AT_RISK_LEVELS = ("high", "medium")
BASELINE_MODEL = "seasonal_naive"
CHAMPION_MODEL = "champion"
ALL_METRICS = "all metrics"
UNKNOWN = "unknown"
FIGURE_STEMS = ("urgent_servers", "risk_heatmap", "clusters", "model_accuracy", "savings")
HeatmapValue = Literal["servers_at_risk", "share_at_risk"]
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


# --- tables shared by the static and the interactive figures ---------------------------------


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
    columns = ["business_unit", "region", "servers", *LEVELS, "servers_at_risk", "share_at_risk"]
    if risk.empty:
        return pd.DataFrame(columns=columns)
    severity = risk["risk_level"].map({level: i for i, level in enumerate(LEVELS)})
    worst = severity.groupby(risk["server_id"]).min().map(dict(enumerate(LEVELS)))
    servers = risk.drop_duplicates("server_id").set_index("server_id")
    place = pd.DataFrame(index=servers.index)
    for column in ("business_unit", "region"):
        values = servers[column] if column in servers else pd.Series(pd.NA, index=servers.index)
        place[column] = values.astype(object).where(values.notna(), UNKNOWN).astype(str)
    place["worst"] = worst
    counts = (
        place.groupby(["business_unit", "region", "worst"]).size().unstack("worst", fill_value=0)
    )
    counts = counts.reindex(columns=list(LEVELS), fill_value=0)
    counts.columns.name = None
    counts["servers"] = counts[list(LEVELS)].sum(axis=1)
    counts["servers_at_risk"] = counts["high"] + counts["medium"]
    counts["share_at_risk"] = counts["servers_at_risk"] / counts["servers"]
    return counts.reset_index()[columns].sort_values(["business_unit", "region"], ignore_index=True)


def accuracy_table(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """Backtest accuracy rows (``ACCURACY_COLUMNS``) from ``models/metrics.json``: the per-metric
    rows of ``models_by_metric`` and the fleet-wide ``models`` rows as metric "all metrics".
    Models run champion first, the seasonal-naive baseline last."""
    overall = pd.DataFrame(list(metrics.get("models", []))).assign(metric=ALL_METRICS)
    by_metric = pd.DataFrame(list(metrics.get("models_by_metric", [])))
    table = pd.concat([by_metric, overall], ignore_index=True)
    table = table.reindex(columns=ACCURACY_COLUMNS)
    if table.empty:
        return table
    table["model"] = table["model"].astype(str)
    table["metric"] = table["metric"].astype(str)
    models = sorted(table["model"].unique(), key=lambda m: (_model_rank(m), m))
    metric_order = sorted(m for m in table["metric"].unique() if m != ALL_METRICS)
    metric_order += [ALL_METRICS] if (table["metric"] == ALL_METRICS).any() else []
    table["model"] = pd.Categorical(table["model"], categories=models, ordered=True)
    table["metric"] = pd.Categorical(table["metric"], categories=metric_order, ordered=True)
    table = table.sort_values(["model", "metric"], ignore_index=True)
    table["model"] = table["model"].astype(str)
    table["metric"] = table["metric"].astype(str)
    return table


def _model_rank(model: str) -> int:
    return {CHAMPION_MODEL: 0, BASELINE_MODEL: 2}.get(model, 1)


def model_order(table: pd.DataFrame) -> list[str]:
    """The models of an ``accuracy_table`` in display order."""
    return list(dict.fromkeys(table["model"]))


def metric_order(table: pd.DataFrame) -> list[str]:
    """The metrics of an ``accuracy_table`` in display order ("all metrics" last)."""
    return sorted(dict.fromkeys(table["metric"]), key=lambda m: (m == ALL_METRICS, m))


def interval_level(metrics: Mapping[str, Any]) -> float | None:
    """The nominal interval level the backtest checked coverage against, if recorded."""
    level = metrics.get("interval_level")
    return float(level) if level is not None else None


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
        for kind in ("consolidation", "right-sizing")
    }
    recommendations = recommendations or {}
    quoted = {
        "consolidation": recommendations.get("consolidation_savings_usd"),
        "right-sizing": recommendations.get("right_sizing_savings_usd"),
    }
    totals = {}
    for kind, value in computed.items():
        if quoted[kind] is None:
            totals[kind] = value
            continue
        totals[kind] = float(quoted[kind])
        if abs(totals[kind] - value) > 1.0:
            logger.warning(
                "09_visualize: %s savings %.2f in recommendations, %.2f from clusters",
                kind,
                totals[kind],
                value,
            )
    return totals


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(0.0, index=frame.index)
    return pd.to_numeric(frame[column], errors="coerce").fillna(0.0).astype(float)


def text_values(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column as strings, "unknown" where missing or absent."""
    if column not in frame:
        return pd.Series(UNKNOWN, index=frame.index, dtype=object)
    values = frame[column].astype(object)
    return values.where(values.notna(), UNKNOWN).astype(str)


# --- static figures ---------------------------------------------------------------------------


def _plain(text: object) -> str:
    """Text shown literally by matplotlib: a ``$`` in user data would start mathtext (and an
    unbalanced one fails at render time)."""
    return str(text).replace("$", r"\$")


def _empty_figure(title: str, message: str, size: tuple[float, float] = (8, 3)) -> Figure:
    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, color="0.35")
    ax.set_title(title)
    ax.set_axis_off()
    return fig


def _draw_forecast_panel(
    ax: Axes, row: Mapping[str, Any], past: pd.DataFrame, ahead: pd.DataFrame
) -> None:
    ax.plot(past["date"], past["value"], color="0.3", label="history")
    model = ahead["model"].iloc[0] if len(ahead) else "none"
    ax.plot(ahead["date"], ahead["yhat"], label=_plain(f"forecast ({model})"))
    ax.fill_between(
        ahead["date"], ahead["yhat_lower"], ahead["yhat_upper"], alpha=0.25, label="interval"
    )
    ax.axhline(
        row["threshold"], color="red", linestyle="--", label=f"threshold {row['threshold']:.0f}%"
    )
    prefix = f"#{row['rank']} " if "rank" in row else ""
    suffix = f": {row['risk_level']}" if "risk_level" in row else ""
    ax.set_title(_plain(f"{prefix}{row['server_id']} {row['metric']}{suffix}"))
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


def static_risk_heatmap(risk: pd.DataFrame, value: HeatmapValue = "servers_at_risk") -> Figure:
    """Business unit x region heatmap of servers at risk (count or share); each cell is
    annotated "at risk / servers"."""
    title = "Servers at risk (high or medium) by business unit and region"
    matrix = risk_matrix(risk)
    if matrix.empty:
        return _empty_figure(title, "no risk assessment to show")
    grid = matrix.pivot(index="business_unit", columns="region", values=value)
    at_risk = matrix.pivot(index="business_unit", columns="region", values="servers_at_risk")
    servers = matrix.pivot(index="business_unit", columns="region", values="servers")
    labels = (
        at_risk.fillna(0).astype(int).astype(str) + "/" + servers.fillna(0).astype(int).astype(str)
    ).where(servers.notna(), "")
    fig = Figure(figsize=(max(6.0, 1.3 * grid.shape[1] + 3), max(3.0, 0.5 * grid.shape[0] + 1.5)))
    ax = fig.add_subplot()
    share = value == "share_at_risk"
    sns.heatmap(
        grid.astype(float),
        ax=ax,
        annot=labels.to_numpy(),
        fmt="",
        cmap="Reds",
        vmin=0,
        vmax=1 if share else max(1.0, float(np.nanmax(grid.to_numpy(dtype=float)))),
        linewidths=0.5,
        cbar_kws={"label": "share of servers at risk" if share else "servers at risk"},
    )
    if not share:  # whole servers: no 0.5 ticks
        ax.collections[0].colorbar.locator = MaxNLocator(integer=True)
        ax.collections[0].colorbar.update_ticks()
    ax.set_xticklabels([_plain(c) for c in grid.columns], rotation=30, ha="right")
    ax.set_yticklabels([_plain(i) for i in grid.index], rotation=0)
    ax.set_xlabel("region")
    ax.set_ylabel("business unit")
    total = int(matrix["servers_at_risk"].sum())
    ax.set_title(title if total else f"{title}: none at risk")
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
        ax.scatter(group["pc1"], group["pc2"], label=_plain(label), s=36, alpha=0.8)
    ax.set_xlabel("PC1")
    ax.set_ylabel("PC2")
    ax.set_title(title)
    ax.legend(title="cluster", fontsize=8)
    fig.tight_layout()
    return fig


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


def static_model_accuracy(metrics: Mapping[str, Any]) -> Figure:
    """Grouped bars by metric x model: MASE (1 = in-sample seasonal naive) and interval
    coverage against the nominal level."""
    title = "Model accuracy against the seasonal-naive baseline"
    table = accuracy_table(metrics)
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
        style = {"color": "0.6", "hatch": "//"} if model == BASELINE_MODEL else {}
        label = _plain(f"{model} (baseline)" if model == BASELINE_MODEL else model)
        mase_ax.bar(offset, rows["mase"], width, label=label, **style)
        coverage_ax.bar(offset, rows["coverage"], width, label=label, **style)
    mase_ax.axhline(1.0, color="black", linestyle="--", linewidth=1)
    mase_ax.set_ylabel("MASE (lower is better)")
    mase_ax.set_title("MASE; dashed: in-sample seasonal naive")
    level = interval_level(metrics)
    if level is not None:
        coverage_ax.axhline(level, color="red", linestyle="--", linewidth=1)
    coverage_ax.set_ylim(0, 1.05)
    coverage_ax.set_ylabel("share of actuals inside the interval")
    coverage_ax.set_title(
        f"Interval coverage; dashed: nominal {level:.0%}" if level else "Interval coverage"
    )
    for ax in (mase_ax, coverage_ax):
        ax.set_xticks(positions, [_plain(m) for m in metric_names])
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
        .reindex(columns=["consolidation", "right-sizing"], fill_value=0.0)
    )
    by_unit = by_unit.loc[by_unit.sum(axis=1).sort_values().index]
    fig = Figure(figsize=(12, max(3.5, 0.4 * max(len(by_category), len(by_unit)) + 2)))
    action_ax, unit_ax = fig.subplots(1, 2)
    colours = {"consolidation": "tab:green", "right-sizing": "tab:blue"}
    action_ax.barh(
        [_plain(category) for _, category in by_category.index],
        by_category.to_numpy(),
        color=[colours[kind] for kind, _ in by_category.index],
    )
    action_ax.set_title("by action")
    left = np.zeros(len(by_unit))
    for kind in by_unit.columns:
        values = by_unit[kind].to_numpy()
        unit_ax.barh(
            [_plain(u) for u in by_unit.index], values, left=left, color=colours[kind], label=kind
        )
        left += values
    unit_ax.set_title("by business unit")
    unit_ax.legend(fontsize=8)
    for ax in (action_ax, unit_ax):
        ax.set_xlabel("USD per month")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def savings_title(totals: Mapping[str, float]) -> str:
    """The savings headline; "USD", not "$", which plotly under MathJax would read as TeX."""
    return (
        f"Monthly savings: {sum(totals.values()):,.0f} USD (consolidation "
        f"{totals['consolidation']:,.0f}, right-sizing {totals['right-sizing']:,.0f})"
    )


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
    """The five static figures keyed by file stem (``FIGURE_STEMS``); render with
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
