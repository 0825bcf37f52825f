"""summary.pdf is dated by its run and prints every server name: read back with pypdf."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pypdf
import pytest

from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.reporting import pdf_styles, tables
from capacity_forecaster.reporting.pdf import build_pdf, pdf_date
from tests.reporting.report_fleet import LEVELS, Fleet, pdf_pages, squash

JAPANESE = "日本-01"
CYRILLIC = "Сервер-03"
KOREAN = "서버-04"
CJK_FONTS = {pdf_styles.CJK_FONT, pdf_styles.HANGUL_FONT}


def _pdf(fleet: Fleet, **summary: Any) -> bytes:
    """``fleet.pdf()`` with ``summary`` keys replaced in its headline."""
    return build_pdf(
        {**fleet.headline(), **summary},
        tables.at_risk_table(fleet.risk, 20),
        tables.accuracy_table(fleet.metrics),
        tables.cluster_table(fleet.recommendations, fleet.clusters),
        tables.recommendation_table(fleet.clusters),
    )


def _multilingual_fleet() -> Fleet:
    names = [JAPANESE, "srv-002", CYRILLIC, KOREAN, "srv-005", "srv-006"]
    levels = dict(zip(names, LEVELS.values(), strict=False))
    return Fleet(names, ["Zürich", "Zürich", "東京", "Retail", "Retail", "東京"], levels)


# --------------------------------------------------------------------------- dates


def test_pdf_is_dated_by_the_run_it_reports(fleet: Fleet) -> None:
    metadata = pypdf.PdfReader(io.BytesIO(fleet.pdf())).metadata
    assert metadata is not None
    generated = dt.datetime(2026, 7, 1, 6, 0, tzinfo=dt.UTC)  # report_fleet.GENERATED_AT
    assert metadata.creation_date == generated
    assert metadata.modification_date == generated


def test_a_later_run_gives_a_later_date_and_the_same_run_the_same_bytes(fleet: Fleet) -> None:
    later = _pdf(fleet, generated_at="2026-07-02T09:30:00+02:00")
    assert later == _pdf(fleet, generated_at="2026-07-02T09:30:00+02:00")
    metadata = pypdf.PdfReader(io.BytesIO(later)).metadata
    assert metadata is not None
    assert metadata.creation_date == dt.datetime(2026, 7, 2, 7, 30, tzinfo=dt.UTC)


def test_pdf_date_is_utc_and_rejects_what_is_no_time() -> None:
    assert pdf_date("2026-07-01T06:00:00+00:00") == "D:20260701060000+00'00'"
    assert pdf_date("2026-07-01T08:00:00+02:00") == "D:20260701060000+00'00'"
    assert pdf_date("2026-07-01T06:00:00") == "D:20260701060000+00'00'"  # no zone: UTC
    with pytest.raises(StageCheckError, match="generated_at"):
        pdf_date("yesterday")


# --------------------------------------------------------------------------- fonts


def _fonts(reader: pypdf.PdfReader) -> dict[str, Any]:
    """Every font of every page by its base name (without a subset tag)."""
    fonts = {}
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            fonts[str(font["/BaseFont"]).lstrip("/").split("+")[-1]] = font
    return fonts


def _text_fonts(reader: pypdf.PdfReader) -> list[tuple[str, str]]:
    """(text shown, base name of its font) of every text run."""
    runs: list[tuple[str, str]] = []

    def visit(text: str, _cm: Any, _tm: Any, font: Any, _size: Any) -> None:
        if text.strip() and font is not None:
            runs.append((text.strip(), str(font["/BaseFont"]).lstrip("/").split("+")[-1]))

    for page in reader.pages:
        page.extract_text(visitor_text=visit)
    return runs


def test_non_ascii_names_read_back_from_the_pdf() -> None:
    pdf = _multilingual_fleet().pdf()
    text = squash("\n".join(pdf_pages(pdf)))
    for name in (JAPANESE, CYRILLIC, KOREAN, "Zürich", "東京"):
        assert squash(name) in text, name


def test_every_character_is_set_in_a_font_that_has_it() -> None:
    reader = pypdf.PdfReader(io.BytesIO(_multilingual_fleet().pdf()))
    fonts = _fonts(reader)
    # DejaVu Sans embedded (a TrueType subset); CJK in reportlab's CID fonts, which every
    # viewer provides; no Helvetica, which has no glyph beyond Latin-1.
    assert set(fonts) == {pdf_styles.FONT, pdf_styles.BOLD_FONT, *CJK_FONTS}
    for name in (pdf_styles.FONT, pdf_styles.BOLD_FONT):
        assert "/FontFile2" in fonts[name]["/FontDescriptor"], name
    runs = _text_fonts(reader)
    assert ("日本", pdf_styles.CJK_FONT) in runs
    assert ("東京", pdf_styles.CJK_FONT) in runs
    assert ("서버", pdf_styles.HANGUL_FONT) in runs
    for shown, font in runs:
        if font in CJK_FONTS:
            assert all(ord(character) > 0x2E7F for character in shown), shown
        if CYRILLIC in shown:
            assert font == pdf_styles.FONT


def test_font_runs_split_text_by_the_font_that_has_it() -> None:
    assert pdf_styles.font_runs(JAPANESE) == [
        (pdf_styles.CJK_FONT, "日本"),
        (pdf_styles.FONT, "-01"),
    ]
    assert pdf_styles.font_runs(f"{KOREAN} Zürich") == [
        (pdf_styles.HANGUL_FONT, "서버"),
        (pdf_styles.FONT, "-04 Zürich"),
    ]
    markup = pdf_styles.with_fallback_fonts(f"<b>{JAPANESE}</b> &amp; {CYRILLIC}")
    assert markup == (f'<b><font name="{pdf_styles.CJK_FONT}">日本</font>-01</b> &amp; {CYRILLIC}')
