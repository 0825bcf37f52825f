"""The PDF report's page geometry, fonts, colours and paragraph styles (reportlab).

Colours come from ``reporting.style``, so the PDF's navy, rules and risk-level tints are the
workbook's and the charts'.

Fonts: server names and business units can be in any script, and reportlab's built-in
Helvetica prints anything outside Latin-1 as black boxes. Text is set in DejaVu Sans (Latin,
Greek, Cyrillic and more), embedded from the copy matplotlib ships inside its package, so
it is there wherever this package is installed. No font covering CJK comes with this
project's dependencies or can be expected on a clean machine, so runs of characters DejaVu
Sans lacks are set in one of reportlab's built-in CJK fonts (Adobe's standard CID fonts,
which PDF viewers supply themselves, so they are named, not embedded): Hangul in
HYGothic-Medium, everything else in HeiseiKakuGo-W5. ``paragraph`` and ``draw_text`` do
that split; use them for any text from the data.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import matplotlib
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph

from capacity_forecaster.reporting import style

__all__ = [
    "BOLD_FONT",
    "CJK_FONT",
    "FONT",
    "FRAME_WIDTH",
    "HANGUL_FONT",
    "LEVEL_FILLS",
    "LEVEL_INKS",
    "MARGIN",
    "MAX_CHART_HEIGHT",
    "NAVY",
    "PAGE_HEIGHT",
    "PAGE_WIDTH",
    "RULE",
    "SLATE",
    "TABLE_FONT",
    "ZEBRA",
    "PdfStyles",
    "draw_text",
    "font_runs",
    "paragraph",
    "pdf_styles",
    "register_fonts",
    "with_fallback_fonts",
]

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 18 * mm
FRAME_WIDTH = PAGE_WIDTH - 2 * MARGIN
MAX_CHART_HEIGHT = 115 * mm

FONT = "DejaVuSans"
BOLD_FONT = "DejaVuSans-Bold"
CJK_FONT = "HeiseiKakuGo-W5"  # Japanese kana and kanji (most Han characters in use)
HANGUL_FONT = "HYGothic-Medium"  # Korean: the Japanese font has no Hangul
_TTF_FILES = {
    FONT: "DejaVuSans.ttf",
    BOLD_FONT: "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique": "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique": "DejaVuSans-BoldOblique.ttf",
}
# A TableStyle command every table needs: a Table sets this font before each cell, even one
# holding a Paragraph, and it defaults to Helvetica, which would then ship in the PDF too.
TABLE_FONT = ("FONTNAME", (0, 0), (-1, -1), FONT)
_HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff]")
_MARKUP_TAG = re.compile(r"(<[^>]*>)")

NAVY = colors.HexColor(style.NAVY)
SLATE = colors.HexColor(style.SLATE)
RULE = colors.HexColor(style.RULE)
ZEBRA = colors.HexColor(style.ZEBRA)
LEVEL_FILLS = {
    level: colors.HexColor(fill) for level, (fill, _) in style.RISK_LEVEL_COLOURS.items()
}
LEVEL_INKS = {level: colors.HexColor(ink) for level, (_, ink) in style.RISK_LEVEL_COLOURS.items()}


@functools.cache
def register_fonts() -> None:
    """Register the report's fonts with reportlab (once per process): DejaVu Sans in four
    faces, as one family so ``<b>`` and ``<i>`` work, and the two CJK fallback fonts."""
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    for name, file in _TTF_FILES.items():
        pdfmetrics.registerFont(TTFont(name, str(folder / file)))
    pdfmetrics.registerFontFamily(
        FONT,
        normal=FONT,
        bold=BOLD_FONT,
        italic="DejaVuSans-Oblique",
        boldItalic="DejaVuSans-BoldOblique",
    )
    for name in (CJK_FONT, HANGUL_FONT):
        pdfmetrics.registerFont(UnicodeCIDFont(name))
        # no bold or italic faces: <b> around a CJK run keeps the same font
        pdfmetrics.registerFontFamily(name, normal=name, bold=name, italic=name, boldItalic=name)


def _fallback_font(character: str) -> str:
    return HANGUL_FONT if _HANGUL.match(character) else CJK_FONT


def font_runs(text: str, font: str = FONT) -> list[tuple[str, str]]:
    """``text`` cut into (font, run) pairs: ``font`` where it has the glyph, else the CJK font
    for the character's script."""
    register_fonts()
    covered = pdfmetrics.getFont(font).face.charToGlyph
    runs: list[tuple[str, str]] = []
    for character in text:
        name = font if ord(character) in covered else _fallback_font(character)
        if runs and runs[-1][0] == name:
            runs[-1] = (name, runs[-1][1] + character)
        else:
            runs.append((name, character))
    return runs


