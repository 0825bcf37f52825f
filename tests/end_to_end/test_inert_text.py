"""Text from the data stays text: hostile server names and business units, run through every
stage, show up literally and run nothing in the HTML pages, the PDF and the workbook."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pypdf
import pytest

from capacity_forecaster.core.params import SyntheticParams
from capacity_forecaster.ingest import synthetic
from tests.cli import own_data_params, run_all

pytestmark = pytest.mark.e2e

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"
HYPERLINK = '=HYPERLINK("http://evil.example","x")'
HOSTILE_IDS = [SCRIPT, HYPERLINK, "+cmd|' /C calc'!A0", "@SUM(1)", "-2+3"]
HOSTILE_UNIT = f"Trading {IMG}"


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    metrics, servers = synthetic.generate_fleet(
        SyntheticParams(n_servers=len(HOSTILE_IDS), days=300, end_date="2026-06-30"), seed=5
    )
    rename = dict(zip(sorted(servers["server_id"]), HOSTILE_IDS, strict=True))
    metrics["server_id"] = metrics["server_id"].map(rename)
    servers["server_id"] = servers["server_id"].map(rename)
    servers["hostname"] = servers["server_id"]
    servers.loc[servers.index[:2], "business_unit"] = HOSTILE_UNIT
    # Make the first servers' memory climb so they are at risk and land in every report.
    grow = metrics["server_id"].isin(HOSTILE_IDS[:2])
    metrics.loc[grow, "mem_p95"] = (
        metrics.loc[grow, "mem_p95"] + metrics.loc[grow].groupby("server_id").cumcount() * 0.15
    ).clip(upper=99.0)
    params = own_data_params(folder, metrics, servers)
    result = run_all("--params", str(params), "--run-id", "hostile")
    assert result.returncode == 0, result.stderr[-3000:]
    return folder / "out" / "hostile"


def _pages(root: Path) -> list[Path]:
    return sorted(root.rglob("*.html"))


def test_html_pages_show_the_names_as_text(hostile_run: Path) -> None:
    pages = _pages(hostile_run)
    assert len(pages) == 2 * 8 + 5 + 1  # notebooks 02-09 (full and shareable), plots, index
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for raw in (SCRIPT, IMG, "onerror=alert(2)>"):
            assert raw not in text, (page.name, raw)
    index = (hostile_run / "index.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index  # shown, escaped
    assert not re.search(r"<script\b", index)  # the front page runs no script at all


def test_pdf_shows_the_names_literally(hostile_run: Path) -> None:
    reader = pypdf.PdfReader(hostile_run / "reports" / "summary.pdf")
    text = "".join(page.extract_text() for page in reader.pages)
    # Narrow table cells wrap long names, so compare without whitespace.
    squeezed = re.sub(r"\s+", "", text)
    for name in (SCRIPT, IMG, HYPERLINK):
        assert re.sub(r"\s+", "", name) in squeezed, name


def test_workbook_has_no_formula_and_keeps_the_names(hostile_run: Path) -> None:
    path = hostile_run / "reports" / "details.xlsx"
    with zipfile.ZipFile(path) as package:
        for name in package.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in package.read(name) and b"<f " not in package.read(name), name
    workbook = openpyxl.load_workbook(path, read_only=True)
    values = [
        cell
        for sheet in ("Risk (all series)", "Clusters", "Forecasts")
        for row in workbook[sheet].iter_rows(values_only=True)
        for cell in row
        if isinstance(cell, str)
    ]
    assert SCRIPT in values
    assert "'" + HYPERLINK in values and HYPERLINK not in values  # quoted: text, not a formula
    assert "'@SUM(1)" in values and "'-2+3" in values


def test_summary_json_keeps_the_names_exactly(hostile_run: Path) -> None:
    clusters = pd.read_parquet(hostile_run / "clusters" / "clusters.parquet")
    assert set(clusters["server_id"]) == set(HOSTILE_IDS)
    summary = json.loads((hostile_run / "reports" / "summary.json").read_text())
    assert summary["fleet"]["servers"] == len(HOSTILE_IDS)
