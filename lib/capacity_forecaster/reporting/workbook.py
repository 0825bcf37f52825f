"""Stage 08: reports/details.xlsx, the workbook behind the PDF, built with openpyxl.

Sheets, in this order: Summary, Risk (all series), Forecasts, Model metrics, Clusters, Recommendations,
Data quality. Each has a bold header row on navy, frozen (``freeze_panes = "A2"``), an
autofilter over its table, column widths from its contents and number formats by column kind
(``text.COLUMN_KINDS``: utilisation points 0.0, shares 0.0%, probabilities 0%, money #,##0,
dates yyyy-mm-dd). The Risk sheet (every series, at-risk ones first) colours its risk level column with conditional formatting
(high red, medium amber, low green, the colours of ``style.RISK_LEVEL_COLOURS``).

Formula injection: every value goes through ``text.excel_safe`` (a text starting with
= + - @ tab or CR gets a leading apostrophe) and every text cell is also written with the
string type and the text number format ``@``, so openpyxl can never emit a formula (``<f>``)
for data, whatever the text.

Size. The workbook is written in openpyxl's write-only mode: rows stream into the file, so
memory stays flat for a large Forecasts sheet (1000 servers x 3 metrics x 180 days = 540k
rows, 21 MB, about 400 MB peak memory; 1-1.5 minutes with openpyxl's pure-Python XML
writer, which dominates the time; openpyxl switches to ``lxml`` when it is installed). Excel holds at most 1,048,576 rows per sheet: when the champion forecasts exceed
``max_forecast_rows``, the Forecasts sheet keeps whole series (in server, metric order) up to
the limit, its last row and the Summary sheet say how many rows were left out, and a warning
is logged; the full table stays in forecasts/forecasts.parquet.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.formatting.rule import CellIsRule
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.vocabulary import RISK_LEVELS
from capacity_forecaster.reporting.style import NAVY, RISK_LEVEL_COLOURS, excel_colour
from capacity_forecaster.reporting.text import (
    COLUMN_KINDS,
    excel_safe,
    metric_label,
    reclamation_line,
    trust_legend,
)

logger = logging.getLogger(__name__)

__all__ = ["EXCEL_MAX_ROWS", "SHEETS", "build_workbook", "check_workbook"]

# Every series, in urgency order: named for what it holds, not only the at-risk ones.
RISK_SHEET = "Risk (all series)"
SHEETS = (
    "Summary",
    RISK_SHEET,
    "Forecasts",
    "Model metrics",
    "Clusters",
    "Recommendations",
    "Recurring peaks",
    "Data quality",
)
EXCEL_MAX_ROWS = 1_048_576
RECURRING_PEAKS_NOTE = (
    "Uplift of each calendar window's days over the same months' other business days, on the "
    "values as read (median over months); listed when seen in at least 3 months, up in 3 of 4, "
    "and above the series' day-to-day noise. Forecasts and risk carry these windows."
)
NO_RECURRING_PEAKS = "No series shows a clear recurring uplift in a calendar window."
NUMBER_FORMATS = {
    "int": "#,##0",
    "points": "0.0",
    "share": "0.0%",
    "probability": "0%",
    "money": "#,##0",
    "ratio": "0.00",
    "date": "yyyy-mm-dd",
    "bool": "General",
    "text": "@",
}
LEVEL_STYLES = {  # level -> (fill, ink), as openpyxl takes them
    level: (excel_colour(fill), excel_colour(ink))
    for level, (fill, ink) in RISK_LEVEL_COLOURS.items()
}
HEADER_FILL = excel_colour(NAVY)
_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
MIN_WIDTH, MAX_WIDTH = 8, 60
WIDTH_SAMPLE_ROWS = 500


@dataclass(frozen=True)
class _SheetNote:
    """A line written under a sheet's table (outside its autofilter)."""

    text: str
    bold: bool = False


# --------------------------------------------------------------------------- cells


def _header_cell(sheet: WriteOnlyWorksheet, label: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=excel_safe(label))
    cell.data_type = "s"
    cell.font = Font(bold=True, color="FFFFFF")
    cell.fill = PatternFill("solid", fgColor=HEADER_FILL)
    cell.alignment = Alignment(wrap_text=True, vertical="center")
    return cell


