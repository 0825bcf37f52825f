"""Stage 09 interactive figures (plotly) and the self-contained HTML pages that show them.

The figures draw from the same tables and specifications as the static ones in ``charts``
(``chart_data``) and take the same colours (``style``). Every page references one shared
``plotly.min.js`` next to it (``plotly_js`` returns its text), so the pages open from a
file:// URL with no network: no CDN, no MathJax.

Text safety: plotly.js renders a subset of HTML (``<b>``, ``<br>``, ``<a href>``...) in titles,
hover labels, legends, tick labels and button labels, and server names or business units come
from user data. So every data-derived string passes through ``text.plotly_safe`` (an HTML
escape that plotly.js turns back into the literal characters on screen) before it reaches the
figure. Plain functions on frames; no I/O.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.offline
from plotly.subplots import make_subplots

from capacity_forecaster.core import catalog
from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.reporting.chart_data import (
    FIGURE_STEMS,
    RiskHeatmap,
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
    text_values,
    urgent_series,
)
from capacity_forecaster.reporting.style import (
    HISTORY_COLOUR,
    INTERVAL_OPACITY,
    KIND_COLOURS,
    THRESHOLD_COLOUR,
)
from capacity_forecaster.reporting.text import format_number, plotly_safe

logger = logging.getLogger(__name__)

PLOTLY_JS_NAME = catalog.PLOTLY_JS.key.rsplit("/", 1)[-1]  # the one plotly.js every page loads
NOT_AVAILABLE = "n/a"  # a missing number in titles and hovers
TRACES_PER_SERIES = 5  # history, interval lower, interval upper (filled), forecast, threshold
_SCRIPT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/]*\.js")


def _num(value: object, spec: str) -> str:
    """A number for a title or hover, "n/a" when missing."""
    return format_number(value, spec, missing=NOT_AVAILABLE)


def _texts(values: Iterable[object]) -> list[str]:
    return [plotly_safe(v) for v in values]


def _empty_figure(title: str, message: str) -> go.Figure:
    """A figure that says why it has nothing to show."""
    fig = go.Figure()
    fig.add_annotation(
        text=message,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font={"size": 16, "color": "#666"},
    )
    fig.update_layout(title=title, template="plotly_white", height=360)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


# --- 1. urgent servers --------------------------------------------------------------------


def _series_title(row: Mapping[Any, Any]) -> str:
    days = _num(row.get("days_to_breach"), ".0f")
    if row.get("over_now"):
        current, threshold = _num(row.get("current_p95"), ".1f"), _num(row.get("threshold"), "g")
        breach = f"over now: P95 {current}% against {threshold}%"
    elif days != NOT_AVAILABLE:
        breach = f"breach in {days} days"
    else:
        breach = "no breach on the forecast"
    parts = [
        f"#{row['rank']} {plotly_safe(row['server_id'])} · {plotly_safe(row['metric'])}",
        f"{plotly_safe(row['risk_level'])} risk: {breach}",
        f"P(breach) {_num(row.get('breach_probability'), '.0%')}",
    ]
    unit = row.get("business_unit")
    if unit is not None and not pd.isna(unit):
        parts.append(plotly_safe(unit))
    return " · ".join(parts)


def _interval_fill(colour: str) -> str:
    """``#RRGGBB`` at ``INTERVAL_OPACITY``, as plotly takes a translucent fill."""
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, {INTERVAL_OPACITY})"


def _interval_traces(
    ahead: pd.DataFrame, colour: str, common: Mapping[str, Any]
) -> list[go.Scatter]:
    """The interval as an invisible lower bound and an upper bound filled down to it."""
    return [
        go.Scatter(
            x=ahead["date"],
            y=ahead["yhat_lower"],
            mode="lines",
            line={"width": 0},
            showlegend=False,
            hoverinfo="skip",
            name="interval lower",
            **common,
        ),
        go.Scatter(
            x=ahead["date"],
            y=ahead["yhat_upper"],
            mode="lines",
            line={"width": 0},
            fill="tonexty",
            fillcolor=_interval_fill(colour),
            name="interval",
            hoverinfo="skip",
            **common,
        ),
    ]


