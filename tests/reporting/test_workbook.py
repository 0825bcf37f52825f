"""Stage 08: reports/details.xlsx, its sheets, formats, limits and formula safety."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile

import openpyxl
import pytest

from capacity_forecaster.reporting import tables
from capacity_forecaster.reporting.workbook import SHEETS
from tests.reporting.report_fleet import (
    BACKTEST_ORIGINS,
    BOLD,
    ENTITY,
    FORMULA_LIKE,
    SAME_SEASON,
    SCRIPT,
    Fleet,
)


def _sheet_xml(data: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        return {
            name: package.read(name).decode("utf-8")
            for name in package.namelist()
            if name.startswith("xl/worksheets/") and name.endswith(".xml")
        }


def test_workbook_sheets_headers_filters_and_formats(fleet: Fleet) -> None:
    book = openpyxl.load_workbook(io.BytesIO(fleet.workbook()))
    assert book.sheetnames == list(SHEETS)
    for sheet in book.worksheets:
        assert sheet.freeze_panes == "A2", sheet.title
        assert sheet.auto_filter.ref and sheet.auto_filter.ref.startswith("A1:"), sheet.title
        header = sheet["A1"]
        assert header.font.b, sheet.title
        assert header.fill.fgColor.rgb.endswith("1F3864"), sheet.title

    at_risk = book["Risk (all series)"]
    headers = [cell.value for cell in at_risk[1]]
    last_column = openpyxl.utils.get_column_letter(len(headers))
    assert at_risk.auto_filter.ref == f"A1:{last_column}19"  # 18 series + header
    column = {name: index for index, name in enumerate(headers)}
    first = [cell for cell in at_risk[2]]
    assert first[column["Server"]].value == "srv-002"
    assert first[column["Risk level"]].value == "high"
    assert first[column["Breach date"]].value == dt.datetime(2026, 7, 5)
    assert first[column["Breach date"]].number_format == "yyyy-mm-dd"
    assert first[column["Breach probability"]].value == pytest.approx(0.6)
    assert first[column["Breach probability"]].number_format == "0%"
    assert first[column["Forecast peak %"]].number_format == "0.0"

    level_letter = openpyxl.utils.get_column_letter(column["Risk level"] + 1)
    rules = {
        rule.formula[0]: rule
        for ranges in at_risk.conditional_formatting
        for rule in ranges.rules
        if str(ranges.sqref) == f"{level_letter}2:{level_letter}19"
    }
    assert set(rules) == {'"high"', '"medium"', '"low"'}
    assert all(rule.type == "cellIs" and rule.operator == "equal" for rule in rules.values())

    recommendations = book["Recommendations"]
    saving = [cell.value for cell in recommendations[1]].index("Monthly saving (USD)")
    assert recommendations.cell(row=2, column=saving + 1).number_format == "#,##0"
    summary = {row[1]: row[2] for row in book["Summary"].iter_rows(min_row=2, values_only=True)}
    assert summary["Servers at high risk"] == 2
    assert summary["Total per month (USD)"] == 1250
    quality = [row[0] for row in book["Data quality"].iter_rows(values_only=True)]
    assert "Loading warnings" in quality


def test_workbook_says_where_each_models_intervals_come_from(fleet: Fleet) -> None:
    sheet = openpyxl.load_workbook(io.BytesIO(fleet.workbook()))["Model metrics"]
    header, *rows = sheet.iter_rows(values_only=True)
    model, source = header.index("Model"), header.index("Intervals calibrated on")
    assert {row[model]: row[source] for row in rows} == {
        "Champion (per metric)": tables.CHAMPION_CALIBRATION,
        "Gradient boosting": BACKTEST_ORIGINS,
        "Seasonal naive (baseline)": SAME_SEASON,
    }


def test_workbook_forecasts_are_champion_only(fleet: Fleet) -> None:
    sheet = openpyxl.load_workbook(io.BytesIO(fleet.workbook()))["Forecasts"]
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert len(rows) == int(fleet.forecasts["is_champion"].sum())
    assert rows[0][:4] == ("srv-001", "CPU", dt.datetime(2026, 7, 1), "Gradient boosting")
    assert sheet.auto_filter.ref == f"A1:G{len(rows) + 1}"


def test_workbook_truncates_forecasts_to_whole_series_with_a_note(fleet: Fleet) -> None:
    book = openpyxl.load_workbook(io.BytesIO(fleet.workbook(max_forecast_rows=12)))
    sheet = book["Forecasts"]
    values = [row for row in sheet.iter_rows(min_row=2, values_only=True) if any(row)]
    data, note = values[:-1], values[-1][0]
    assert len(data) == 10  # two whole 5-day series fit in 12 rows
    assert sheet.auto_filter.ref == "A1:G11"
    assert note.startswith("Truncated") and "10 of 90" in note
    summary = [row[2] for row in book["Summary"].iter_rows(min_row=2, values_only=True)]
    assert note in summary


def test_workbook_never_writes_formulas_for_hostile_names(hostile_fleet: Fleet) -> None:
    data = hostile_fleet.workbook()
    book = openpyxl.load_workbook(io.BytesIO(data))
    seen = set()
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                seen.add(cell.value)
    # quoted (visible apostrophe), so no spreadsheet or CSV export evaluates them ...
    for name in FORMULA_LIKE:
        assert "'" + name in seen and name not in seen, name
    # ... while markup-looking text is stored exactly as it is
    for name in (SCRIPT, BOLD, ENTITY):
        assert name in seen, name
    xml = _sheet_xml(data)
    assert len(xml) == len(SHEETS)
    for name, text in xml.items():
        assert not re.search(r"<f[\s>/]", text), name  # no formula element at all