def _set(cell: WriteOnlyCell, value: Any) -> WriteOnlyCell:
    """Put an ``excel_safe`` value in ``cell``; text is always string-typed, never a formula."""
    safe = excel_safe(value)
    cell.value = safe
    if isinstance(safe, str):
        # openpyxl types a str starting with "=" as a formula (data_type "f"); force text.
        cell.data_type = "s"
    return cell


def _styled_cell(sheet: WriteOnlyWorksheet, kind: str, bold: bool = False) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet)
    cell.number_format = NUMBER_FORMATS.get(kind, "General")
    if bold:
        cell.font = Font(bold=True)
    return cell


def _display_length(value: Any, kind: str) -> int:
    """About how many characters a value takes once formatted (for column widths)."""
    if value is None or (isinstance(value, float) and value != value):
        return 0
    if kind == "date":
        return 10
    if kind in ("int", "money") and isinstance(value, int | float):
        return len(f"{value:,.0f}")
    if kind in ("points", "ratio", "share", "probability") and isinstance(value, int | float):
        return len(f"{value:,.2f}") + 1
    return max((len(line) for line in str(value).splitlines()), default=0)


def _safe_values(series: pd.Series) -> list[Any]:
    """``excel_safe`` of every value of a column, computed once per distinct value."""
    if pd.api.types.is_float_dtype(series.dtype):
        numbers = series.to_numpy(dtype=float, na_value=np.nan)
        values = numbers.astype(object)
        values[~np.isfinite(numbers)] = None
        return values.tolist()
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    safe = [excel_safe(value) for value in uniques]
    return [safe[code] if code >= 0 else None for code in codes.tolist()]