def with_fallback_fonts(markup: str) -> str:
    """Paragraph markup with every run of characters DejaVu Sans lacks wrapped in a
    ``<font>`` tag of its CJK font; tags (and the escaped text around them) are kept."""
    parts = []
    for part in _MARKUP_TAG.split(markup):
        if part.startswith("<"):
            parts.append(part)
            continue
        parts.extend(
            run if font == FONT else f'<font name="{font}">{run}</font>'
            for font, run in font_runs(part)
        )
    return "".join(parts)


def paragraph(markup: str, style: ParagraphStyle, bullet: str | None = None) -> Paragraph:
    """A Paragraph of ``markup`` (already escaped) whose CJK runs have a font that has them."""
    return Paragraph(with_fallback_fonts(markup), style, bulletText=bullet)


def draw_text(
    canvas: Canvas,
    x: float,
    y: float,
    text: str,
    font: str,
    size: float,
    anchor: Literal["left", "right"] = "left",
) -> None:
    """Draw plain ``text`` (no markup) from ``x`` (or ending at ``x``), CJK runs in their font."""
    runs = font_runs(text, font)
    if anchor == "right":
        x -= sum(pdfmetrics.stringWidth(run, name, size) for name, run in runs)
    for name, run in runs:
        canvas.setFont(name, size)
        canvas.drawString(x, y, run)
        x += pdfmetrics.stringWidth(run, name, size)


@dataclass(frozen=True)
class PdfStyles:
    """The paragraph styles of the report (built per call: reportlab styles are mutable)."""

    title: ParagraphStyle
    subtitle: ParagraphStyle
    h1: ParagraphStyle
    h2: ParagraphStyle
    body: ParagraphStyle
    bullet: ParagraphStyle
    note: ParagraphStyle
    cell: ParagraphStyle
    number: ParagraphStyle
    header: ParagraphStyle
    header_number: ParagraphStyle
    kpi_value: ParagraphStyle
    kpi_label: ParagraphStyle


def _heading(
    name: str, parent: ParagraphStyle, size: float, leading: float, **extra: float
) -> ParagraphStyle:
    return ParagraphStyle(
        name,
        parent=parent,
        fontName=BOLD_FONT,
        fontSize=size,
        leading=leading,
        textColor=NAVY,
        **extra,
    )


def pdf_styles() -> PdfStyles:
    """A fresh set of the report's paragraph styles (registers the fonts first)."""
    register_fonts()
    base = getSampleStyleSheet()["BodyText"]
    body = ParagraphStyle(
        "Body", parent=base, fontName=FONT, bulletFontName=FONT, fontSize=9.5, leading=13
    )
    # DejaVu Sans runs about 15% wider than Helvetica: 6.5 pt keeps the tables' words whole
    # in the columns sized for Helvetica at 7.5 pt.
    cell = ParagraphStyle("Cell", parent=body, fontSize=6.5, leading=8)
    header = ParagraphStyle("Header", parent=cell, fontName=BOLD_FONT, textColor=colors.white)
    return PdfStyles(
        title=_heading("Title", body, 26, 31),
        subtitle=ParagraphStyle(
            "Subtitle", parent=body, fontSize=13, leading=17, textColor=SLATE, spaceAfter=6
        ),
        h1=_heading("H1", body, 15, 19, spaceBefore=4, spaceAfter=6),
        h2=_heading("H2", body, 11, 14, spaceBefore=8, spaceAfter=4),
        body=body,
        bullet=ParagraphStyle("Bullet", parent=body, leftIndent=10, bulletIndent=0, spaceAfter=3),
        note=ParagraphStyle("Note", parent=body, fontSize=8, leading=10.5, textColor=SLATE),
        cell=cell,
        number=ParagraphStyle("Number", parent=cell, alignment=TA_RIGHT),
        header=header,
        header_number=ParagraphStyle("HeaderNumber", parent=header, alignment=TA_RIGHT),
        kpi_value=ParagraphStyle(
            "KpiValue",
            parent=body,
            fontName=BOLD_FONT,
            fontSize=20,
            leading=24,
            alignment=TA_CENTER,
            textColor=NAVY,
        ),
        kpi_label=ParagraphStyle(
            "KpiLabel", parent=body, fontSize=8, leading=10, alignment=TA_CENTER, textColor=SLATE
        ),
    )
