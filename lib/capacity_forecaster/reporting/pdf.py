"""Stage 08: reports/summary.pdf, the executive report, built with reportlab platypus.

A4 portrait: a cover with the run and the fleet, an executive summary in numbers, the top
at-risk series, forecast accuracy against the seasonal-naive baseline, clusters and savings,
the charts, and data quality. Long tables split across pages and repeat their header row;
every page after the cover carries a running header, and every page "Page n of N".

Every data-derived string reaches a Paragraph through ``report.pdf_safe`` (markup escaped), so
a server named ``<b>x</b>`` prints literally. The PDF is built with reportlab's ``invariant``
mode: the same inputs give the same bytes (no creation time or random document id).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    Image,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.reporting.report import COLUMN_KINDS, metric_label, model_label, pdf_safe

logger = logging.getLogger(__name__)

__all__ = ["build_pdf", "check_pdf"]

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 18 * mm
FRAME_WIDTH = PAGE_WIDTH - 2 * MARGIN
MAX_CHART_HEIGHT = 115 * mm
MISSING = "\u2013"
_LEFT_ALIGNED_KINDS = ("text", "date", "bool")

NAVY = colors.HexColor("#1F3864")
SLATE = colors.HexColor("#44546A")
RULE = colors.HexColor("#BFC7D5")
ZEBRA = colors.HexColor("#F2F4F8")
LEVEL_FILLS = {
    "high": colors.HexColor("#F4C7C3"),
    "medium": colors.HexColor("#FCE8B2"),
    "low": colors.HexColor("#D9EAD3"),
}
LEVEL_INKS = {
    "high": colors.HexColor("#9C0006"),
    "medium": colors.HexColor("#9C5700"),
    "low": colors.HexColor("#006100"),
}


@dataclass(frozen=True)
class _Styles:
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


def _styles() -> _Styles:
    base = getSampleStyleSheet()["BodyText"]
    body = ParagraphStyle("Body", parent=base, fontName="Helvetica", fontSize=9.5, leading=13)
    cell = ParagraphStyle("Cell", parent=body, fontSize=7.5, leading=9)
    header = ParagraphStyle(
        "Header", parent=cell, fontName="Helvetica-Bold", textColor=colors.white
    )
    return _Styles(
        title=ParagraphStyle(
            "Title", parent=body, fontName="Helvetica-Bold", fontSize=26, leading=31, textColor=NAVY
        ),
        subtitle=ParagraphStyle(
            "Subtitle", parent=body, fontSize=13, leading=17, textColor=SLATE, spaceAfter=6
        ),
        h1=ParagraphStyle(
            "H1",
            parent=body,
            fontName="Helvetica-Bold",
            fontSize=15,
            leading=19,
            textColor=NAVY,
            spaceBefore=4,
            spaceAfter=6,
        ),
        h2=ParagraphStyle(
            "H2",
            parent=body,
            fontName="Helvetica-Bold",
            fontSize=11,
            leading=14,
            textColor=NAVY,
            spaceBefore=8,
            spaceAfter=4,
        ),
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
            fontName="Helvetica-Bold",
            fontSize=20,
            leading=24,
            alignment=TA_CENTER,
            textColor=NAVY,
        ),
        kpi_label=ParagraphStyle(
            "KpiLabel", parent=body, fontSize=8, leading=10, alignment=TA_CENTER, textColor=SLATE
        ),
    )


# --------------------------------------------------------------------------- formatting


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or other container is a value, not missing
        return False


def _format(value: Any, kind: str) -> Any:
    """A number or date as the report shows it; text (and anything unexpected) unchanged."""
    if kind == "text":
        return value
    if _is_missing(value):
        return MISSING
    try:
        if kind == "int":
            return f"{round(float(value)):,}"
        if kind == "points":
            return f"{float(value):.1f}"
        if kind == "share":
            return f"{float(value):.1%}"
        if kind == "probability":
            return f"{float(value):.0%}"
        if kind == "money":
            return f"${float(value):,.0f}"
        if kind == "ratio":
            return f"{float(value):.2f}"
        if kind == "date":
            return pd.Timestamp(value).strftime("%Y-%m-%d")
        if kind == "bool":
            return "yes" if bool(value) else "no"
    except (TypeError, ValueError):
        pass  # a value of an unexpected type is shown as it is
    return value


def _text(value: Any, kind: str) -> str:
    """``value`` formatted as ``kind`` and escaped, ready to go inside Paragraph markup."""
    return pdf_safe(_format(value, kind), MISSING)


def _money(value: Any) -> str:
    return _text(value, "money")


def _count(value: Any) -> str:
    return _text(value, "int")


def _servers(count: Any) -> str:
    """``1 server``, ``3 servers`` (escaped)."""
    return f"{_count(count)} server{'' if count == 1 else 's'}"


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class _Column:
    """One table column: the frame column, its header label, its width in mm and its kind
    (``report.COLUMN_KINDS`` of the source column unless given)."""

    source: str
    label: str
    width_mm: float
    kind: str | None = None


def _table(
    frame: pd.DataFrame,
    columns: Sequence[_Column],
    styles: _Styles,
    *,
    level_column: str | None = None,
) -> Table:
    """A report table: navy header repeated on every page, zebra rows, wrapping cells.

    Every cell is a Paragraph of escaped text (``pdf_safe``), numbers right-aligned;
    ``level_column`` cells are tinted by risk level.
    """
    missing = [c.source for c in columns if c.source not in frame.columns]
    if missing:
        raise ValueError(f"report table lacks column(s) {missing}")
    kinds = [c.kind or COLUMN_KINDS.get(c.source, "text") for c in columns]
    numeric = [kind not in _LEFT_ALIGNED_KINDS for kind in kinds]
    header = [
        Paragraph(pdf_safe(c.label), styles.header_number if right else styles.header)
        for c, right in zip(columns, numeric, strict=True)
    ]
    body = []
    for row in frame[[c.source for c in columns]].itertuples(index=False, name=None):
        body.append(
            [
                Paragraph(_text(value, kind), styles.number if right else styles.cell)
                for value, kind, right in zip(row, kinds, numeric, strict=True)
            ]
        )
    table = Table(
        [header, *body],
        colWidths=[c.width_mm * mm for c in columns],
        repeatRows=1,
        hAlign="LEFT",
    )
    commands: list[tuple] = [
        ("BACKGROUND", (0, 0), (-1, 0), NAVY),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, ZEBRA]),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
    if level_column is not None:
        position = [c.source for c in columns].index(level_column)
        for row_index, level in enumerate(frame[level_column].astype(str), start=1):
            if level in LEVEL_FILLS:
                commands.append(
                    ("BACKGROUND", (position, row_index), (position, row_index), LEVEL_FILLS[level])
                )
    table.setStyle(TableStyle(commands))
    return table


def _records_frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame([dict(r) for r in rows], columns=list(columns))


# --------------------------------------------------------------------------- page furniture


class _NumberedCanvas(Canvas):
    """A canvas that holds pages back until save, then stamps "Page n of N" on each."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._saved_pages: list[dict] = []

    def showPage(self) -> None:
        self._saved_pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._saved_pages)
        for state in self._saved_pages:
            self.__dict__.update(state)
            self.setFont("Helvetica", 7.5)
            self.setFillColor(SLATE)
            self.drawRightString(
                PAGE_WIDTH - MARGIN, 10 * mm, f"Page {self._pageNumber} of {total}"
            )
            super().showPage()
        super().save()


