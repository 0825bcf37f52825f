"""The charts agree with each other: one colour per model in every page and PNG, and one risk
heatmap (coloured by share, labelled with counts) in the HTML page, the PNG and the PDF.

Read back from what people get: the JSON plotly writes into the page, the PNG's pixels, the
image inside the PDF.
"""

from __future__ import annotations

import base64
import inspect
import io
import json
import re
from pathlib import Path
from typing import Any

import matplotlib.colors
import numpy as np
import pandas as pd
import pypdf
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from PIL import Image

from capacity_forecaster.reporting import charts, style
from capacity_forecaster.reporting import charts_interactive as pi
from tests.reporting.report_fleet import FIRST_DAY, Fleet

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
HEATMAP_DPI = 100
COLOUR_TOLERANCE = 4  # of 255 per channel: antialiasing and the colour map's 256 steps


# --------------------------------------------------------------------------- reading back


def _page_data(page: str) -> list[dict[str, Any]]:
    """The traces plotly wrote into a page of ``figure_html``."""
    start = page.index("[", page.index('Plotly.newPlot(                        "figure",'))
    traces, _ = json.JSONDecoder().raw_decode(page, start)
    return traces


def _array(value: Any) -> np.ndarray:
    """A plotly JSON array: a list, or the typed array plotly writes for numpy data."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = [int(n) for n in str(value.get("shape", len(flat))).split(",")]
        return flat.reshape(shape)
    return np.array(value, dtype=float)


def _rgb(colour: str) -> np.ndarray:
    """``#RRGGBB``, ``rgb(r, g, b)`` or ``rgba(r, g, b, a)`` as 0-255 RGB."""
    numbers = re.findall(r"[\d.]+", colour) if colour.startswith("rgb") else None
    if numbers:
        return np.array([float(n) for n in numbers[:3]])
    return np.array(matplotlib.colors.to_rgb(colour)) * 255


def _scale_colour(colorscale: list[list[Any]], share: float) -> np.ndarray:
    """The colour plotly.js paints at ``share`` on ``colorscale``: linear between stops."""
    positions = [float(position) for position, _ in colorscale]
    stops = np.array([_rgb(colour) for _, colour in colorscale])
    return np.array([np.interp(share, positions, stops[:, channel]) for channel in range(3)])


def _pixels_near(image: Image.Image, colour: np.ndarray) -> int:
    rgb = np.asarray(image.convert("RGB"), dtype=float)
    return int((np.abs(rgb - colour).max(axis=2) <= COLOUR_TOLERANCE).sum())


# --------------------------------------------------------------------------- model colours


def _history(fleet: Fleet) -> pd.DataFrame:
    keys = fleet.risk[["server_id", "metric"]].drop_duplicates()
    dates = pd.date_range(end=FIRST_DAY - pd.Timedelta(days=1), periods=30, freq="D")
    return keys.merge(pd.DataFrame({"date": dates, "value": 50.0}), how="cross")


def _forecast_model(label: str) -> str | None:
    """The model of a "forecast (<model>)" legend entry."""
    found = re.fullmatch(r"forecast \((.+)\)", label)
    return found[1] if found else None


def _page_model_colours(fleet: Fleet) -> list[tuple[str, str, str]]:
    """(chart, model, colour) of every model-coloured mark in the HTML pages."""
    found = []
    accuracy = pi.figure_html(pi.model_accuracy_figure(fleet.metrics))
    for trace in _page_data(accuracy):  # the MASE and the coverage panel alike
        chart = f"model_accuracy.html {trace['xaxis']}"
        found.append((chart, trace["legendgroup"], trace["marker"]["color"]))
    urgent = _page_data(
        pi.figure_html(pi.urgent_servers_figure(_history(fleet), fleet.forecasts, fleet.risk))
    )
    # each series' traces share its index (meta): its interval is its forecast's model's
    model_of = {t["meta"]: _forecast_model(t["name"]) for t in urgent if _forecast_model(t["name"])}
    for trace in urgent:
        if trace["meta"] in model_of and _forecast_model(trace["name"]):
            found.append(("urgent_servers.html", model_of[trace["meta"]], trace["line"]["color"]))
        if trace.get("fill") == "tonexty":
            found.append(("urgent_servers.html", model_of[trace["meta"]], trace["fillcolor"]))
    return found