def _threshold_trace(
    threshold: float, past: pd.DataFrame, ahead: pd.DataFrame, common: Mapping[str, Any]
) -> go.Scatter:
    """The threshold as a dashed line over the history and the forecast."""
    dates = pd.concat([past["date"], ahead["date"]])
    span = [dates.min(), dates.max()] if len(dates) else []
    return go.Scatter(
        x=span,
        y=[threshold] * len(span),
        mode="lines",
        name=f"threshold {threshold:.0f}%",
        line={"color": THRESHOLD_COLOUR, "dash": "dash"},
        hovertemplate=f"threshold {threshold:.1f}%<extra></extra>",
        **common,
    )


def _series_traces(
    row: Mapping[Any, Any], past: pd.DataFrame, ahead: pd.DataFrame, index: int, visible: bool
) -> list[go.Scatter]:
    """The TRACES_PER_SERIES traces of one series, tagged with ``meta`` = its index."""
    common = {"visible": visible, "meta": index}
    model = str(ahead["model"].iloc[0]) if len(ahead) else "none"
    colour = model_style(model).colour  # the model's colour in the accuracy chart too
    history = go.Scatter(
        x=past["date"],
        y=past["value"],
        mode="lines",
        name="history",
        line={"color": HISTORY_COLOUR, "width": 1.5},
        hovertemplate="%{x|%Y-%m-%d}: %{y:.1f}%<extra>history</extra>",
        **common,
    )
    forecast = go.Scatter(
        x=ahead["date"],
        y=ahead["yhat"],
        customdata=np.column_stack([ahead["yhat_lower"], ahead["yhat_upper"]]),
        mode="lines",
        name=f"forecast ({plotly_safe(model)})",
        line={"color": colour, "width": 2},
        hovertemplate=(
            "%{x|%Y-%m-%d}: %{y:.1f}% (interval %{customdata[0]:.1f} to "
            "%{customdata[1]:.1f})<extra>forecast</extra>"
        ),
        **common,
    )
    threshold = _threshold_trace(float(row["threshold"]), past, ahead, common)
    return [history, *_interval_traces(ahead, colour, common), forecast, threshold]


def _series_menu(fig: go.Figure, records: list[dict[Any, Any]], titles: list[str]) -> dict:
    """The dropdown: one button per series, showing only its traces and its title."""
    buttons = []
    for index, row in enumerate(records):
        visible = [trace.meta == index for trace in fig.data]
        label = f"#{row['rank']} {plotly_safe(row['server_id'])} · {plotly_safe(row['metric'])}"
        buttons.append(
            {
                "label": label,
                "method": "update",
                "args": [{"visible": visible}, {"title.text": titles[index]}],
            }
        )
    return {
        "buttons": buttons,
        "direction": "down",
        "showactive": True,
        "x": 0.0,
        "xanchor": "left",
        "y": 1.12,
        "yanchor": "top",
    }


def urgent_servers_figure(
    history: pd.DataFrame,
    forecasts: pd.DataFrame,
    risk: pd.DataFrame,
    top_n: int = 20,
    history_days: int = 180,
) -> go.Figure:
    """Recent history, champion forecast, interval and threshold of the ``top_n`` most urgent
    series in one figure; a dropdown shows one series at a time (the most urgent first)."""
    rows = urgent_series(risk, top_n)
    if rows.empty:
        return _empty_figure("Most urgent servers", "No server at risk: every series is low risk.")
    windows = series_windows(history, forecasts, rows, history_days)
    records = rows.to_dict("records")
    fig = go.Figure()
    titles = []
    for index, row in enumerate(records):
        past, ahead = windows[(row["server_id"], row["metric"])]
        fig.add_traces(_series_traces(row, past, ahead, index, visible=index == 0))
        titles.append(_series_title(row))
    fig.update_layout(
        title={"text": titles[0], "y": 0.97},
        template="plotly_white",
        height=520,
        margin={"t": 110},
        yaxis_title="utilisation (%)",
        hovermode="x unified",
        legend={"orientation": "h", "y": -0.15},
        updatemenus=[_series_menu(fig, records, titles)],
    )
    logger.info("09_visualize: urgent servers figure with %d series", len(records))
    return fig