def _page_decorator(run_text: str, title: str, classification: str, cover: bool):
    """onPage callback: cover band or running header, footer rule and run identification."""

    def decorate(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        if cover:
            canvas.setFillColor(NAVY)
            canvas.rect(0, PAGE_HEIGHT - 32 * mm, PAGE_WIDTH, 32 * mm, stroke=0, fill=1)
            canvas.setFillColor(colors.white)
            canvas.setFont("Helvetica-Bold", 11)
            canvas.drawString(MARGIN, PAGE_HEIGHT - 18 * mm, "CAPACITY PLANNING")
        else:
            canvas.setFont("Helvetica", 7.5)
            canvas.setFillColor(SLATE)
            canvas.drawString(MARGIN, PAGE_HEIGHT - 11 * mm, title)
            canvas.drawRightString(PAGE_WIDTH - MARGIN, PAGE_HEIGHT - 11 * mm, classification)
            canvas.setStrokeColor(RULE)
            canvas.setLineWidth(0.5)
            canvas.line(MARGIN, PAGE_HEIGHT - 13 * mm, PAGE_WIDTH - MARGIN, PAGE_HEIGHT - 13 * mm)
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.5)
        canvas.line(MARGIN, 14 * mm, PAGE_WIDTH - MARGIN, 14 * mm)
        canvas.setFont("Helvetica", 7.5)
        canvas.setFillColor(SLATE)
        # drawString draws text as is (no markup), so the run id needs no escaping here.
        canvas.drawString(MARGIN, 10 * mm, run_text)
        canvas.restoreState()

    return decorate


