"""The PDF report's sections, each a list of reportlab flowables built from summary.json
(``headline.headline``) and the report tables (``tables``).

Every data-derived string reaches a Paragraph escaped (``text.pdf_safe`` or
``pdf_tables.cell_text``), so a server named ``<b>x</b>`` prints literally, and every
Paragraph is made by ``pdf_styles.paragraph``, so a server named ``日本-01`` prints in a font
that has its characters.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.platypus import (
    Flowable,
    Image,
    KeepTogether,
    PageBreak,
    Spacer,
    Table,
    TableStyle,
)

from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.vocabulary import METRICS
from capacity_forecaster.reporting.headline import outlook_line
from capacity_forecaster.reporting.pdf_styles import (
    FRAME_WIDTH,
    LEVEL_INKS,
    MAX_CHART_HEIGHT,
    NAVY,
    RULE,
    TABLE_FONT,
    ZEBRA,
    PdfStyles,
    paragraph,
)
from capacity_forecaster.reporting.pdf_tables import (
    Column,
    cell_text,
    records_frame,
    report_table,
)
from capacity_forecaster.reporting.tables import RISK_COLUMNS
from capacity_forecaster.reporting.text import (
    MISSING,
    and_join,
    breach_when,
    count_noun,
    format_number,
    is_missing,
    metric_label,
    model_label,
    pdf_safe,
    reclamation_line,
    trust_legend,
)

logger = logging.getLogger(__name__)

__all__ = [
    "accuracy_section",
    "at_risk_section",
    "chart_section",
    "cover",
    "executive_summary",
    "get",
    "quality_section",
    "savings_section",
]

_EARLIEST_COLUMNS = (
    "server_id",
    "metric",
    "breach_date",
    "days_to_breach",
    "breach_probability",
    "criticality",
    "business_unit",
)
_BY_METRIC_COLUMNS = (
    "metric",
    "champion_mase",
    "baseline_mase",
    "champion_coverage",
    "baseline_coverage",
    "beats_baseline_share",
)
_ROLLUP_COLUMNS = {
    "business_unit": "Business unit",
    "servers": "Servers",
    "servers_at_risk": "At risk",
    "share_at_risk": "Share at risk",
    "high": "High",
    "medium": "Medium",
}


# --------------------------------------------------------------------------- helpers


def get(mapping: Mapping[str, Any], *path: str) -> Any:
    """``mapping[path[0]][path[1]]...``; a missing key names its full path."""
    value: Any = mapping
    for depth, key in enumerate(path):
        if not isinstance(value, Mapping) or key not in value:
            raise StageCheckError(
                f"08_report: summary (reports/summary.json) lacks key {'.'.join(path[: depth + 1])}"
            )
        value = value[key]
    return value


def _money(value: Any) -> str:
    return cell_text(value, "money")


def _count(value: Any) -> str:
    return cell_text(value, "int")


def _servers(count: Any) -> str:
    """``1 server``, ``3 servers`` (escaped)."""
    return count_noun(count, "server", _count(count))


def _error_change(reduction: Any) -> tuple[str, str]:
    """(escaped size, "lower" or "higher") of the champion's MASE change against the baseline."""
    if not isinstance(reduction, int | float) or is_missing(reduction):
        return MISSING, "lower"
    return cell_text(abs(reduction), "probability"), "lower" if reduction >= 0 else "higher"


def _bullets(points: list[str], styles: PdfStyles) -> list[Flowable]:
    return [paragraph(point, styles.bullet, bullet="\u2022") for point in points]


# --------------------------------------------------------------------------- cover