def _png_model_colours(fleet: Fleet) -> list[tuple[str, str, str]]:
    """(chart, model, colour) of every model-coloured mark in the static figures."""
    found = []
    accuracy = charts.static_model_accuracy(fleet.metrics)
    for ax in accuracy.axes:  # the MASE and the coverage panel alike
        for bars in ax.containers:
            assert isinstance(bars, BarContainer)
            model = bars.get_label().removesuffix(" (baseline)")
            for patch in bars.patches:
                colour = matplotlib.colors.to_hex(patch.get_facecolor())
                found.append(("model_accuracy.png", model, colour))
    urgent = charts.static_urgent_servers(_history(fleet), fleet.forecasts, fleet.risk, top_n=2)
    for ax in urgent.axes:  # one series a panel: its interval is its forecast's model's
        (model,) = filter(None, (_forecast_model(line.get_label()) for line in ax.get_lines()))
        for line in ax.get_lines():
            if _forecast_model(line.get_label()):
                found.append(
                    ("urgent_servers.png", model, matplotlib.colors.to_hex(line.get_color()))
                )
        for band in ax.collections:
            if isinstance(band, PolyCollection):
                colour = matplotlib.colors.to_hex(band.get_facecolor()[0])
                found.append(("urgent_servers.png", model, colour))
    for figure in (accuracy, urgent):
        charts.figure_png(figure, dpi=40)
    return found


def test_a_model_has_one_colour_in_every_page_and_png(fleet: Fleet) -> None:
    # gradient_boosting is the champion of every urgent series and has accuracy bars
    marks = _page_model_colours(fleet) + _png_model_colours(fleet)
    charts_by_model: dict[str, set[str]] = {}
    for chart, model, colour in marks:
        assert np.allclose(_rgb(colour), _rgb(style.model_colour(model)), atol=1), (chart, model)
        charts_by_model.setdefault(model, set()).add(chart.split()[0])
    assert charts_by_model["gradient_boosting"] == {
        "model_accuracy.html",
        "model_accuracy.png",
        "urgent_servers.html",
        "urgent_servers.png",
    }
    assert {"model_accuracy.html x", "model_accuracy.html x2"} <= {chart for chart, *_ in marks}


def test_model_colours_stay_clear_of_the_threshold_and_the_history() -> None:
    taken = {style.THRESHOLD_COLOUR, style.HISTORY_COLOUR, *style.RISK_SHARE_COLOURS}
    taken_rgb = [_rgb(matplotlib.colors.to_hex(colour)) for colour in taken]
    for model, colour in style.MODEL_COLOURS.items():
        distance = min(np.abs(_rgb(colour) - other).max() for other in taken_rgb)
        assert distance > 40, model


# --------------------------------------------------------------------------- risk heatmap


def _lopsided_risk() -> pd.DataFrame:
    """Big (eu): 1 of 17 servers at risk; Solo: eu 1 of 1, us 0 of 1."""
    servers = [(f"big-{i:02d}", "Big", "eu", "high" if i == 0 else "low") for i in range(17)]
    servers += [("solo-eu", "Solo", "eu", "high"), ("solo-us", "Solo", "us", "low")]
    return pd.DataFrame(
        [
            {
                "server_id": s,
                "metric": "cpu_p95",
                "risk_level": level,
                "business_unit": unit,
                "region": region,
            }
            for s, unit, region, level in servers
        ]
    )


SHARES = {"1/17": 1 / 17, "1/1": 1.0, "0/1": 0.0}


def _page_heatmap() -> dict[str, Any]:
    page = pi.figure_html(pi.risk_heatmap_figure(_lopsided_risk()))
    (heatmap,) = _page_data(page)
    return heatmap