# --------------------------------------------------------------------------- sections


def _get(mapping: Mapping[str, Any], *path: str) -> Any:
    """``mapping[path[0]][path[1]]...``; a missing key names its full path."""
    value: Any = mapping
    for depth, key in enumerate(path):
        if not isinstance(value, Mapping) or key not in value:
            raise StageCheckError(
                f"08_report: summary (reports/summary.json) lacks key {'.'.join(path[: depth + 1])}"
            )
        value = value[key]
    return value


def _error_change(reduction: Any) -> tuple[str, str]:
    """(escaped size, "lower" or "higher") of the champion's MASE change against the baseline."""
    if not isinstance(reduction, int | float) or _is_missing(reduction):
        return MISSING, "lower"
    return _text(abs(reduction), "probability"), "lower" if reduction >= 0 else "higher"


def _kpi_tiles(summary: Mapping[str, Any], styles: _Styles) -> Table:
    levels = _get(summary, "risk", "servers_by_level")
    change, direction = _error_change(_get(summary, "accuracy").get("mase_reduction"))
    tiles = [
        (_count(levels.get("high")), "servers at high risk", LEVEL_INKS["high"]),
        (_count(levels.get("medium")), "servers at medium risk", LEVEL_INKS["medium"]),
        (_money(_get(summary, "savings", "monthly_usd_total")), "savings found per month", NAVY),
        (change, f"{direction} forecast error than the seasonal-naive baseline (MASE)", NAVY),
    ]
    cells = []
    for value, label, ink in tiles:
        value_style = ParagraphStyle("KpiInk", parent=styles.kpi_value, textColor=ink)
        # value and label are escaped already (formatted figures, fixed wording)
        cells.append([Paragraph(value, value_style), Paragraph(label, styles.kpi_label)])
    table = Table([cells], colWidths=[FRAME_WIDTH / 4] * 4, rowHeights=[30 * mm])
    table.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 0.5, RULE),
                ("INNERGRID", (0, 0), (-1, -1), 0.5, RULE),
                ("BACKGROUND", (0, 0), (-1, -1), ZEBRA),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    return table


def _cover(summary: Mapping[str, Any], title: str, styles: _Styles) -> list[Flowable]:
    fleet = _get(summary, "fleet")
    facts = [
        ("Run", pdf_safe(_get(summary, "run_id"))),
        ("Generated", pdf_safe(_get(summary, "generated_at"))),
        (
            "Fleet",
            f"{_count(fleet.get('servers'))} servers, {_count(fleet.get('series'))} series "
            f"(CPU, memory, disk), {_count(fleet.get('business_units'))} business units, "
            f"{_count(fleet.get('regions'))} regions",
        ),
        (
            "Data window",
            f"{pdf_safe(fleet.get('date_start'))} to {pdf_safe(fleet.get('date_end'))} "
            f"({_count(fleet.get('days'))} days of daily P95 utilisation)",
        ),
    ]
    fact_rows = [
        [Paragraph(f"<b>{label}</b>", styles.body), Paragraph(text, styles.body)]
        for label, text in facts
    ]
    fact_table = Table(fact_rows, colWidths=[32 * mm, FRAME_WIDTH - 32 * mm], hAlign="LEFT")
    fact_table.setStyle(
        TableStyle(
            [
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ]
        )
    )
    return [
        Spacer(1, 30 * mm),
        Paragraph(pdf_safe(title), styles.title),
        Paragraph("Forecasts, capacity risks and savings for the server fleet", styles.subtitle),
        Spacer(1, 8 * mm),
        fact_table,
        Spacer(1, 12 * mm),
        _kpi_tiles(summary, styles),
        Spacer(1, 10 * mm),
        Paragraph(
            "Forecasts come with calibrated intervals and every model is compared with a "
            "seasonal-naive baseline on a rolling-origin backtest. Figures are estimates for "
            "planning, not commitments; the accompanying workbook (details.xlsx) holds every "
            "series, forecast and recommendation behind this summary.",
            styles.note,
        ),
        PageBreak(),
    ]