# --- 2. fleet risk heatmap ----------------------------------------------------------------


def _heatmap_hover(spec: RiskHeatmap) -> np.ndarray:
    """Per cell: "1/17 servers at risk (6%)" and its servers by level; "" where none."""
    hover = np.full(spec.share.shape, "", dtype=object)
    for (i, j), label in np.ndenumerate(spec.labels):
        if label:
            share = _num(spec.share[i, j], ".0%")
            hover[i, j] = f"{label} servers at risk ({share})<br>{spec.level_counts[i, j]}"
    return hover


def risk_heatmap_figure(risk: pd.DataFrame) -> go.Figure:
    """Business unit x region coloured by the share of servers at risk (high or medium, by
    each server's worst metric), each cell "at risk/servers" (``chart_data.risk_heatmap``, as
    the static one); the hover lists the servers by level."""
    spec = risk_heatmap(risk)
    if not spec.units:
        return _empty_figure(spec.title, "No risk assessment to show.")
    last = len(spec.colour_stops) - 1
    fig = go.Figure(
        go.Heatmap(
            z=spec.share,
            x=_texts(spec.regions),
            y=_texts(spec.units),
            text=spec.labels,
            texttemplate="%{text}",
            customdata=_heatmap_hover(spec),
            hovertemplate="%{y} · %{x}<br>%{customdata}<extra></extra>",
            hoverongaps=False,
            colorscale=[[i / last, colour] for i, colour in enumerate(spec.colour_stops)],
            zmin=0.0,
            zmax=1.0,
            colorbar={"title": {"text": spec.colourbar_title}, "tickformat": ".0%"},
        )
    )
    fig.update_layout(
        title={"text": f"{spec.title}<br><sup>{spec.caption}</sup>"},
        template="plotly_white",
        # category axes: a region named "2024" or "1" must not become a number or a date
        xaxis={"title": {"text": "region"}, "type": "category"},
        yaxis={"title": {"text": "business unit"}, "type": "category", "autorange": "reversed"},
        height=max(360, 40 * len(spec.units) + 200),
    )
    return fig


# --- 3. clusters --------------------------------------------------------------------------


def _cluster_hover(group: pd.DataFrame) -> np.ndarray:
    """Per server: name, finding, action, saving, business unit, CPU and memory P95."""
    savings = pd.to_numeric(
        group.get("monthly_savings_usd", pd.Series(0.0, index=group.index)), errors="coerce"
    ).fillna(0.0)
    return np.column_stack(
        [
            _texts(group["server_id"]),
            _texts(text_values(group, "finding")),
            _texts(text_values(group, "action")),
            [_num(s, ",.0f") for s in savings],
            _texts(text_values(group, "business_unit")),
            [_num(v, ".1f") for v in group.get("cpu_p95", [np.nan] * len(group))],
            [_num(v, ".1f") for v in group.get("mem_p95", [np.nan] * len(group))],
        ]
    )


def clusters_figure(clusters: pd.DataFrame) -> go.Figure:
    """Servers on the first two principal components, coloured by cluster label; the hover
    shows the server, its finding, action and monthly saving."""
    title = "Server clusters (principal components of the utilisation profile)"
    if clusters.empty:
        return _empty_figure(title, "No clustered servers.")
    fig = go.Figure()
    for label, group in cluster_groups(clusters):
        fig.add_trace(
            go.Scatter(
                x=group["pc1"],
                y=group["pc2"],
                mode="markers",
                name=plotly_safe(label),
                marker={"size": 9, "opacity": 0.8},
                customdata=_cluster_hover(group),
                hovertemplate=(
                    "<b>%{customdata[0]}</b> (%{customdata[4]})<br>"
                    "finding: %{customdata[1]}, action: %{customdata[2]}<br>"
                    "saving: %{customdata[3]} USD per month<br>"
                    "CPU P95 %{customdata[5]}%, memory P95 %{customdata[6]}%"
                    "<extra>%{fullData.name}</extra>"
                ),
            )
        )
    fig.update_layout(
        title=title,
        template="plotly_white",
        xaxis_title="PC1",
        yaxis_title="PC2",
        legend_title_text="cluster",
        height=520,
    )
    return fig