def test_the_heatmap_page_colours_by_share_and_shows_the_count() -> None:
    heatmap = _page_heatmap()
    np.testing.assert_allclose(_array(heatmap["z"]), [[1 / 17, np.nan], [1.0, 0.0]])
    assert heatmap["text"] == [["1/17", ""], ["1/1", "0/1"]]
    assert (heatmap["zmin"], heatmap["zmax"]) == (0, 1)
    colours = [colour for _, colour in heatmap["colorscale"]]
    assert colours == list(style.RISK_SHARE_COLOURS)


def _cell_area(figure: Figure) -> float:
    """Pixels of one heatmap cell in a PNG at ``HEATMAP_DPI``."""
    ax = figure.axes[0]
    box = ax.get_position()
    width, height = figure.get_size_inches() * HEATMAP_DPI
    columns, rows = len(ax.get_xticks()), len(ax.get_yticks())
    return box.width * width / columns * box.height * height / rows


def _assert_cells_coloured_by_share(image: Image.Image, cell_area: float, where: str) -> None:
    """Each labelled cell of ``_lopsided_risk`` is mostly painted in the page's colour for its
    share, so the static and the interactive heatmap agree cell by cell."""
    colorscale = _page_heatmap()["colorscale"]
    for label, share in SHARES.items():
        painted = _pixels_near(image, _scale_colour(colorscale, share))
        assert painted > 0.5 * cell_area, f"{where}: cell {label} ({painted} of {cell_area:.0f})"


def test_the_heatmap_png_colours_by_share_as_the_page_does() -> None:
    figure = charts.static_risk_heatmap(_lopsided_risk())
    heatmap_ax = figure.axes[0]
    assert sorted(text.get_text() for text in heatmap_ax.texts) == sorted(SHARES)
    cell_area = _cell_area(figure)
    png = charts.figure_png(figure, dpi=HEATMAP_DPI)
    _assert_cells_coloured_by_share(Image.open(io.BytesIO(png)), cell_area, "PNG")


def test_the_heatmap_in_the_pdf_colours_by_share(fleet: Fleet) -> None:
    # notebook 08 puts the PNG of charts.static_risk_heatmap(risk) into the PDF
    figure = charts.static_risk_heatmap(_lopsided_risk())
    cell_area = _cell_area(figure)
    png = charts.figure_png(figure, dpi=HEATMAP_DPI)
    reader = pypdf.PdfReader(io.BytesIO(fleet.pdf(charts={"Servers at risk": png})))
    (image,) = [image for page in reader.pages for image in page.images]
    _assert_cells_coloured_by_share(image.image, cell_area, "PDF")


def test_every_caller_draws_the_risk_heatmap_one_way() -> None:
    # one specification, no variant a caller can pick: the notebooks and the figures agree
    for function in (charts.static_risk_heatmap, pi.risk_heatmap_figure):
        assert list(inspect.signature(function).parameters) == ["risk"], function.__name__
    calls = []
    for notebook in sorted(NOTEBOOKS.glob("*.ipynb")):
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        source = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
        calls += [
            (notebook.name, arguments)
            for arguments in re.findall(
                r"(?:static_risk_heatmap|risk_heatmap_figure)\(([^()]*)\)", source
            )
        ]
    assert calls, "no notebook draws the risk heatmap"
    for name, arguments in calls:
        assert re.fullmatch(r"\s*\w+\s*", arguments), (name, arguments)


@pytest.mark.parametrize(
    "risk", [_lopsided_risk().iloc[:0], _lopsided_risk().assign(risk_level="low")]
)
def test_the_heatmap_without_risk_says_so(risk: pd.DataFrame) -> None:
    page = pi.risk_heatmap_figure(risk)
    static = charts.static_risk_heatmap(risk)
    static_titles = [text.get_text() for text in static.texts]
    static_titles += [ax.get_title() for ax in static.axes]
    if risk.empty:
        assert page.layout.annotations and not page.data
    else:
        assert "none at risk" in page.layout.title.text
        assert any("none at risk" in title for title in static_titles)
    charts.figure_png(static, dpi=40)