def _summary_points(summary: Mapping[str, Any]) -> list[str]:
    """The executive summary as sentences of escaped markup."""
    risk = _get(summary, "risk")
    levels = risk["servers_by_level"]
    fleet = _get(summary, "fleet")
    savings = _get(summary, "savings")
    accuracy = _get(summary, "accuracy")
    quality = _get(summary, "data_quality")
    servers = fleet.get("servers") or 0
    at_risk = risk.get("servers_at_risk") or 0
    share = f" ({at_risk / servers:.0%} of the fleet)" if servers else ""
    points = [
        f"<b>{_count(at_risk)} of {_servers(servers)}</b>{share} {'is' if at_risk == 1 else 'are'} "
        "at risk of running out "
        f"of capacity within the forecast horizon: <b>{_count(levels.get('high'))} high</b> and "
        f"<b>{_count(levels.get('medium'))} medium</b>.",
    ]
    earliest = risk.get("earliest_breaches") or []
    if earliest:
        first = earliest[0]
        points.append(
            f"The earliest forecast breach is <b>{pdf_safe(first.get('server_id'))}</b> "
            f"({pdf_safe(metric_label(first.get('metric')))}, "
            f"{pdf_safe(first.get('business_unit'))}) on "
            f"<b>{pdf_safe(first.get('breach_date'))}</b>, in "
            f"{_count(first.get('days_to_breach'))} days, with a breach probability of "
            f"{_text(first.get('breach_probability'), 'probability')}."
        )
    else:
        points.append("No series is forecast to reach its threshold within the horizon.")
    points.append(
        f"Savings identified: <b>{_money(savings.get('monthly_usd_total'))} per month</b> "
        f"({_money(savings.get('annual_usd_total'))} a year): consolidation "
        f"{_money(savings.get('consolidation_usd'))} ({_servers(savings.get('servers_freed'))} "
        f"freed) and right-sizing {_money(savings.get('right_sizing_usd'))}."
    )
    champion = accuracy.get("champion", {})
    baseline = accuracy.get("baseline", {})
    change, direction = _error_change(accuracy.get("mase_reduction"))
    comparison = "" if change == MISSING else f", {change} {direction} error"
    points.append(
        f"Forecast accuracy: the champion models score MASE "
        f"{_text(champion.get('mase'), 'ratio')} against "
        f"{_text(baseline.get('mase'), 'ratio')} for the seasonal-naive baseline{comparison}; "
        f"they beat the baseline on {_text(champion.get('beats_baseline_share'), 'probability')} "
        f"of series, and {_text(champion.get('coverage'), 'share')} of actuals fell inside the "
        f"nominal {_text(accuracy.get('interval_level'), 'probability')} intervals."
    )
    warnings = quality.get("warnings") or []
    points.append(
        f"Data quality: {_text(quality.get('missing_share'), 'share')} of server-days missing, "
        f"{_count(quality.get('outliers'))} outliers replaced and "
        f"{_count(quality.get('imputed'))} days imputed; {_count(len(warnings))} loading "
        f"warning{'s' if len(warnings) != 1 else ''}."
    )
    return points