def _column_widths(
    columns: Sequence[str], values: Sequence[list[Any]], kinds: Sequence[str]
) -> list[float]:
    widths = []
    for column, column_values, kind in zip(columns, values, kinds, strict=True):
        longest_value = max(
            (_display_length(v, kind) for v in column_values[:WIDTH_SAMPLE_ROWS]), default=0
        )
        # headers wrap, so a long header needs only about half its length
        header = max(len(str(column)) // 2 + 2, min(len(str(column)), 12))
        widths.append(float(min(MAX_WIDTH, max(MIN_WIDTH, longest_value + 2, header + 2))))
    return widths


# --------------------------------------------------------------------------- tables


def _write_table(
    sheet: WriteOnlyWorksheet,
    frame: pd.DataFrame,
    notes: Sequence[_SheetNote] = (),
) -> int:
    """The frame as a formatted table from A1, then ``notes``; returns the data row count."""
    columns = [str(column) for column in frame.columns]
    kinds = [COLUMN_KINDS.get(column, "text") for column in columns]
    values = [_safe_values(frame[column]) for column in frame.columns]
    sheet.freeze_panes = "A2"
    for index, width in enumerate(_column_widths(columns, values, kinds), start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.append([_header_cell(sheet, column) for column in columns])
    # One styled cell per column, refilled for every row: write-only rows are serialised as
    # they are appended, and this avoids creating millions of cell objects.
    cells = [_styled_cell(sheet, kind) for kind in kinds]
    rows = 0
    for row in zip(*values, strict=True):
        for cell, value in zip(cells, row, strict=True):
            cell.value = value
            if isinstance(value, str):
                # openpyxl types a str starting with "=" as a formula; force text (values are
                # excel_safe already, so this is a second line of defence).
                cell.data_type = "s"
        sheet.append(cells)
        rows += 1
    last_column = get_column_letter(max(len(frame.columns), 1))
    sheet.auto_filter.ref = f"A1:{last_column}{rows + 1}"
    if notes:
        sheet.append([])
        for note in notes:
            sheet.append([_set(_styled_cell(sheet, "text", bold=note.bold), note.text)])
    return rows


def _colour_levels(sheet: WriteOnlyWorksheet, frame: pd.DataFrame, column: str) -> None:
    """Conditional formatting on the risk level column: high red, medium amber, low green."""
    if column not in frame.columns:
        raise ValueError(f"{RISK_SHEET} table lacks column {column!r}")
    letter = get_column_letter(list(frame.columns).index(column) + 1)
    cells = f"{letter}2:{letter}{max(len(frame), 1) + 1}"
    for level, (fill, ink) in LEVEL_STYLES.items():
        sheet.conditional_formatting.add(
            cells,
            CellIsRule(
                operator="equal",
                formula=[f'"{level}"'],
                fill=PatternFill("solid", fgColor=fill, bgColor=fill),
                font=Font(color=ink, bold=level == "high"),
            ),
        )


def _forecast_rows(
    forecasts: pd.DataFrame, max_rows: int
) -> tuple[pd.DataFrame, list[_SheetNote], str | None]:
    """The forecast table cut to whole series within ``max_rows``, and notes when cut."""
    if len(forecasts) <= max_rows:
        return forecasts, [], None
    sizes = forecasts.groupby(["Server", "Metric"], sort=False).size()
    ends = sizes.cumsum()
    whole = int((ends <= max_rows).sum())
    kept = int(ends.iloc[whole - 1]) if whole else max_rows
    text = (
        f"Truncated to Excel's row limit: {kept:,} of {len(forecasts):,} forecast rows "
        f"({whole:,} of {len(sizes):,} series); the full table is forecasts/forecasts.parquet."
    )
    logger.warning("08_report: details.xlsx Forecasts sheet %s", text)
    return forecasts.head(kept), [_SheetNote(text, bold=True)], text


# --------------------------------------------------------------------------- summary sheet


def _iso_date(value: Any) -> Any:
    try:
        return dt.date.fromisoformat(str(value)) if value else None
    except ValueError:
        return value


_Row = tuple[str, str, Any, str]  # (section, item, value, kind) of the Summary sheet


def _fleet_rows(summary: Mapping[str, Any], fleet: Mapping[str, Any]) -> list[_Row]:
    return [
        ("Run", "Run id", summary.get("run_id"), "text"),
        ("Run", "Generated at", summary.get("generated_at"), "text"),
        ("Fleet", "Servers", fleet.get("servers"), "int"),
        ("Fleet", "Series (server x metric)", fleet.get("series"), "int"),
        ("Fleet", "History from", _iso_date(fleet.get("date_start")), "date"),
        ("Fleet", "History to", _iso_date(fleet.get("date_end")), "date"),
        ("Fleet", "Days of history", fleet.get("days"), "int"),
        ("Fleet", "Business units", fleet.get("business_units"), "int"),
        ("Fleet", "Regions", fleet.get("regions"), "int"),
    ]


def _risk_rows(risk: Mapping[str, Any]) -> list[_Row]:
    servers_by_level = risk["servers_by_level"]
    series_by_level = risk["series_by_level"]
    rows: list[_Row] = [
        *[
            ("Risk", f"Servers at {level} risk", servers_by_level.get(level), "int")
            for level in RISK_LEVELS
        ],
        ("Risk", "Servers at risk (high or medium)", risk.get("servers_at_risk"), "int"),
        ("Risk", "Series over the threshold now", risk.get("series_over_now"), "int"),
        *[
            ("Risk", f"Series at {level} risk", series_by_level.get(level), "int")
            for level in RISK_LEVELS
        ],
    ]
    earliest = risk.get("earliest_breaches") or []
    if earliest:
        first = earliest[0]
        rows += [
            ("Risk", "Earliest breach: server", first.get("server_id"), "text"),
            ("Risk", "Earliest breach: metric", metric_label(first.get("metric")), "text"),
            ("Risk", "Earliest breach: date", _iso_date(first.get("breach_date")), "date"),
            (
                "Risk",
                "Earliest breach: over the threshold now",
                bool(first.get("over_now")),
                "bool",
            ),
        ]
    return rows


def _accuracy_rows(accuracy: Mapping[str, Any]) -> list[_Row]:
    champion = accuracy.get("champion", {})
    baseline = accuracy.get("baseline", {})
    return [
        ("Accuracy", "Champion MASE", champion.get("mase"), "ratio"),
        ("Accuracy", "Champion MASE (median)", champion.get("mase_median"), "ratio"),
        ("Accuracy", "Baseline MASE (seasonal naive)", baseline.get("mase"), "ratio"),
        ("Accuracy", "MASE reduction against baseline", accuracy.get("mase_reduction"), "share"),
        (
            "Accuracy",
            "Series where champion beats baseline",
            champion.get("beats_baseline_share"),
            "share",
        ),
        ("Accuracy", "Interval level (nominal)", accuracy.get("interval_level"), "probability"),
        ("Accuracy", "Champion interval coverage", champion.get("coverage"), "share"),
        ("Accuracy", "Baseline interval coverage", baseline.get("coverage"), "share"),
    ]


def _savings_rows(savings: Mapping[str, Any]) -> list[_Row]:
    return [
        ("Savings", "Total per month (USD)", savings.get("monthly_usd_total"), "money"),
        ("Savings", "Consolidation per month (USD)", savings.get("consolidation_usd"), "money"),
        ("Savings", "Right-sizing per month (USD)", savings.get("right_sizing_usd"), "money"),
        ("Savings", "Servers freed by consolidation", savings.get("servers_freed"), "int"),
        ("Savings", "Total per year (USD)", savings.get("annual_usd_total"), "money"),
        ("Savings", "How savings are counted", savings.get("note"), "text"),
    ]


def _quality_rows(quality: Mapping[str, Any]) -> list[_Row]:
    return [
        ("Data quality", "Server-days missing", quality.get("missing_share"), "share"),
        ("Data quality", "Outliers replaced", quality.get("outliers"), "int"),
        ("Data quality", "Days imputed", quality.get("imputed"), "int"),
        ("Data quality", "Loading warnings", len(quality.get("warnings") or []), "int"),
    ]


def _summary_rows(summary: Mapping[str, Any], forecast_note: str | None) -> list[_Row]:
    """(section, item, value, kind) rows of the Summary sheet, from headline.headline."""
    try:
        rows = [
            *_fleet_rows(summary, summary["fleet"]),
            *_risk_rows(summary["risk"]),
            *_accuracy_rows(summary["accuracy"]),
            *_savings_rows(summary["savings"]),
            *_quality_rows(summary["data_quality"]),
        ]
    except (KeyError, TypeError) as error:
        raise StageCheckError(f"08_report: summary lacks key {error}") from error
    if forecast_note:
        rows.append(("Notes", "Forecasts sheet", forecast_note, "text"))
    return rows


def _write_summary(
    sheet: WriteOnlyWorksheet, summary: Mapping[str, Any], forecast_note: str | None
) -> None:
    rows = _summary_rows(summary, forecast_note)
    sheet.freeze_panes = "A2"
    longest = max((_display_length(value, kind) for *_, value, kind in rows), default=0)
    for letter, width in zip("ABC", (14, 36, min(MAX_WIDTH, max(16, longest + 2))), strict=True):
        sheet.column_dimensions[letter].width = width
    sheet.append([_header_cell(sheet, label) for label in ("Section", "Item", "Value")])
    for section, item, value, kind in rows:
        sheet.append(
            [
                _set(_styled_cell(sheet, "text"), section),
                _set(_styled_cell(sheet, "text"), item),
                _set(_styled_cell(sheet, kind), value),
            ]
        )
    sheet.auto_filter.ref = f"A1:C{len(rows) + 1}"


# --------------------------------------------------------------------------- public


def build_workbook(
    summary: Mapping[str, Any],
    at_risk: pd.DataFrame,
    forecasts: pd.DataFrame,
    model_metrics: pd.DataFrame,
    clusters: pd.DataFrame,
    recommendations: pd.DataFrame,
    data_quality: pd.DataFrame,
    *,
    recurring_peaks: pd.DataFrame | None = None,
    max_forecast_rows: int = EXCEL_MAX_ROWS - 2,
) -> bytes:
    """details.xlsx as bytes (sheets and limits in the module docstring).

    ``summary`` is ``headline.headline(...)``; ``at_risk`` ``tables.at_risk_table(risk,
    include_low=True)`` (every series); ``forecasts`` ``tables.forecast_table(forecasts)``;
    ``model_metrics`` ``tables.accuracy_table(metrics, by_metric=True)``; ``clusters``
    ``tables.server_cluster_table(clusters)``; ``recommendations``
    ``tables.recommendation_table(clusters)``; ``data_quality``
    ``tables.quality_table(quality, cleaning)``; ``recurring_peaks``
    ``tables.recurring_peaks_table(effects)`` (None: the sheet says none was measured).
    ``max_forecast_rows`` caps the Forecasts
    sheet's data rows (default: Excel's limit less the header and a note row).
    """
    if not 1 <= max_forecast_rows <= EXCEL_MAX_ROWS - 2:
        raise ValueError(
            f"max_forecast_rows must be in [1, {EXCEL_MAX_ROWS - 2}], got {max_forecast_rows}"
        )
    if "Server" not in forecasts.columns or "Metric" not in forecasts.columns:
        raise ValueError("forecasts must be tables.forecast_table(...) (columns Server, Metric)")
    forecast_frame, forecast_notes, forecast_note = _forecast_rows(forecasts, max_forecast_rows)

    workbook = Workbook(write_only=True)
    workbook.properties.creator = "capacity-forecaster"
    workbook.properties.title = f"Capacity planning details, run {summary.get('run_id', '')}"
    sheets = {name: workbook.create_sheet(title=name) for name in SHEETS}

    _write_summary(sheets["Summary"], summary, forecast_note)
    _colour_levels(sheets[RISK_SHEET], at_risk, "Risk level")
    _write_table(sheets[RISK_SHEET], at_risk, [_SheetNote(trust_legend())])
    _write_table(sheets["Forecasts"], forecast_frame, forecast_notes)
    _write_table(sheets["Model metrics"], model_metrics)
    _write_table(sheets["Clusters"], clusters)
    _write_table(sheets["Recommendations"], recommendations)
    peaks = (
        recurring_peaks
        if recurring_peaks is not None
        else pd.DataFrame(columns=["Server", "Metric", "Recurring peaks"])
    )
    _write_table(
        sheets["Recurring peaks"],
        peaks,
        [_SheetNote(RECURRING_PEAKS_NOTE if len(peaks) else NO_RECURRING_PEAKS)],
    )
    warnings = _warning_notes(summary)
    _write_table(sheets["Data quality"], data_quality, warnings)

    buffer = io.BytesIO()
    workbook.save(buffer)
    data = buffer.getvalue()
    check_workbook(data)
    logger.info(
        "08_report: details.xlsx %d bytes, %d at-risk rows, %d forecast rows",
        len(data),
        len(at_risk),
        len(forecast_frame),
    )
    return data


def _warning_notes(summary: Mapping[str, Any]) -> list[_SheetNote]:
    quality = summary.get("data_quality") or {}
    warnings: Iterable[Any] = quality.get("warnings") or []
    notes = [_SheetNote(str(w)) for w in warnings]
    reclaim = [_SheetNote(reclamation_line(c)) for c in quality.get("reclamation") or []]
    return ([_SheetNote("Loading warnings", bold=True), *notes] if notes else []) + (
        [_SheetNote("Not forecast: set aside in loading", bold=True), *reclaim] if reclaim else []
    )


def check_workbook(data: bytes) -> None:
    """Post-condition of details.xlsx: a sound zip whose workbook lists exactly ``SHEETS``.

    Reads the package directly: openpyxl's loader would scan every row of a large sheet.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            broken = package.testzip()
            workbook_xml = package.read("xl/workbook.xml")
    except (zipfile.BadZipFile, KeyError) as error:
        raise StageCheckError(f"08_report: details.xlsx is not a workbook: {error}") from error
    if broken is not None:
        raise StageCheckError(f"08_report: details.xlsx member {broken} is corrupt")
    # Our own freshly written XML, not untrusted input, so the standard parser is fine.
    names = tuple(
        element.get("name", "")
        for element in ElementTree.fromstring(workbook_xml).iter(f"{{{_MAIN_NS}}}sheet")
    )
    if names != SHEETS:
        raise StageCheckError(
            f"08_report: details.xlsx has sheets {list(names)}, expected {list(SHEETS)}"
        )