# --- 4. model accuracy --------------------------------------------------------------------


def _accuracy_bars(model: str, rows: pd.DataFrame, metric_names: list[str]) -> list[go.Bar]:
    """A model's MASE bar (with its legend entry) and coverage bar, by metric."""
    customdata = np.column_stack(
        [
            [_num(v, ".2f") for v in rows["mase_median"]],
            [_num(v, ".0%") for v in rows["beats_baseline_share"]],
            [_num(v, ".2f") for v in rows["smape"]],
            [_num(v, ".0%") for v in rows["coverage"]],
            [_num(v, ".0f") for v in rows["series"]],
        ]
    )
    look = model_style(model)
    marker: dict[str, Any] = {"color": look.colour}
    if look.hatched:
        marker["pattern"] = {"shape": "/"}
    style = {
        "name": plotly_safe(look.label),
        "legendgroup": plotly_safe(model),
        "x": _texts(metric_names),
        "customdata": customdata,
        "marker": marker,
    }
    mase = go.Bar(
        y=rows["mase"],
        hovertemplate=(
            "%{x}: MASE %{y:.2f} (median %{customdata[0]}), beats baseline on "
            "%{customdata[1]} of %{customdata[4]} series, sMAPE %{customdata[2]}"
            "<extra>%{fullData.name}</extra>"
        ),
        **style,
    )
    coverage = go.Bar(
        y=rows["coverage"],
        showlegend=False,
        hovertemplate=("%{x}: coverage %{customdata[3]}<extra>%{fullData.name}</extra>"),
        **style,
    )
    return [mase, coverage]


def model_accuracy_figure(metrics: Mapping[str, Any]) -> go.Figure:
    """Backtest MASE by metric x model (grouped bars, the seasonal-naive baseline in grey, a
    line at MASE 1 = in-sample seasonal naive) and interval coverage against its nominal
    level."""
    title = "Model accuracy against the seasonal-naive baseline (rolling-origin backtest)"
    table = accuracy_chart_table(metrics)
    if table.empty:
        return _empty_figure(title, "No backtest metrics.")
    level = interval_level(metrics)
    metric_names = metric_order(table)
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(
            "MASE (lower is better; dashed: in-sample seasonal naive)",
            f"Interval coverage (dashed: nominal {_num(level, '.0%')})"
            if level
            else "Interval coverage",
        ),
    )
    for model in model_order(table):
        rows = table[table["model"] == model].set_index("metric").reindex(metric_names)
        mase, coverage = _accuracy_bars(model, rows, metric_names)
        fig.add_trace(mase, row=1, col=1)
        fig.add_trace(coverage, row=1, col=2)
    fig.add_hline(y=1.0, line_dash="dash", line_color="black", row=1, col=1)
    if level is not None:
        fig.add_hline(y=level, line_dash="dash", line_color=THRESHOLD_COLOUR, row=1, col=2)
    fig.update_xaxes(type="category")
    fig.update_yaxes(title_text="MASE", row=1, col=1)
    fig.update_yaxes(title_text="share of actuals inside", range=[0, 1.05], row=1, col=2)
    fig.update_layout(title=title, template="plotly_white", barmode="group", height=480)
    return fig


# --- 5. savings ---------------------------------------------------------------------------


