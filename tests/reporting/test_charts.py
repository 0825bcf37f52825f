"""Stage 09 figures: tables, interactive figures and pages, static PNGs, hostile names, empties."""

from __future__ import annotations

import re
from typing import Any

import matplotlib.colors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.core.vocabulary import BASELINE_MODEL, CHAMPION, MODEL_NAMES
from capacity_forecaster.reporting import chart_data, charts, style
from capacity_forecaster.reporting import charts_interactive as pi

LAST_DAY = pd.Timestamp("2026-06-30")
SCRIPT = "<script>alert(1)</script>"
LINK = '<a href="javascript:alert(1)">x</a>'
IMG = "<img src=x onerror=alert(1)>"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# server: business unit, region, and per metric (level, days_to_breach, breach_probability)
FLEET: dict[str, tuple[str, str, dict[str, tuple[str, float, float]]]] = {
    "srv-a": ("Payments", "us-east", {"cpu_p95": ("high", 10, 0.9), "mem_p95": ("low", np.nan, 0)}),
    "srv-b": (
        "Payments",
        "us-east",
        {"cpu_p95": ("medium", 60, 0.4), "mem_p95": ("medium", np.nan, 0.25)},
    ),
    "srv-c": (
        "Payments",
        "eu-west",
        {"cpu_p95": ("low", np.nan, 0), "mem_p95": ("low", np.nan, 0)},
    ),
    "srv-d": ("Trading", "eu-west", {"cpu_p95": ("low", np.nan, 0), "mem_p95": ("high", 0, 1.0)}),
    "srv-e": (
        "Trading",
        "eu-west",
        {"cpu_p95": ("medium", 30, 0.6), "mem_p95": ("low", np.nan, 0)},
    ),
    "srv-f": ("Trading", "eu-west", {"cpu_p95": ("low", np.nan, 0), "mem_p95": ("low", np.nan, 0)}),
}
# stage 06's urgency order (level, days, probability): what urgent_series must follow
URGENT_ORDER = [
    ("srv-d", "mem_p95"),
    ("srv-a", "cpu_p95"),
    ("srv-e", "cpu_p95"),
    ("srv-b", "cpu_p95"),
    ("srv-b", "mem_p95"),
]
THRESHOLDS = {"cpu_p95": 80.0, "mem_p95": 85.0}
HISTORY_DAYS = 60


def _risk() -> pd.DataFrame:
    rows = [
        {
            "server_id": server,
            "metric": metric,
            "model": "prophet",
            "threshold": THRESHOLDS[metric],
            "days_to_breach": days,
            "breach_probability": probability,
            "risk_level": level,
            "business_unit": unit,
            "region": region,
            "criticality": "high",
        }
        for server, (unit, region, metrics) in FLEET.items()
        for metric, (level, days, probability) in metrics.items()
    ]
    frame = pd.DataFrame(rows)
    # Stage 06's urgency order; rows stay in fleet order, so sorting by row would fail.
    position = {key: i for i, key in enumerate(URGENT_ORDER)}
    keys = list(zip(frame["server_id"], frame["metric"], strict=True))
    order = sorted(range(len(frame)), key=lambda i: (position.get(keys[i], len(position)), i))
    frame["urgency_rank"] = pd.Series(range(1, len(frame) + 1), index=order).sort_index()
    return frame


def _history() -> pd.DataFrame:
    dates = pd.date_range(end=LAST_DAY, periods=90, freq="D")
    frames = [
        pd.DataFrame({"server_id": s, "metric": m, "date": dates, "value": np.linspace(40, 70, 90)})
        for s in FLEET
        for m in THRESHOLDS
    ]
    return pd.concat(frames, ignore_index=True)


def _forecasts() -> pd.DataFrame:
    horizon = np.arange(1, 15)
    frames = []
    for server in FLEET:
        for metric in THRESHOLDS:
            champion = pd.DataFrame(
                {
                    "server_id": server,
                    "metric": metric,
                    "date": LAST_DAY + pd.to_timedelta(horizon, unit="D"),
                    "horizon": horizon,
                    "model": "prophet",
                    "yhat": 70.0 + horizon,
                    "yhat_lower": 65.0 + horizon,
                    "yhat_upper": 75.0 + horizon,
                    "is_champion": True,
                }
            )
            frames += [champion, champion.assign(model="random_forest", is_champion=False)]
    return pd.concat(frames, ignore_index=True)