def _kpi_tiles(summary: Mapping[str, Any], styles: PdfStyles) -> Table:
    levels = get(summary, "risk", "servers_by_level")
    change, direction = _error_change(get(summary, "accuracy").get("mase_reduction"))
    tiles = [
        (_count(levels.get("high")), "servers at high risk", LEVEL_INKS["high"]),
        (_count(levels.get("medium")), "servers at medium risk", LEVEL_INKS["medium"]),
        (_money(get(summary, "savings", "monthly_usd_total")), "savings found per month", NAVY),
        (change, f"{direction} forecast error than the seasonal-naive baseline (MASE)", NAVY),
    ]
    cells = []
    for value, label, ink in tiles:
        value_style = ParagraphStyle("KpiInk", parent=styles.kpi_value, textColor=ink)
        # value and label are escaped already (formatted figures, fixed wording)
        cells.append([paragraph(value, value_style), paragraph(label, styles.kpi_label)])
    table = Table([cells], colWidths=[FRAME_WIDTH / 4] * 4, rowHeights=[30 * mm])
    table.setStyle(
        TableStyle(
            [
                TABLE_FONT,
                ("BOX", (0, 0), (-1, -1), 0.5, RULE),
                ("INNERGRID", (0, 0), (-1, -1), 0.5, RULE),
                ("BACKGROUND", (0, 0), (-1, -1), ZEBRA),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    return table


def _fact_table(summary: Mapping[str, Any], styles: PdfStyles) -> Table:
    fleet = get(summary, "fleet")
    facts = [
        ("Run", pdf_safe(get(summary, "run_id"))),
        ("Generated", pdf_safe(get(summary, "generated_at"))),
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
    rows = [
        [paragraph(f"<b>{label}</b>", styles.body), paragraph(text, styles.body)]
        for label, text in facts
    ]
    table = Table(rows, colWidths=[32 * mm, FRAME_WIDTH - 32 * mm], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                TABLE_FONT,
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ]
        )
    )
    return table


def cover(summary: Mapping[str, Any], title: str, styles: PdfStyles) -> list[Flowable]:
    """The cover: title, the run's dates in one line, the facts table and the KPI tiles."""
    return [
        Spacer(1, 30 * mm),
        paragraph(pdf_safe(title), styles.title),
        paragraph("Forecasts, capacity risks and savings for the server fleet", styles.subtitle),
        paragraph(pdf_safe(outlook_line(summary)), styles.body),
        Spacer(1, 8 * mm),
        _fact_table(summary, styles),
        Spacer(1, 12 * mm),
        _kpi_tiles(summary, styles),
        Spacer(1, 10 * mm),
        paragraph(
            "Forecasts come with calibrated intervals and every model is compared with a "
            "seasonal-naive baseline on a rolling-origin backtest. Figures are estimates for "
            "planning, not commitments; the accompanying workbook (details.xlsx) holds every "
            "series, forecast and recommendation behind this summary.",
            styles.note,
        ),
        PageBreak(),
    ]


# --------------------------------------------------------------------------- executive summary


def _risk_point(risk: Mapping[str, Any], fleet: Mapping[str, Any]) -> str:
    levels = risk["servers_by_level"]
    servers = fleet.get("servers") or 0
    at_risk = risk.get("servers_at_risk") or 0
    share = f" ({format_number(at_risk / servers, '.0%')} of the fleet)" if servers else ""
    return (
        f"<b>{_count(at_risk)} of {_servers(servers)}</b>{share} {'is' if at_risk == 1 else 'are'} "
        "at risk of running out "
        f"of capacity within the forecast horizon: <b>{_count(levels.get('high'))} high</b> and "
        f"<b>{_count(levels.get('medium'))} medium</b>."
    )


def _breach_point(risk: Mapping[str, Any]) -> str:
    earliest = risk.get("earliest_breaches") or []
    if not earliest:
        return "No series is forecast to reach its threshold within the horizon."
    first = earliest[0]
    over_now = risk.get("series_over_now") or 0
    if first.get("over_now") and over_now:
        return (
            f"<b>{over_now} series over the threshold now</b>; the "
            f"furthest over is <b>{pdf_safe(first.get('server_id'))}</b> "
            f"({pdf_safe(metric_label(first.get('metric')))}, "
            f"{pdf_safe(first.get('business_unit'))}) at a recent P95 of "
            f"{format_number(first.get('current_p95'), '.1f')} % against "
            f"{format_number(first.get('threshold'), 'g')} %."
        )
    return (
        f"The earliest forecast breach is <b>{pdf_safe(first.get('server_id'))}</b> "
        f"({pdf_safe(metric_label(first.get('metric')))}, "
        f"{pdf_safe(first.get('business_unit'))}) on "
        f"<b>{pdf_safe(first.get('breach_date'))}</b>, in "
        f"{_count(first.get('days_to_breach'))} days, with a breach probability of "
        f"{cell_text(first.get('breach_probability'), 'probability')}."
    )


def _savings_point(savings: Mapping[str, Any]) -> str:
    return (
        f"Savings identified: <b>{_money(savings.get('monthly_usd_total'))} per month</b> "
        f"({_money(savings.get('annual_usd_total'))} a year): consolidation "
        f"{_money(savings.get('consolidation_usd'))} ({_servers(savings.get('servers_freed'))} "
        f"freed) and right-sizing {_money(savings.get('right_sizing_usd'))}."
    )


def _accuracy_point(accuracy: Mapping[str, Any]) -> str:
    champion = accuracy.get("champion", {})
    baseline = accuracy.get("baseline", {})
    change, direction = _error_change(accuracy.get("mase_reduction"))
    comparison = "" if change == MISSING else f", {change} {direction} error"
    return (
        f"Forecast accuracy: the champion models score MASE "
        f"{cell_text(champion.get('mase'), 'ratio')} against "
        f"{cell_text(baseline.get('mase'), 'ratio')} for the seasonal-naive baseline{comparison}; "
        "they beat the baseline on "
        f"{cell_text(champion.get('beats_baseline_share'), 'probability')} "
        f"of series, and {cell_text(champion.get('coverage'), 'share')} of actuals fell inside the "
        f"nominal {cell_text(accuracy.get('interval_level'), 'probability')} intervals."
    )


def _quality_point(quality: Mapping[str, Any]) -> str:
    warnings = quality.get("warnings") or []
    return (
        f"Data quality: {cell_text(quality.get('missing_share'), 'share')} of server-days "
        f"missing, {_count(quality.get('outliers'))} outliers replaced and "
        f"{_count(quality.get('imputed'))} days imputed; {_count(len(warnings))} loading "
        f"warning{'s' if len(warnings) != 1 else ''}."
    )


def _summary_points(summary: Mapping[str, Any]) -> list[str]:
    """The executive summary as sentences of escaped markup."""
    risk = get(summary, "risk")
    return [
        _risk_point(risk, get(summary, "fleet")),
        _breach_point(risk),
        _savings_point(get(summary, "savings")),
        _accuracy_point(get(summary, "accuracy")),
        _quality_point(get(summary, "data_quality")),
    ]


def _earliest_breaches(summary: Mapping[str, Any], styles: PdfStyles) -> list[Flowable]:
    earliest = get(summary, "risk", "earliest_breaches")
    if not earliest:
        return []
    frame = records_frame(earliest, _EARLIEST_COLUMNS).rename(columns=dict(RISK_COLUMNS))
    frame["Metric"] = frame["Metric"].map(metric_label)
    frame["Breach"] = [breach_when(row) for row in earliest]
    columns = [
        Column("Server", "Server", 30),
        Column("Metric", "Metric", 16),
        Column("Breach", "Breach", 44),
        Column("Days to breach", "Days", 12),
        Column("Breach probability", "P(breach)", 16),
        Column("Criticality", "Criticality", 20),
        Column("Business unit", "Business unit", 36),
    ]
    return [
        paragraph("Over the threshold now, then the earliest forecast breaches", styles.h2),
        report_table(frame, columns, styles),
    ]


def _risk_by_business_unit(summary: Mapping[str, Any], styles: PdfStyles) -> list[Flowable]:
    by_unit = get(summary, "risk", "by_business_unit")
    if not by_unit:
        return []
    frame = records_frame(by_unit, list(_ROLLUP_COLUMNS)).rename(columns=_ROLLUP_COLUMNS)
    columns = [
        Column("Business unit", "Business unit", 64),
        Column("Servers", "Servers", 20),
        Column("At risk", "At risk", 20, "int"),
        Column("Share at risk", "Share at risk", 24, "share"),
        Column("High", "High", 18, "int"),
        Column("Medium", "Medium", 18, "int"),
    ]
    return [
        paragraph("Risk by business unit", styles.h2),
        report_table(frame, columns, styles),
    ]


def executive_summary(summary: Mapping[str, Any], styles: PdfStyles) -> list[Flowable]:
    """Five sentences in numbers, the earliest breaches and the risk by business unit."""
    return [
        paragraph("Executive summary", styles.h1),
        *_bullets(_summary_points(summary), styles),
        *_earliest_breaches(summary, styles),
        *_risk_by_business_unit(summary, styles),
    ]


# --------------------------------------------------------------------------- at risk


def at_risk_section(at_risk: pd.DataFrame, styles: PdfStyles) -> list[Flowable]:
    """The most urgent series (``tables.at_risk_table``), tinted by risk level."""
    story: list[Flowable] = [
        PageBreak(),
        paragraph("Servers at risk", styles.h1),
        paragraph(
            "Series (server and metric) ordered by risk level, then days until the forecast "
            "reaches the threshold, then breach probability. Utilisation and thresholds are "
            "daily P95 in percent; the workbook lists every series with the reason for its level.",
            styles.note,
        ),
        Spacer(1, 3 * mm),
    ]
    if at_risk.empty:
        story.append(paragraph("No series is at high or medium risk in this run.", styles.body))
        return story
    columns = [
        Column("Rank", "#", 7),
        Column("Server", "Server", 21),
        Column("Metric", "Metric", 14),
        Column("Risk level", "Level", 13),
        Column("Trust", "Trust", 9),
        Column("Days to breach", "Days to breach", 12),
        Column("Breach date", "Breach date", 18),
        Column("Breach probability", "P(breach)", 15),
        Column("Forecast peak %", "Forecast peak %", 14),
        Column("Threshold %", "Threshold %", 15.5),
        Column("Business unit", "Business unit", 20),
        Column("Criticality", "Criticality", 15.5),
    ]
    story.append(report_table(at_risk, columns, styles, level_column="Risk level"))
    story.append(Spacer(1, 2 * mm))
    story.append(paragraph(pdf_safe(trust_legend()), styles.note))
    story += _sized_actions(at_risk, styles)
    return story


RECURRING_PEAKS_SHOWN = 15


def recurring_peaks_section(peaks: pd.DataFrame | None, styles: PdfStyles) -> list[Flowable]:
    """The series with the largest clear recurring uplift in a calendar window (month end,
    quarter end, the params' own), when any."""
    if peaks is None or peaks.empty:
        return []
    shown = peaks.head(RECURRING_PEAKS_SHOWN)
    more = len(peaks) - len(shown)
    columns = [
        Column("Server", "Server", 34),
        Column("Metric", "Metric", 16),
        Column("Recurring peaks", "Window: uplift over the month's other business days", 124),
    ]
    note = (
        "Series whose load rises in a business-calendar window month after month (median "
        "uplift, values as read); the forecasts and risk dates carry these windows."
    )
    if more:
        note += f" {more} more in the workbook's Recurring peaks sheet."
    return [
        Spacer(1, 3 * mm),
        paragraph("Recurring peaks in calendar windows", styles.h2),
        paragraph(note, styles.note),
        report_table(shown, columns, styles),
    ]


def _sized_actions(at_risk: pd.DataFrame, styles: PdfStyles) -> list[Flowable]:
    """What each listed series should move to (``tables.series_actions``), when the table
    carries the actions."""
    if "Action" not in at_risk or not (at_risk["Action"] != "").any():
        return []
    rows = at_risk[at_risk["Action"] != ""]
    columns = [
        Column("Rank", "#", 7),
        Column("Server", "Server", 30),
        Column("Metric", "Metric", 16),
        Column("Risk level", "Level", 14),
        Column("Action", "Size to move to: forecast peak there, monthly cost change", 107),
    ]
    return [
        Spacer(1, 3 * mm),
        paragraph("Sized actions", styles.h2),
        paragraph(
            "The size at which the forecast's upper bound stays under the threshold (at least "
            "one size up), the forecast's highest day at that size, and the change in the "
            "server's monthly cost (half follows cores, half memory; a grown disk at its price "
            "per GB).",
            styles.note,
        ),
        report_table(rows, columns, styles, level_column="Risk level"),
    ]


# --------------------------------------------------------------------------- accuracy


def _calibration_note(sources: Mapping[str, str], styles: PdfStyles) -> list[Flowable]:
    """One sentence: the models grouped by where their intervals were calibrated."""
    if not sources:
        return []
    groups: dict[str, list[str]] = {}
    for model, text in sources.items():
        groups.setdefault(text, []).append(model_label(model))
    parts = [
        f"{pdf_safe(text)} for {pdf_safe(and_join(sorted(models)))}"
        for text, models in sorted(groups.items(), key=lambda item: sorted(item[1]))
    ]
    return [paragraph(f"Intervals calibrated on {'; '.join(parts)}.", styles.note)]


def _accuracy_by_metric(summary: Mapping[str, Any], styles: PdfStyles) -> list[Flowable]:
    by_metric = get(summary, "accuracy", "by_metric")
    if not by_metric:
        return []
    frame = records_frame(by_metric, _BY_METRIC_COLUMNS)
    frame["metric"] = frame["metric"].map(metric_label)
    columns = [
        Column("metric", "Metric", 25),
        Column("champion_mase", "Champion MASE", 28, "ratio"),
        Column("baseline_mase", "Baseline MASE", 28, "ratio"),
        Column("champion_coverage", "Champion coverage", 30, "share"),
        Column("baseline_coverage", "Baseline coverage", 30, "share"),
        Column("beats_baseline_share", "Series beating baseline", 33, "share"),
    ]
    return [
        paragraph("Champion against baseline, per metric", styles.h2),
        report_table(frame, columns, styles),
    ]


def accuracy_section(
    summary: Mapping[str, Any], accuracy: pd.DataFrame, styles: PdfStyles
) -> list[Flowable]:
    """Backtest accuracy per model (``tables.accuracy_table``) and per metric."""
    interval = cell_text(get(summary, "accuracy", "interval_level"), "probability")
    columns = [
        Column("Model", "Model", 46),
        Column("Series", "Series", 15),
        Column("MASE", "MASE", 18),
        Column("MASE (median)", "MASE (median)", 20),
        Column("Beats baseline", "Beats baseline", 22),
        Column("Coverage", "Coverage", 20),
        Column("sMAPE %", "sMAPE %", 18),
    ]
    return [
        PageBreak(),
        paragraph("Forecast accuracy", styles.h1),
        paragraph(
            "Rolling-origin backtest: each model forecasts held-out weeks from several origins. "
            "MASE divides the error by that of a weekly seasonal-naive forecast in the history "
            "(below 1 beats it); the champion is chosen per metric. Coverage is the share of "
            f"actuals inside the {interval} intervals, which should be close to {interval}.",
            styles.note,
        ),
        *_calibration_note(get(summary, "accuracy", "interval_calibration") or {}, styles),
        Spacer(1, 3 * mm),
        report_table(accuracy, columns, styles),
        *_accuracy_by_metric(summary, styles),
    ]


# --------------------------------------------------------------------------- savings


def _cluster_summary(clusters: pd.DataFrame, styles: PdfStyles) -> list[Flowable]:
    if clusters.empty:
        return []
    columns = [
        Column("Cluster", "Cluster", 12),
        Column("Profile", "Profile", 35),
        Column("Servers", "Servers", 13),
        Column("CPU P95 %", "CPU P95 %", 15),
        Column("Memory P95 %", "Memory P95 %", 15),
        Column("Disk P95 %", "Disk P95 %", 15),
        Column("Idle", "Idle", 10),
        Column("Over-provisioned", "Over-prov.", 17),
        Column("Under-provisioned", "Under-prov.", 18),
        Column("Optimal", "Optimal", 13),
        Column("Freed", "Freed", 11),
    ]
    return [
        paragraph("Utilisation clusters", styles.h2),
        report_table(clusters, columns, styles),
    ]


def _largest_actions(actions: pd.DataFrame, max_actions: int, styles: PdfStyles) -> list[Flowable]:
    shown = actions.head(max_actions)
    if shown.empty:
        return []
    columns = [
        Column("Server", "Server", 25),
        Column("Finding", "Finding", 25),
        Column("Action", "Action", 22),
        Column("Cores", "Cores", 12),
        Column("Recommended cores", "To cores", 12),
        Column("Memory GB", "Memory GB", 14),
        Column("Recommended memory GB", "To GB", 12),
        Column("Monthly saving (USD)", "Saving / month", 18),
        Column("Saving type", "Saving type", 34),
    ]
    return [
        paragraph(f"Largest savings actions (top {len(shown)} of {len(actions)})", styles.h2),
        report_table(shown, columns, styles),
    ]


def savings_section(
    summary: Mapping[str, Any],
    clusters: pd.DataFrame,
    actions: pd.DataFrame,
    max_actions: int,
    styles: PdfStyles,
) -> list[Flowable]:
    """The savings in one sentence, the clusters and the largest ``max_actions`` actions."""
    savings = get(summary, "savings")
    return [
        PageBreak(),
        paragraph("Clusters and savings", styles.h1),
        paragraph(
            f"Savings found: <b>{_money(savings.get('monthly_usd_total'))} per month</b> "
            f"({_money(savings.get('annual_usd_total'))} a year): consolidation "
            f"{_money(savings.get('consolidation_usd'))} from "
            f"{_servers(savings.get('servers_freed'))} freed, right-sizing "
            f"{_money(savings.get('right_sizing_usd'))}.",
            styles.body,
        ),
        paragraph(f"How savings are counted: {pdf_safe(savings.get('note', ''))}", styles.note),
        Spacer(1, 2 * mm),
        *_cluster_summary(clusters, styles),
        *_largest_actions(actions, max_actions, styles),
    ]


# --------------------------------------------------------------------------- charts, quality


def chart_section(charts: Mapping[str, bytes], styles: PdfStyles) -> list[Flowable]:
    """Each chart (title -> PNG bytes) scaled to the frame; empty ones skipped with a warning."""
    if not charts:
        return []
    story: list[Flowable] = [PageBreak(), paragraph("Charts", styles.h1)]
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
        story.append(KeepTogether([paragraph(pdf_safe(title), styles.h2), image]))
    return story


def quality_section(summary: Mapping[str, Any], styles: PdfStyles) -> list[Flowable]:
    """Missing data, outliers and imputed days, and every loading warning."""
    quality = get(summary, "data_quality")
    monitored = (summary.get("fleet") or {}).get("metrics_monitored")
    by_metric = {
        metric: share
        for metric, share in (quality.get("missing_share_by_metric") or {}).items()
        if monitored is None or metric in monitored
    }
    missing = ", ".join(
        f"{pdf_safe(metric_label(metric))} {cell_text(share, 'share')}"
        for metric, share in by_metric.items()
    )
    unmonitored = [metric_label(m) for m in METRICS if monitored is not None and m not in monitored]
    not_monitored = (
        [
            paragraph(
                f"Not monitored: {pdf_safe(', '.join(unmonitored))}. No server reported "
                f"{'it' if len(unmonitored) == 1 else 'them'}, so no forecast, risk or "
                "right-sizing covers it.",
                styles.body,
            )
        ]
        if unmonitored
        else []
    )
    reclaim = [pdf_safe(reclamation_line(c)) for c in quality.get("reclamation") or []]
    reclamation = (
        [
            paragraph(
                f"Not forecast: {len(reclaim)} server{'s' if len(reclaim) != 1 else ''} set "
                "aside in loading. Powered-off servers and stale ones (no value within "
                "data.stale_after_days) are reclamation candidates; values in the wrong units "
                "need the export checked.",
                styles.body,
            ),
            *_bullets(reclaim, styles),
        ]
        if reclaim
        else []
    )
    return [
        paragraph("Data quality", styles.h2),
        *not_monitored,
        *reclamation,
        paragraph(
            f"{cell_text(quality.get('missing_share'), 'share')} of expected server-days had no "
            f"data{f' (values missing by metric: {missing})' if missing else ''}; "
            f"{_count(quality.get('outliers'))} outliers were replaced and "
            f"{_count(quality.get('imputed'))} missing days interpolated before modelling.",
            styles.body,
        ),
        *_bullets([pdf_safe(w) for w in quality.get("warnings") or []], styles),
    ]
