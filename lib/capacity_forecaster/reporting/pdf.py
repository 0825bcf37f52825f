"""Stage 08: reports/summary.pdf, the executive report, built with reportlab platypus.

A4 portrait: a cover with the run, its dates and the fleet, an executive summary in numbers,
the top at-risk series, forecast accuracy against the seasonal-naive baseline, clusters and
savings, the charts, and data quality. Long tables split across pages and repeat their header
row; every page after the cover carries a running header, and every page "Page n of N".

This module assembles the document and draws the page furniture; ``pdf_sections`` builds the
sections, ``pdf_tables`` the tables and ``pdf_styles`` holds the fonts, colours and paragraph
styles. Every data-derived string reaches a Paragraph escaped (``text.pdf_safe``), so a
server named ``<b>x</b>`` prints literally, in DejaVu Sans with CJK runs in a CJK font
(``pdf_styles.paragraph``). The PDF is dated by the run's ``generated_at`` and built with
reportlab's ``invariant`` mode (a document id from the content, not random): the same inputs
give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import logging
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import SimpleDocTemplate, Spacer

from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.reporting import pdf_sections as sections
from capacity_forecaster.reporting.pdf_styles import (
    BOLD_FONT,
    FONT,
    MARGIN,
    NAVY,
    PAGE_HEIGHT,
    PAGE_WIDTH,
    RULE,
    SLATE,
    draw_text,
    pdf_styles,
)

logger = logging.getLogger(__name__)

__all__ = ["build_pdf", "check_pdf", "pdf_date"]

_FURNITURE_SIZE = 7.5  # running header, footer and page numbers


# --------------------------------------------------------------------------- page furniture


class _NumberedCanvas(Canvas):
    """A canvas that holds pages back until save, then stamps "Page n of N" on each; the
    document's creation and modification dates are ``pdf_date`` (a PDF date string)."""

    def __init__(self, *args: Any, pdf_date: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # reportlab dates the file now (or 2000-01-01 when invariant); the run's time instead
        self.setDateFormatter(lambda *_: pdf_date)
        self._saved_pages: list[dict] = []

    def showPage(self) -> None:
        self._saved_pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._saved_pages)
        for state in self._saved_pages:
            self.__dict__.update(state)
            self.setFont(FONT, _FURNITURE_SIZE)
            self.setFillColor(SLATE)
            self.drawRightString(
                PAGE_WIDTH - MARGIN, 10 * mm, f"Page {self._pageNumber} of {total}"
            )
            super().showPage()
        super().save()


def _cover_band(canvas: Canvas) -> None:
    canvas.setFillColor(NAVY)
    canvas.rect(0, PAGE_HEIGHT - 32 * mm, PAGE_WIDTH, 32 * mm, stroke=0, fill=1)
    canvas.setFillColor(colors.white)
    canvas.setFont(BOLD_FONT, 11)
    canvas.drawString(MARGIN, PAGE_HEIGHT - 18 * mm, "CAPACITY PLANNING")


def _running_header(canvas: Canvas, title: str, classification: str) -> None:
    canvas.setFillColor(SLATE)
    top = PAGE_HEIGHT - 11 * mm
    draw_text(canvas, MARGIN, top, title, FONT, _FURNITURE_SIZE)
    draw_text(canvas, PAGE_WIDTH - MARGIN, top, classification, FONT, _FURNITURE_SIZE, "right")
    canvas.setStrokeColor(RULE)
    canvas.setLineWidth(0.5)
    canvas.line(MARGIN, PAGE_HEIGHT - 13 * mm, PAGE_WIDTH - MARGIN, PAGE_HEIGHT - 13 * mm)


def _page_decorator(
    run_text: str, title: str, classification: str, cover: bool
) -> Callable[[Canvas, SimpleDocTemplate], None]:
    """onPage callback: cover band or running header, footer rule and run identification."""

    def decorate(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        if cover:
            _cover_band(canvas)
        else:
            _running_header(canvas, title, classification)
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.5)
        canvas.line(MARGIN, 14 * mm, PAGE_WIDTH - MARGIN, 14 * mm)
        canvas.setFillColor(SLATE)
        # draw_text draws text as is (no markup), so the run id needs no escaping here.
        draw_text(canvas, MARGIN, 10 * mm, run_text, FONT, _FURNITURE_SIZE)
        canvas.restoreState()

    return decorate


