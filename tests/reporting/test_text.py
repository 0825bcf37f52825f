"""Text for the reports: labels, number formats, and data made safe for each renderer."""

from __future__ import annotations

import datetime as dt

import numpy as np
import openpyxl
import pandas as pd
import pytest

from capacity_forecaster.core.vocabulary import METRICS, MODEL_LABELS, MODEL_NAMES
from capacity_forecaster.reporting import text
from tests.reporting.report_fleet import BOLD, ENTITY, FORMULA_LIKE, HYPERLINK, SCRIPT

# --------------------------------------------------------------------------- safety


@pytest.mark.parametrize("value", [*FORMULA_LIKE, "-2+3", "\t=1+1", "\r=1", "\uff1dSUM(1)"])
def test_excel_safe_quotes_formula_triggers(value: str) -> None:
    assert text.excel_safe(value) == "'" + value


@pytest.mark.parametrize("value", ["srv-001", SCRIPT, BOLD, ENTITY, "Risk & Compliance", ""])
def test_excel_safe_keeps_other_text(value: str) -> None:
    assert text.excel_safe(value) == value


def test_excel_safe_plain_values() -> None:
    assert text.excel_safe(float("nan")) is None
    assert text.excel_safe(float("inf")) is None
    assert text.excel_safe(pd.NaT) is None
    assert text.excel_safe(np.int64(3)) == 3 and type(text.excel_safe(np.int64(3))) is int
    assert text.excel_safe(True) is True
    aware = pd.Timestamp("2026-07-01 12:00", tz="Europe/London")
    assert text.excel_safe(aware) == dt.datetime(2026, 7, 1, 11, 0)
    assert text.excel_safe("a\x00b\x1fc") == "abc"  # XML-illegal characters would break the file


def test_pdf_safe_escapes_markup() -> None:
    assert text.pdf_safe(BOLD) == "&lt;b&gt;bold&lt;/b&gt;"
    assert text.pdf_safe(ENTITY) == "&amp;amp;"
    assert text.pdf_safe(None) == "\u2013"
    assert text.pdf_safe(float("nan"), missing="n/a") == "n/a"


def test_excel_safe_is_what_stops_the_formula() -> None:
    # openpyxl stores a str starting with "=" as a formula unless the text is made safe first
    sheet = openpyxl.Workbook().active
    sheet["A1"] = HYPERLINK
    sheet["A2"] = text.excel_safe(HYPERLINK)
    assert sheet["A1"].data_type == "f"


def test_every_renderer_gets_its_own_escape() -> None:
    assert text.plotly_safe('<a href="x">$5</a>') == '&lt;a href="x"&gt;&#36;5&lt;/a&gt;'
    assert text.matplotlib_safe("$x$") == r"\$x\$"
    assert text.html_safe('"><img src=x>') == "&quot;&gt;&lt;img src=x&gt;"


# --------------------------------------------------------------------------- labels and numbers


def test_labels_come_from_the_vocabulary() -> None:
    assert [text.metric_label(m) for m in METRICS] == ["CPU", "Memory", "Disk"]
    assert {text.model_label(m) for m in MODEL_NAMES} <= set(MODEL_LABELS.values())
    assert text.model_label("champion") == "Champion (per metric)"
    assert text.metric_label("gpu_p95") == "gpu_p95"  # an unknown name keeps its own
    assert text.stem_label("risk_heatmap") == "risk heatmap"


@pytest.mark.parametrize(
    ("value", "kind", "shown"),
    [
        (1234.4, "int", "1,234"),
        (81.25, "points", "81.2"),
        (0.0421, "share", "4.2%"),
        (0.415, "probability", "42%"),
        (12345.6, "money", "$12,346"),
        (0.8123, "ratio", "0.81"),
        (pd.Timestamp("2026-07-01 12:00"), "date", "2026-07-01"),
        (True, "bool", "yes"),
        ("srv-001", "text", "srv-001"),
        (None, "money", "\u2013"),
        (float("nan"), "int", "\u2013"),
        (float("inf"), "ratio", "\u2013"),
        ("n/a", "ratio", "n/a"),  # a value of an unexpected type is shown as it is
    ],
)
def test_format_value_by_kind(value: object, kind: str, shown: str) -> None:
    assert text.format_value(value, kind) == shown


def test_format_number_and_plain_words() -> None:
    assert text.format_number(0.8, ".0%") == "80%"
    assert text.format_number(None, ".1f", missing="n/a") == "n/a"
    assert text.format_number("abc", ".1f", missing="n/a") == "n/a"
    assert text.count_noun(1, "server") == "1 server"
    assert text.count_noun(3, "server", "three") == "three servers"
    assert text.and_join(["a", "b", "c"]) == "a, b and c"
    assert text.and_join(["a"]) == "a"