def _savings_by(breakdown: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Monthly USD and servers per group of ``by``."""
    return (
        breakdown.groupby(by)
        .agg(usd=("monthly_savings_usd", "sum"), servers=("server_id", "size"))
        .reset_index()
    )


def _savings_bar(frame: pd.DataFrame, labels: Iterable[object], kind: str, **extra: Any) -> go.Bar:
    return go.Bar(
        x=frame["usd"],
        y=_texts(labels),
        customdata=frame["servers"],
        orientation="h",
        name=kind,
        legendgroup=kind,
        marker_color=KIND_COLOURS[kind],
        hovertemplate=(
            f"%{{y}}: %{{x:,.0f}} USD per month, %{{customdata}} servers<extra>{kind}</extra>"
        ),
        **extra,
    )


def savings_figure(
    clusters: pd.DataFrame, recommendations: Mapping[str, Any] | None = None
) -> go.Figure:
    """Monthly savings by action (consolidation vs right-sizing) and by business unit, each
    server counted once (see ``chart_data.savings_breakdown``)."""
    breakdown = savings_breakdown(clusters)
    title = savings_title(savings_totals(breakdown, recommendations))
    if breakdown.empty:
        return _empty_figure(title, "No savings identified.")
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("by action", "by business unit"), horizontal_spacing=0.25
    )
    by_category = _savings_by(breakdown, ["kind", "category"]).sort_values("usd")
    by_unit = _savings_by(breakdown, ["business_unit", "kind"])
    unit_order = by_unit.groupby("business_unit")["usd"].sum().sort_values().index
    for kind in KIND_COLOURS:
        categories = by_category[by_category["kind"] == kind]
        units = (
            by_unit[by_unit["kind"] == kind]
            .set_index("business_unit")[["usd", "servers"]]
            .reindex(unit_order, fill_value=0)
        )
        if len(categories):
            fig.add_trace(_savings_bar(categories, categories["category"], kind), row=1, col=1)
        fig.add_trace(
            _savings_bar(units, units.index, kind, showlegend=not len(categories)), row=1, col=2
        )
    fig.update_xaxes(title_text="USD per month")
    fig.update_yaxes(type="category")
    fig.update_layout(
        title=title,
        template="plotly_white",
        barmode="stack",
        height=max(380, 30 * max(len(by_category), len(unit_order)) + 200),
    )
    return fig


# --- all figures and their pages ----------------------------------------------------------


def interactive_figures(
    history: pd.DataFrame,
    forecasts: pd.DataFrame,
    risk: pd.DataFrame,
    clusters: pd.DataFrame,
    metrics: Mapping[str, Any],
    recommendations: Mapping[str, Any] | None = None,
    top_n: int = 20,
    history_days: int = 180,
) -> dict[str, go.Figure]:
    """The five interactive figures keyed by file stem (``chart_data.FIGURE_STEMS``)."""
    figures = {
        "urgent_servers": urgent_servers_figure(history, forecasts, risk, top_n, history_days),
        "risk_heatmap": risk_heatmap_figure(risk),
        "clusters": clusters_figure(clusters),
        "model_accuracy": model_accuracy_figure(metrics),
        "savings": savings_figure(clusters, recommendations),
    }
    logger.info("09_visualize: built %d interactive figures", len(figures))
    return figures


def figure_html(
    fig: go.Figure, plotlyjs_src: str = PLOTLY_JS_NAME, page_title: str | None = None
) -> str:
    """A full HTML page showing ``fig`` that loads plotly.js from the relative ``plotlyjs_src``
    (write ``plotly_js()`` there once); no CDN, no MathJax, a fixed div id so the same figure
    gives the same bytes. ``page_title`` (escaped here) names the browser tab."""
    if not _SCRIPT_NAME.fullmatch(plotlyjs_src) or ".." in plotlyjs_src.split("/"):
        raise ValueError(
            f"plotlyjs_src must be a relative path to a .js file next to the page, "
            f"got {plotlyjs_src!r}"
        )
    page = fig.to_html(
        include_plotlyjs=plotlyjs_src,
        include_mathjax=False,
        full_html=True,
        div_id="figure",
        config={"displaylogo": False, "responsive": True},
    )
    if page_title is not None:
        page = page.replace("</head>", f"    <title>{html.escape(page_title)}</title>\n</head>", 1)
    return page


def plotly_js() -> str:
    """The plotly.js bundle the pages of ``figure_html`` reference (write it once)."""
    return plotly.offline.get_plotlyjs()


def check_plot_files(keys: Iterable[str], folder: str = catalog.PLOT_PAGE.folder) -> None:
    """Stage 09's post-condition: a page and a PNG for every figure, and the shared plotly.js."""
    present = {key[len(folder) :] for key in keys if key.startswith(folder)}
    expected = {PLOTLY_JS_NAME} | {
        f"{stem}.{suffix}" for stem in FIGURE_STEMS for suffix in ("html", "png")
    }
    missing = sorted(expected - present)
    if missing:
        raise StageCheckError(f"09_visualize {folder}: missing {', '.join(missing)}")