def pdf_date(generated_at: str) -> str:
    """An ISO 8601 time as a PDF date in UTC, ``D:20260701060000+00'00'``; a time without a
    zone is taken as UTC."""
    try:
        moment = dt.datetime.fromisoformat(generated_at)
    except ValueError as error:
        raise StageCheckError(
            f"08_report: summary generated_at {generated_at!r} is not an ISO 8601 time"
        ) from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return f"D:{moment.astimezone(dt.UTC):%Y%m%d%H%M%S}+00'00'"


def _document(buffer: io.BytesIO, title: str) -> SimpleDocTemplate:
    """An A4 document with the report's margins, metadata and fonts, in reportlab's
    ``invariant`` mode (no random id, so the same inputs give the same bytes)."""
    return SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=title,
        author="capacity-forecaster",
        subject="Server capacity forecasts, risks and savings",
        creator="capacity-forecaster",
        invariant=True,
        initialFontName=FONT,  # else every page starts in Helvetica, which then ships too
    )


# --------------------------------------------------------------------------- public


def build_pdf(
    summary: Mapping[str, Any],
    at_risk: pd.DataFrame,
    accuracy: pd.DataFrame,
    clusters: pd.DataFrame,
    actions: pd.DataFrame,
    charts: Mapping[str, bytes] | None = None,
    *,
    recurring_peaks: pd.DataFrame | None = None,
    title: str = "Server capacity outlook",
    classification: str = "Internal use only",
    max_actions: int = 15,
) -> bytes:
    """The executive PDF report as bytes.

    ``summary`` is ``headline.headline(...)``; ``at_risk`` ``tables.at_risk_table(risk,
    top_n)``; ``accuracy`` ``tables.accuracy_table(metrics)``; ``clusters``
    ``tables.cluster_table(recommendations, clusters)``; ``actions``
    ``tables.recommendation_table(clusters)`` (the first ``max_actions`` rows are shown);
    ``charts`` maps a chart title to PNG bytes, in the order to show (empty or None: no chart
    section; an empty value is skipped with a warning, unreadable bytes raise ValueError);
    ``recurring_peaks`` ``tables.recurring_peaks_table(effects)`` (its first rows are shown).
    """
    styles = pdf_styles()  # registers the fonts the canvas furniture uses too
    run_id = str(sections.get(summary, "run_id"))
    generated_at = str(sections.get(summary, "generated_at"))
    created = pdf_date(generated_at)
    generated = generated_at[:10]
    run_text = f"Run {run_id[:60]} \u00b7 generated {generated} \u00b7 capacity-forecaster"
    buffer = io.BytesIO()
    document = _document(buffer, f"{title} \u2013 run {run_id}")
    story = [
        *sections.cover(summary, title, styles),
        *sections.executive_summary(summary, styles),
        *sections.at_risk_section(at_risk, styles),
        *sections.recurring_peaks_section(recurring_peaks, styles),
        *sections.accuracy_section(summary, accuracy, styles),
        *sections.savings_section(summary, clusters, actions, max_actions, styles),
        *sections.chart_section(charts or {}, styles),
        Spacer(1, 6 * mm),
        *sections.quality_section(summary, styles),
    ]
    document.build(
        story,
        onFirstPage=_page_decorator(run_text, title, classification, cover=True),
        onLaterPages=_page_decorator(run_text, title, classification, cover=False),
        canvasmaker=functools.partial(_NumberedCanvas, pdf_date=created),
    )
    pdf = buffer.getvalue()
    check_pdf(pdf)
    logger.info("08_report: summary.pdf %d bytes, %d at-risk rows", len(pdf), len(at_risk))
    return pdf


def check_pdf(pdf: bytes) -> None:
    """Post-condition of summary.pdf: a complete, non-trivial PDF file."""
    if len(pdf) < 1000 or not pdf.startswith(b"%PDF-") or b"%%EOF" not in pdf[-1024:]:
        raise StageCheckError(f"08_report: summary.pdf is not a complete PDF ({len(pdf)} bytes)")
