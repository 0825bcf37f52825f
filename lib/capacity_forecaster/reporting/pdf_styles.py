"""The PDF report's page geometry, fonts, colours and paragraph styles (reportlab).

Colours come from ``reporting.style``, so the PDF's navy, rules and risk-level tints are the
workbook's and the charts'.
"""

from __future__ import annotations

from dataclasses import dataclass

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm

from capacity_forecaster.reporting import style

__all__ = [
    "BOLD_FONT",
    "FONT",
    "FRAME_WIDTH",
    "LEVEL_FILLS",
    "LEVEL_INKS",
    "MARGIN",
    "MAX_CHART_HEIGHT",
    "NAVY",
    "PAGE_HEIGHT",
    "PAGE_WIDTH",
    "RULE",
    "SLATE",
    "ZEBRA",
    "PdfStyles",
    "pdf_styles",
]

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 18 * mm
FRAME_WIDTH = PAGE_WIDTH - 2 * MARGIN
MAX_CHART_HEIGHT = 115 * mm

FONT = "Helvetica"
BOLD_FONT = "Helvetica-Bold"

NAVY = colors.HexColor(style.NAVY)
SLATE = colors.HexColor(style.SLATE)
RULE = colors.HexColor(style.RULE)
ZEBRA = colors.HexColor(style.ZEBRA)
LEVEL_FILLS = {
    level: colors.HexColor(fill) for level, (fill, _) in style.RISK_LEVEL_COLOURS.items()
}
LEVEL_INKS = {level: colors.HexColor(ink) for level, (_, ink) in style.RISK_LEVEL_COLOURS.items()}


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
    """A fresh set of the report's paragraph styles."""
    base = getSampleStyleSheet()["BodyText"]
    body = ParagraphStyle("Body", parent=base, fontName=FONT, fontSize=9.5, leading=13)
    cell = ParagraphStyle("Cell", parent=body, fontSize=7.5, leading=9)
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