def _executive_summary(summary: Mapping[str, Any], styles: _Styles) -> list[Flowable]:
    story: list[Flowable] = [Paragraph("Executive summary", styles.h1)]
    story += [
        Paragraph(point, styles.bullet, bulletText="\u2022") for point in _summary_points(summary)
    ]
    earliest = _get(summary, "risk", "earliest_breaches")
    if earliest:
        frame = _records_frame(
            earliest,
            [
                "server_id",
                "metric",
                "breach_date",
                "days_to_breach",
                "breach_probability",
                "criticality",
                "business_unit",
            ],
        ).rename(
            columns={
                "server_id": "Server",
                "metric": "Metric",
                "breach_date": "Breach date",
                "days_to_breach": "Days to breach",
                "breach_probability": "Breach probability",
                "criticality": "Criticality",
                "business_unit": "Business unit",
            }
        )
        frame["Metric"] = frame["Metric"].map(metric_label)
        story += [
            Paragraph("Earliest forecast breaches", styles.h2),
            _table(
                frame,
                [
                    _Column("Server", "Server", 30),
                    _Column("Metric", "Metric", 18),
                    _Column("Breach date", "Breach date", 22),
                    _Column("Days to breach", "Days", 14),
                    _Column("Breach probability", "P(breach)", 18),
                    _Column("Criticality", "Criticality", 22),
                    _Column("Business unit", "Business unit", 50),
                ],
                styles,
            ),
        ]
    by_unit = _get(summary, "risk", "by_business_unit")
    if by_unit:
        frame = _records_frame(
            by_unit,
            ["business_unit", "servers", "servers_at_risk", "share_at_risk", "high", "medium"],
        ).rename(
            columns={
                "business_unit": "Business unit",
                "servers": "Servers",
                "servers_at_risk": "At risk",
                "share_at_risk": "Share at risk",
                "high": "High",
                "medium": "Medium",
            }
        )
        story += [
            Paragraph("Risk by business unit", styles.h2),
            _table(
                frame,
                [
                    _Column("Business unit", "Business unit", 64),
                    _Column("Servers", "Servers", 20),
                    _Column("At risk", "At risk", 20, "int"),
                    _Column("Share at risk", "Share at risk", 24, "share"),
                    _Column("High", "High", 18, "int"),
                    _Column("Medium", "Medium", 18, "int"),
                ],
                styles,
            ),
        ]
    return story


def _at_risk_section(at_risk: pd.DataFrame, styles: _Styles) -> list[Flowable]:
    story: list[Flowable] = [
        PageBreak(),
        Paragraph("Servers at risk", styles.h1),
        Paragraph(
            "Series (server and metric) ordered by risk level, then days until the forecast "
            "reaches the threshold, then breach probability. Utilisation and thresholds are "
            "daily P95 in percent; the workbook lists every series with the reason for its level.",
            styles.note,
        ),
        Spacer(1, 3 * mm),
    ]
    if at_risk.empty:
        story.append(Paragraph("No series is at high or medium risk in this run.", styles.body))
        return story
    story.append(
        _table(
            at_risk,
            [
                _Column("Rank", "#", 7),
                _Column("Server", "Server", 24),
                _Column("Metric", "Metric", 14),
                _Column("Risk level", "Level", 13),
                _Column("Days to breach", "Days to breach", 12),
                _Column("Breach date", "Breach date", 18),
                _Column("Breach probability", "P(breach)", 15),
                _Column("Forecast peak %", "Forecast peak %", 14),
                _Column("Threshold %", "Threshold %", 15.5),
                _Column("Business unit", "Business unit", 26),
                _Column("Criticality", "Criticality", 15.5),
            ],
            styles,
            level_column="Risk level",
        )
    )
    return story


def _accuracy_section(
    summary: Mapping[str, Any], accuracy: pd.DataFrame, styles: _Styles
) -> list[Flowable]:
    interval = _text(_get(summary, "accuracy", "interval_level"), "probability")
    story: list[Flowable] = [
        PageBreak(),
        Paragraph("Forecast accuracy", styles.h1),
        Paragraph(
            "Rolling-origin backtest: each model forecasts held-out weeks from several origins. "
            "MASE divides the error by that of a weekly seasonal-naive forecast in the history "
            "(below 1 beats it); the champion is chosen per metric. Coverage is the share of "
            f"actuals inside the {interval} intervals, which should be close to {interval}.",
            styles.note,
        ),
        *_calibration_note(_get(summary, "accuracy", "interval_calibration") or {}, styles),
        Spacer(1, 3 * mm),
        _table(
            accuracy,
            [
                _Column("Model", "Model", 46),
                _Column("Series", "Series", 15),
                _Column("MASE", "MASE", 18),
                _Column("MASE (median)", "MASE (median)", 20),
                _Column("Beats baseline", "Beats baseline", 22),
                _Column("Coverage", "Coverage", 20),
                _Column("sMAPE %", "sMAPE %", 18),
            ],
            styles,
        ),
    ]
    by_metric = _get(summary, "accuracy", "by_metric")
    if by_metric:
        frame = _records_frame(
            by_metric,
            [
                "metric",
                "champion_mase",
                "baseline_mase",
                "champion_coverage",
                "baseline_coverage",
                "beats_baseline_share",
            ],
        )
        frame["metric"] = frame["metric"].map(metric_label)
        story += [
            Paragraph("Champion against baseline, per metric", styles.h2),
            _table(
                frame,
                [
                    _Column("metric", "Metric", 25),
                    _Column("champion_mase", "Champion MASE", 28, "ratio"),
                    _Column("baseline_mase", "Baseline MASE", 28, "ratio"),
                    _Column("champion_coverage", "Champion coverage", 30, "share"),
                    _Column("baseline_coverage", "Baseline coverage", 30, "share"),
                    _Column("beats_baseline_share", "Series beating baseline", 33, "share"),
                ],
                styles,
            ),
        ]
    return story