def _clusters() -> pd.DataFrame:
    # srv-b is freed onto srv-c: b counts its whole cost, c (the host) nothing.
    rows = [
        ("srv-a", 0, "idle", "idle", "decommission", 100.0, 100.0, False, "srv-a"),
        ("srv-b", 0, "idle", "over-provisioned", "downsize", 40.0, 200.0, True, "srv-c"),
        ("srv-c", 1, "steady", "over-provisioned", "downsize", 50.0, 300.0, False, "srv-c"),
        ("srv-d", 1, "steady", "optimal", "none", 0.0, 400.0, False, "srv-d"),
        ("srv-e", 2, "growing", "under-provisioned", "upsize", 0.0, 500.0, False, "srv-e"),
        ("srv-f", 2, "growing", "over-provisioned", "downsize", 60.0, 250.0, False, "srv-f"),
    ]
    columns = [
        "server_id",
        "cluster",
        "cluster_label",
        "finding",
        "action",
        "monthly_savings_usd",
        "monthly_cost_usd",
        "freed",
        "host_server_id",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    # As stage 07 counts them: srv-b its whole cost, srv-c (its host) nothing.
    frame["counted_savings_usd"] = [100.0, 200.0, 0.0, 0.0, 0.0, 60.0]
    frame["saving_kind"] = ["right-sizing", "consolidation", "none (hosts freed servers)", "", "",
                            "right-sizing"]  # fmt: skip
    frame["business_unit"] = frame["server_id"].map({s: unit for s, (unit, _, _) in FLEET.items()})
    frame["region"] = frame["server_id"].map({s: region for s, (_, region, _) in FLEET.items()})
    frame["pc1"] = np.arange(len(frame), dtype=float)
    frame["pc2"] = -np.arange(len(frame), dtype=float)
    frame["cpu_p95"] = 30.0
    frame["mem_p95"] = 50.0
    return frame


RECOMMENDATIONS = {"consolidation_savings_usd": 200.0, "right_sizing_savings_usd": 160.0}


def _metrics(models: tuple[str, ...] = ("champion", "prophet", "seasonal_naive")) -> dict:
    def row(model: str, i: int, metric: str | None = None) -> dict[str, Any]:
        entry = {
            "model": model,
            "series": 6,
            "mase": 1.0 + 0.25 * i,
            "mase_median": 0.9 + 0.25 * i,
            "smape": 5.0 + i,
            "coverage": 0.7 + 0.05 * i,
            "beats_baseline_share": 0.5,
        }
        return entry if metric is None else {**entry, "metric": metric, "mase": entry["mase"] + 1}

    return {
        "interval_level": 0.8,
        "models": [row(m, i) for i, m in enumerate(models)],
        "models_by_metric": [
            row(m, i, metric) for i, m in enumerate(models) for metric in THRESHOLDS
        ],
    }


@pytest.fixture
def fleet() -> dict[str, Any]:
    return {
        "history": _history(),
        "forecasts": _forecasts(),
        "risk": _risk(),
        "clusters": _clusters(),
        "metrics": _metrics(),
        "recommendations": RECOMMENDATIONS,
    }


def _hostile(frame: pd.DataFrame) -> pd.DataFrame:
    """The same fleet with hostile server, business unit, region and cluster names."""
    names = {"srv-a": SCRIPT, "srv-b": IMG, "Payments": IMG, "us-east": LINK, "idle": SCRIPT}
    frame = frame.copy()
    for column in ("server_id", "host_server_id", "business_unit", "region", "cluster_label"):
        if column in frame:
            frame[column] = frame[column].replace(names)
    if "finding" in frame:
        frame["finding"] = frame["finding"].replace({"over-provisioned": LINK})
    return frame


@pytest.fixture
def hostile_fleet(fleet: dict[str, Any]) -> dict[str, Any]:
    hostile = {k: _hostile(v) if isinstance(v, pd.DataFrame) else v for k, v in fleet.items()}
    hostile["metrics"] = _metrics(("champion", SCRIPT, "seasonal_naive"))
    return hostile


def _decoded(page: str) -> str:
    """The page with the JSON escapes plotly writes (\\u003c for <) turned back into text."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page)


# --- tables ---------------------------------------------------------------------------------


def test_urgent_series_follows_the_risk_stage_urgency_rank() -> None:
    ranked = chart_data.urgent_series(_risk(), top_n=10)
    assert list(zip(ranked["server_id"], ranked["metric"], strict=True)) == URGENT_ORDER
    assert ranked["rank"].tolist() == [1, 2, 3, 4, 5]
    assert len(chart_data.urgent_series(_risk(), top_n=2)) == 2


def test_savings_breakdown_counts_each_server_once() -> None:
    breakdown = chart_data.savings_breakdown(_clusters()).set_index("server_id")
    # freed srv-b: its whole cost; srv-c hosts it: nothing; a and f keep their right-sizing
    assert breakdown["monthly_savings_usd"].to_dict() == {
        "srv-a": 100.0,
        "srv-b": 200.0,
        "srv-f": 60.0,
    }
    assert breakdown.loc["srv-b", "kind"] == "consolidation"
    assert breakdown.loc["srv-a", "category"] == "decommission (idle)"
    totals = chart_data.savings_totals(chart_data.savings_breakdown(_clusters()), None)
    assert totals == {"consolidation": 200.0, "right-sizing": 160.0}


# --- interactive ----------------------------------------------------------------------------


def test_urgent_servers_dropdown_shows_one_series_per_button(fleet: dict[str, Any]) -> None:
    fig = pi.urgent_servers_figure(
        fleet["history"], fleet["forecasts"], fleet["risk"], top_n=10, history_days=HISTORY_DAYS
    )
    buttons = fig.layout.updatemenus[0].buttons
    assert len(buttons) == len(URGENT_ORDER)
    assert len(fig.data) == pi.TRACES_PER_SERIES * len(URGENT_ORDER)
    for index, (button, (server, metric)) in enumerate(zip(buttons, URGENT_ORDER, strict=True)):
        mask = button.args[0]["visible"]
        expected = [False] * len(fig.data)
        start = index * pi.TRACES_PER_SERIES
        expected[start : start + pi.TRACES_PER_SERIES] = [True] * pi.TRACES_PER_SERIES
        assert mask == expected
        assert server in button.label and metric in button.label
        history, *_, threshold = fig.data[start : start + pi.TRACES_PER_SERIES]
        assert len(history.x) == HISTORY_DAYS
        assert pd.Timestamp(history.x[-1]) == LAST_DAY
        assert set(threshold.y) == {THRESHOLDS[metric]}
    # before any selection the most urgent series is the one shown
    assert [trace.visible for trace in fig.data] == buttons[0].args[0]["visible"]


def test_urgent_servers_respects_top_n(fleet: dict[str, Any]) -> None:
    fig = pi.urgent_servers_figure(fleet["history"], fleet["forecasts"], fleet["risk"], top_n=2)
    assert len(fig.layout.updatemenus[0].buttons) == 2
    assert len(fig.data) == 2 * pi.TRACES_PER_SERIES


def test_risk_heatmap_counts_servers_by_worst_level(fleet: dict[str, Any]) -> None:
    fig = pi.risk_heatmap_figure(fleet["risk"])
    heatmap = fig.data[0]
    assert list(heatmap.y) == ["Payments", "Trading"]
    assert list(heatmap.x) == ["eu-west", "us-east"]
    assert fig.layout.xaxis.type == fig.layout.yaxis.type == "category"
    # Payments: c low | a high, b medium; Trading: d high, e medium, f low | nobody
    np.testing.assert_allclose(np.array(heatmap.z, dtype=float), [[0, 1], [2 / 3, np.nan]])
    assert [list(row) for row in heatmap.text] == [["0/1", "2/2"], ["2/3", ""]]
    assert heatmap.customdata[1][0].endswith("high 1, medium 1, low 1")
    assert heatmap.customdata[0][1].endswith("high 1, medium 1, low 0")


def test_clusters_figure_has_one_trace_per_label(fleet: dict[str, Any]) -> None:
    fig = pi.clusters_figure(fleet["clusters"])
    assert [trace.name for trace in fig.data] == ["idle", "steady", "growing"]
    idle = fig.data[0]
    assert [row[0] for row in idle.customdata] == ["srv-a", "srv-b"]
    assert list(idle.x) == [0.0, 1.0]


def test_model_accuracy_bars_and_reference_lines(fleet: dict[str, Any]) -> None:
    fig = pi.model_accuracy_figure(fleet["metrics"])
    mase = [trace for trace in fig.data if trace.xaxis == "x"]
    coverage = [trace for trace in fig.data if trace.xaxis == "x2"]
    assert [t.name for t in mase] == ["champion", "prophet", "seasonal_naive (baseline)"]
    assert list(mase[0].x) == ["cpu_p95", "mem_p95", "All metrics"]
    np.testing.assert_allclose(mase[2].y, [2.5, 2.5, 1.5])
    np.testing.assert_allclose(coverage[1].y, [0.75, 0.75, 0.75])
    lines = sorted(shape.y0 for shape in fig.layout.shapes)
    assert lines == [0.8, 1.0]  # nominal coverage, MASE of the in-sample seasonal naive


def test_savings_figure_by_action_and_business_unit(fleet: dict[str, Any]) -> None:
    fig = pi.savings_figure(fleet["clusters"], fleet["recommendations"])
    assert "360 USD" in fig.layout.title.text
    by_action = {
        (t.name, y): x for t in fig.data if t.xaxis == "x" for y, x in zip(t.y, t.x, strict=True)
    }
    assert by_action == {
        ("consolidation", "consolidate (freed)"): 200.0,
        ("right-sizing", "decommission (idle)"): 100.0,
        ("right-sizing", "downsize (over-provisioned)"): 60.0,
    }
    by_unit = {
        (t.name, y): x for t in fig.data if t.xaxis == "x2" for y, x in zip(t.y, t.x, strict=True)
    }
    assert by_unit[("consolidation", "Payments")] == 200.0
    assert by_unit[("right-sizing", "Payments")] == 100.0
    assert by_unit[("right-sizing", "Trading")] == 60.0


def test_interactive_figures_keys_match_stems(fleet: dict[str, Any]) -> None:
    figures = pi.interactive_figures(**fleet, top_n=3)
    assert tuple(figures) == chart_data.FIGURE_STEMS


def test_figure_html_uses_the_local_plotly_js(fleet: dict[str, Any]) -> None:
    fig = pi.risk_heatmap_figure(fleet["risk"])
    page = pi.figure_html(fig, page_title="risk")
    sources = re.findall(r"<script[^>]*\bsrc=\"([^\"]*)\"", page)
    assert sources == ["plotly.min.js"]
    assert "cdn." not in page
    assert "https://" not in page and "http://" not in page
    assert "MathJax.js" not in page
    assert page.startswith("<!doctype html>") and "<title>risk</title>" in page
    assert page == pi.figure_html(fig, page_title="risk")  # same figure, same bytes
    with pytest.raises(ValueError, match="plotlyjs_src"):
        pi.figure_html(fig, plotlyjs_src="https://cdn.plot.ly/plotly.min.js")


def test_plotly_js_is_the_library() -> None:
    source = pi.plotly_js()
    assert len(source) > 1_000_000
    assert "newPlot" in source


# --- hostile names ----------------------------------------------------------------------------


def test_hostile_names_are_inert_in_every_page(hostile_fleet: dict[str, Any]) -> None:
    figures = pi.interactive_figures(**hostile_fleet, top_n=10)
    for stem, fig in figures.items():
        page = pi.figure_html(fig, page_title=SCRIPT)
        text = _decoded(page)
        for raw in (SCRIPT, IMG, LINK):
            assert raw not in page, stem
            assert raw not in text, stem
        assert "<img" not in text and "<a href" not in text, stem
        # any onerror= left is inside escaped text, never an attribute of a tag
        assert text.count("onerror=") == text.count("&lt;img src=x onerror="), stem
    # the names are still there, as text plotly shows literally
    urgent = _decoded(pi.figure_html(figures["urgent_servers"]))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in urgent
    heatmap = figures["risk_heatmap"].data[0]
    assert "&lt;img src=x onerror=alert(1)&gt;" in heatmap.y
    assert '&lt;a href="javascript:alert(1)"&gt;x&lt;/a&gt;' in heatmap.x


def test_dollar_signs_do_not_become_tex(fleet: dict[str, Any]) -> None:
    clusters = fleet["clusters"].assign(cluster_label="$x$")
    assert pi.clusters_figure(clusters).data[0].name == "&#36;x&#36;"
    png = charts.figure_png(charts.static_clusters(clusters.assign(cluster_label="$unbalanced")))
    assert png.startswith(PNG_SIGNATURE)


def test_one_colour_per_model_in_every_chart(fleet: dict[str, Any]) -> None:
    assert set(MODEL_NAMES) | {CHAMPION} <= set(style.MODEL_COLOURS)
    assert len(set(style.MODEL_COLOURS.values())) == len(style.MODEL_COLOURS)
    assert style.model_colour("my_new_model") == style.model_colour("my_new_model")
    interactive = pi.model_accuracy_figure(fleet["metrics"])
    for trace in interactive.data:  # MASE and coverage panels alike
        model = trace.legendgroup
        assert trace.marker.color == style.model_colour(model), model
    static = charts.static_model_accuracy(fleet["metrics"])
    for ax in static.axes:  # MASE and coverage panels alike
        handles, labels = ax.get_legend_handles_labels()
        for handle, label in zip(handles, labels, strict=True):
            model = BASELINE_MODEL if label.endswith("(baseline)") else label
            colour = handle.patches[0].get_facecolor()
            assert matplotlib.colors.to_hex(colour) == style.model_colour(model), model
    charts.figure_png(static, dpi=40)


def test_one_colour_per_kind_of_saving(fleet: dict[str, Any]) -> None:
    fig = pi.savings_figure(fleet["clusters"], fleet["recommendations"])
    assert {(t.name, t.marker.color) for t in fig.data} == set(style.KIND_COLOURS.items())


# --- static -----------------------------------------------------------------------------------


def test_static_figures_render_pngs_and_leave_no_pyplot_figure(fleet: dict[str, Any]) -> None:
    open_before = plt.get_fignums()
    figures = charts.static_figures(**fleet, top_n=2)
    assert tuple(figures) == chart_data.FIGURE_STEMS
    for fig in figures.values():
        assert charts.figure_png(fig, dpi=40).startswith(PNG_SIGNATURE)
    assert plt.get_fignums() == open_before


def test_static_figures_with_hostile_names(hostile_fleet: dict[str, Any]) -> None:
    for fig in charts.static_figures(**hostile_fleet, top_n=2).values():
        assert charts.figure_png(fig, dpi=40).startswith(PNG_SIGNATURE)


def test_forecast_panels_keeps_the_notebook_06_contract(fleet: dict[str, Any]) -> None:
    rows = chart_data.urgent_series(fleet["risk"], top_n=3)
    fig = charts.forecast_panels(fleet["history"], fleet["forecasts"], rows)
    assert len(fig.axes) == 3
    assert fig.axes[0].get_title() == "#1 srv-d mem_p95: high"
    assert plt.fignum_exists(fig.number)  # a pyplot figure: notebooks show it inline
    assert charts.figure_png(fig, dpi=40).startswith(PNG_SIGNATURE)
    assert not plt.fignum_exists(fig.number)


# --- empty inputs -----------------------------------------------------------------------------


@pytest.fixture
def quiet_fleet(fleet: dict[str, Any]) -> dict[str, Any]:
    """No server at risk, no saving, no backtest metrics."""
    return {
        **fleet,
        "risk": fleet["risk"].assign(risk_level="low"),
        "clusters": fleet["clusters"].assign(
            monthly_savings_usd=0.0, freed=False, counted_savings_usd=0.0, saving_kind=""
        ),
        "metrics": {},
        "recommendations": {"consolidation_savings_usd": 0.0, "right_sizing_savings_usd": 0.0},
    }


def test_empty_inputs_explain_themselves(quiet_fleet: dict[str, Any]) -> None:
    figures = pi.interactive_figures(**quiet_fleet)
    for stem in ("urgent_servers", "model_accuracy", "savings"):
        assert not figures[stem].data, stem
        assert figures[stem].layout.annotations, stem
    assert "none at risk" in figures["risk_heatmap"].layout.title.text
    for fig in figures.values():
        assert pi.figure_html(fig).startswith("<!doctype html>")
    for fig in charts.static_figures(**quiet_fleet).values():
        assert charts.figure_png(fig, dpi=40).startswith(PNG_SIGNATURE)


def test_no_rows_at_all_render(fleet: dict[str, Any]) -> None:
    empty = {
        "history": fleet["history"].iloc[:0],
        "forecasts": fleet["forecasts"].iloc[:0],
        "risk": fleet["risk"].iloc[:0],
        "clusters": fleet["clusters"].iloc[:0],
        "metrics": {"models": [], "models_by_metric": []},
        "recommendations": None,
    }
    for fig in pi.interactive_figures(**empty).values():
        assert fig.layout.annotations
    for fig in charts.static_figures(**empty).values():
        assert charts.figure_png(fig, dpi=40).startswith(PNG_SIGNATURE)


def test_an_urgent_series_over_its_threshold_now_says_so_in_its_title() -> None:
    row = {"rank": 1, "server_id": "srv-031", "metric": "cpu_p95", "risk_level": "high"}
    over = {**row, "over_now": True, "current_p95": 89.34, "threshold": 80.0, "days_to_breach": 0}
    assert "high risk: over now: P95 89.3% against 80%" in pi._series_title(over)
    later = {**row, "over_now": False, "days_to_breach": 35.0, "breach_probability": 0.6}
    assert "breach in 35 days" in pi._series_title(later)
