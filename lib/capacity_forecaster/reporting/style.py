"""The reports' colours, defined once: the PDF, the workbook, the PNG charts, the plotly pages
and index.html all take theirs from here, so a model, a risk level or a kind of saving has
the same colour everywhere.

Colours are ``#RRGGBB`` strings: matplotlib and plotly take them as they are, reportlab
through ``colors.HexColor``, openpyxl without the ``#`` (``excel_colour``).
"""

from __future__ import annotations

import zlib
from types import MappingProxyType

from capacity_forecaster.core.vocabulary import BASELINE_MODEL, CHAMPION, MODEL_NAMES

__all__ = [
    "HISTORY_COLOUR",
    "INTERVAL_OPACITY",
    "KIND_COLOURS",
    "MODEL_COLOURS",
    "NAVY",
    "RISK_LEVEL_COLOURS",
    "RISK_SHARE_COLOURS",
    "RULE",
    "SLATE",
    "THRESHOLD_COLOUR",
    "ZEBRA",
    "excel_colour",
    "model_colour",
]

# The house colours: headings and header rows, secondary text, rules, alternate rows.
NAVY = "#1F3864"
SLATE = "#44546A"
RULE = "#BFC7D5"
ZEBRA = "#F2F4F8"

# Risk level -> (fill, ink): Excel's own bad / neutral / good cell styles.
RISK_LEVEL_COLOURS = MappingProxyType(
    {
        "high": ("#FFC7CE", "#9C0006"),
        "medium": ("#FFEB9C", "#9C5700"),
        "low": ("#C6EFCE", "#006100"),
    }
)

# Where a monthly saving comes from (``chart_data.savings_breakdown``'s ``kind``).
KIND_COLOURS = MappingProxyType({"consolidation": "#2ca02c", "right-sizing": "#1f77b4"})

# The risk heatmap's colour scale, evenly spaced from no server at risk (0) to all (1):
# ColorBrewer's Reds. Both heatmaps (matplotlib and plotly) interpolate between these stops.
RISK_SHARE_COLOURS = (
    "#fff5f0",
    "#fee0d2",
    "#fcbba1",
    "#fc9272",
    "#fb6a4a",
    "#ef3b2c",
    "#cb181d",
    "#a50f15",
    "#67000d",
)

# One forecast series: its history, its interval's opacity, its threshold. The forecast and
# its interval take the colour of the model that made them (``model_colour``).
HISTORY_COLOUR = "#555555"
INTERVAL_OPACITY = 0.2
THRESHOLD_COLOUR = "red"

# Model -> colour: the champion navy, the seasonal-naive baseline grey, every other model of
# ``core.vocabulary.MODEL_NAMES`` a colour of its own. No red (the threshold's) and no other
# grey (the history's and the baseline's), so a forecast never looks like either.
_MODEL_PALETTE = ("#ff7f0e", "#2ca02c", "#17becf", "#9467bd", "#8c564b", "#e377c2")
MODEL_COLOURS = MappingProxyType(
    {
        CHAMPION: "#1f3b73",
        BASELINE_MODEL: "#9e9e9e",
        **dict(
            zip(
                (name for name in MODEL_NAMES if name != BASELINE_MODEL),
                _MODEL_PALETTE,
                strict=False,
            )
        ),
    }
)
_SPARE_COLOURS = ("#bcbd22", "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5", "#c49c94")


def model_colour(model: str) -> str:
    """The colour of ``model`` in every chart; a model outside ``MODEL_COLOURS`` gets a spare
    colour picked by its name, so it too is the same in every chart and every run."""
    known = MODEL_COLOURS.get(model)
    if known is not None:
        return known
    return _SPARE_COLOURS[zlib.crc32(model.encode("utf-8")) % len(_SPARE_COLOURS)]


def excel_colour(colour: str) -> str:
    """``#1F3864`` -> ``1F3864``, the form openpyxl takes."""
    return colour.lstrip("#").upper()