def _calibration_note(sources: Mapping[str, str], styles: _Styles) -> list[Flowable]:
    """One sentence: the models grouped by where their intervals were calibrated."""
    if not sources:
        return []
    groups: dict[str, list[str]] = {}
    for model, text in sources.items():
        groups.setdefault(text, []).append(model_label(model))
    parts = [
        f"{pdf_safe(text)} for {pdf_safe(_and(sorted(models)))}"
        for text, models in sorted(groups.items(), key=lambda item: sorted(item[1]))
    ]
    return [Paragraph(f"Intervals calibrated on {'; '.join(parts)}.", styles.note)]


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _savings_section(
    summary: Mapping[str, Any],
    clusters: pd.DataFrame,
    actions: pd.DataFrame,
    max_actions: int,
    styles: _Styles,
) -> list[Flowable]:
    savings = _get(summary, "savings")
    story: list[Flowable] = [
        PageBreak(),
        Paragraph("Clusters and savings", styles.h1),
        Paragraph(
            f"Savings found: <b>{_money(savings.get('monthly_usd_total'))} per month</b> "
            f"({_money(savings.get('annual_usd_total'))} a year): consolidation "
            f"{_money(savings.get('consolidation_usd'))} from "
            f"{_servers(savings.get('servers_freed'))} freed, right-sizing "
            f"{_money(savings.get('right_sizing_usd'))}.",
            styles.body,
        ),
        Paragraph(f"How savings are counted: {pdf_safe(savings.get('note', ''))}", styles.note),
        Spacer(1, 2 * mm),
    ]
    if not clusters.empty:
        story += [
            Paragraph("Utilisation clusters", styles.h2),
            _table(
                clusters,
                [
                    _Column("Cluster", "Cluster", 12),
                    _Column("Profile", "Profile", 35),
                    _Column("Servers", "Servers", 13),
                    _Column("CPU P95 %", "CPU P95 %", 15),
                    _Column("Memory P95 %", "Memory P95 %", 15),
                    _Column("Disk P95 %", "Disk P95 %", 15),
                    _Column("Idle", "Idle", 10),
                    _Column("Over-provisioned", "Over-prov.", 17),
                    _Column("Under-provisioned", "Under-prov.", 18),
                    _Column("Optimal", "Optimal", 13),
                    _Column("Freed", "Freed", 11),
                ],
                styles,
            ),
        ]
    shown = actions.head(max_actions)
    if not shown.empty:
        story += [
            Paragraph(f"Largest savings actions (top {len(shown)} of {len(actions)})", styles.h2),
            _table(
                shown,
                [
                    _Column("Server", "Server", 25),
                    _Column("Finding", "Finding", 25),
                    _Column("Action", "Action", 22),
                    _Column("Cores", "Cores", 12),
                    _Column("Recommended cores", "To cores", 12),
                    _Column("Memory GB", "Memory GB", 14),
                    _Column("Recommended memory GB", "To GB", 12),
                    _Column("Monthly saving (USD)", "Saving / month", 18),
                    _Column("Saving type", "Saving type", 34),
                ],
                styles,
            ),
        ]
    return story


def _chart_flowables(charts: Mapping[str, bytes], styles: _Styles) -> list[Flowable]:
    if not charts:
        return []
    story: list[Flowable] = [PageBreak(), Paragraph("Charts", styles.h1)]
    for title, png in charts.items():
        if not png:
            logger.warning("08_report: chart %r is empty; left out of the PDF", title)
            continue
        try:
            width_px, height_px = ImageReader(io.BytesIO(png)).getSize()
        except Exception as error:  # reportlab raises assorted errors for unreadable images
            raise ValueError(f"chart {title!r} is not a readable image: {error}") from error
        scale = min(FRAME_WIDTH / width_px, MAX_CHART_HEIGHT / height_px)
        image = Image(io.BytesIO(png), width=width_px * scale, height=height_px * scale)
        story.append(KeepTogether([Paragraph(pdf_safe(title), styles.h2), image]))
    return story


def _quality_section(summary: Mapping[str, Any], styles: _Styles) -> list[Flowable]:
    quality = _get(summary, "data_quality")
    by_metric = quality.get("missing_share_by_metric") or {}
    missing = ", ".join(
        f"{pdf_safe(metric_label(metric))} {_text(share, 'share')}"
        for metric, share in by_metric.items()
    )
    story: list[Flowable] = [
        Paragraph("Data quality", styles.h2),
        Paragraph(
            f"{_text(quality.get('missing_share'), 'share')} of expected server-days had no "
            f"data{f' (values missing by metric: {missing})' if missing else ''}; "
            f"{_count(quality.get('outliers'))} outliers were replaced and "
            f"{_count(quality.get('imputed'))} missing days interpolated before modelling.",
            styles.body,
        ),
    ]
    for warning in quality.get("warnings") or []:
        story.append(Paragraph(pdf_safe(warning), styles.bullet, bulletText="\u2022"))
    return story


# --------------------------------------------------------------------------- public


def build_pdf(
    summary: Mapping[str, Any],
    at_risk: pd.DataFrame,
    accuracy: pd.DataFrame,
    clusters: pd.DataFrame,
    actions: pd.DataFrame,
    charts: Mapping[str, bytes] | None = None,
    *,
    title: str = "Server capacity outlook",
    classification: str = "Internal use only",
    max_actions: int = 15,
) -> bytes:
    """The executive PDF report as bytes.

    ``summary`` is ``report.headline(...)``; ``at_risk`` ``report.at_risk_table(risk, top_n)``;
    ``accuracy`` ``report.accuracy_table(metrics)``; ``clusters``
    ``report.cluster_table(recommendations, clusters)``; ``actions``
    ``report.recommendation_table(clusters)`` (the first ``max_actions`` rows are shown);
    ``charts`` maps a chart title to PNG bytes, in the order to show (empty or None: no chart
    section; an empty value is skipped with a warning, unreadable bytes raise ValueError).
    """
    styles = _styles()
    run_id = str(_get(summary, "run_id"))
    generated = str(_get(summary, "generated_at"))[:10]
    run_text = f"Run {run_id[:60]} \u00b7 generated {generated} \u00b7 capacity-forecaster"
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=f"{title} \u2013 run {run_id}",
        author="capacity-forecaster",
        subject="Server capacity forecasts, risks and savings",
        creator="capacity-forecaster",
        invariant=True,
    )
    story = [
        *_cover(summary, title, styles),
        *_executive_summary(summary, styles),
        *_at_risk_section(at_risk, styles),
        *_accuracy_section(summary, accuracy, styles),
        *_savings_section(summary, clusters, actions, max_actions, styles),
        *_chart_flowables(charts or {}, styles),
        Spacer(1, 6 * mm),
        *_quality_section(summary, styles),
    ]
    document.build(
        story,
        onFirstPage=_page_decorator(run_text, title, classification, cover=True),
        onLaterPages=_page_decorator(run_text, title, classification, cover=False),
        canvasmaker=_NumberedCanvas,
    )
    pdf = buffer.getvalue()
    check_pdf(pdf)
    logger.info("08_report: summary.pdf %d bytes, %d at-risk rows", len(pdf), len(at_risk))
    return pdf


def check_pdf(pdf: bytes) -> None:
    """Post-condition of summary.pdf: a complete, non-trivial PDF file."""
    if len(pdf) < 1000 or not pdf.startswith(b"%PDF-") or b"%%EOF" not in pdf[-1024:]:
        raise StageCheckError(f"08_report: summary.pdf is not a complete PDF ({len(pdf)} bytes)")
