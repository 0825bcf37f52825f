"""Stage 08: reports/summary.pdf reads back with the headline figures, escapes data text."""

from __future__ import annotations

import io

import pypdf
import pytest

from capacity_forecaster.reporting import tables
from capacity_forecaster.reporting.pdf import build_pdf
from tests.reporting import report_fleet
from tests.reporting.report_fleet import (
    BACKTEST_ORIGINS,
    BOLD,
    HOSTILE,
    SAME_SEASON,
    Fleet,
    pdf_pages,
    png,
    squash,
)


def test_pdf_reads_back_with_key_figures(fleet: Fleet) -> None:
    pages = pdf_pages(fleet.pdf())
    assert len(pages) >= 2
    text = " ".join("\n".join(pages).split())  # lines wrap anywhere between words
    assert "4 of 6 servers" in text
    assert "2 high" in text and "2 medium" in text
    assert "$1,250 per month" in text and "$15,000 a year" in text
    assert "srv-002" in text
    assert "Seasonal naive (baseline)" in text
    assert (
        f"Intervals calibrated on {BACKTEST_ORIGINS} for Gradient boosting; {SAME_SEASON} for "
        "Robust trend and Seasonal naive (baseline)."
    ) in text
    assert f"Page 1 of {len(pages)}" in pages[0]
    assert f"Page {len(pages)} of {len(pages)}" in pages[-1]


def test_pdf_leads_with_a_series_over_its_threshold_now() -> None:
    text = " ".join(" ".join(pdf_pages(report_fleet.over_now_fleet().pdf())).split())
    assert "1 series over the threshold now; the furthest over is srv-005" in text
    assert "at a recent P95 of 92.3 % against 85 %" in text
    assert "over now (P95 92.3 % against 85 %)" in text  # the breaches table
    assert "in 0 days" not in text


def test_pdf_is_reproducible(fleet: Fleet) -> None:
    assert fleet.pdf() == fleet.pdf()


def test_pdf_long_table_repeats_its_header() -> None:
    names = [f"srv-{i:03d}" for i in range(1, 121)]
    levels = {name: ("high", float(i + 1), 0.9) for i, name in enumerate(names)}
    long_fleet = Fleet(names, ["Payments"] * len(names), levels)
    pages = [squash(text) for text in pdf_pages(long_fleet.pdf(top_n=120))]
    with_rows = [i for i, text in enumerate(pages) if "srv-120" in text or "srv-060" in text]
    table_pages = [i for i, text in enumerate(pages) if "Forecastpeak%" in text]
    assert len(table_pages) >= 2  # the table spans pages ...
    assert set(with_rows) <= set(table_pages)  # ... and every page of it has the header


def test_pdf_embeds_charts_and_skips_empty_ones(fleet: Fleet) -> None:
    with_chart = fleet.pdf(charts={"Fleet utilisation": png(), "Nothing yet": b""})
    reader = pypdf.PdfReader(io.BytesIO(with_chart))
    assert sum(len(page.images) for page in reader.pages) == 1
    text = "\n".join(pdf_pages(with_chart))
    assert "Fleet utilisation" in text and "Nothing yet" not in text
    assert "Charts" not in "\n".join(pdf_pages(fleet.pdf(charts={})))


def test_pdf_rejects_an_unreadable_chart(fleet: Fleet) -> None:
    with pytest.raises(ValueError, match="Broken"):
        fleet.pdf(charts={"Broken": b"not a png"})


def test_pdf_shows_hostile_names_literally(hostile_fleet: Fleet) -> None:
    pdf = hostile_fleet.pdf(charts={BOLD: png()})
    text = squash("\n".join(pdf_pages(pdf)))
    # escaped, not parsed: the tags print as typed, the entity is not decoded
    for name in HOSTILE:
        assert squash(name) in text, name
    assert squash(f"extra column dropped: {BOLD}") in text


def test_pdf_cover_shows_the_forecast_horizon_and_data_window(fleet: Fleet) -> None:
    cover = " ".join(pdf_pages(fleet.pdf())[0].split())
    assert (
        "Forecast horizon 5 days (2026-07-01 \u2013 2026-07-05) \u00b7 "
        "data 2025-06-01 \u2013 2026-06-30 \u00b7 generated 2026-07-01"
    ) in cover


def test_the_pdf_gives_each_at_risk_series_its_sized_action(fleet: Fleet) -> None:
    at_risk = tables.at_risk_table(fleet.risk, 20, clusters=fleet.clusters)
    pdf_bytes = build_pdf(
        fleet.headline(),
        at_risk,
        tables.accuracy_table(fleet.metrics),
        tables.cluster_table(fleet.recommendations, fleet.clusters),
        tables.recommendation_table(fleet.clusters),
        None,
    )
    text = " ".join(" ".join(pdf_pages(pdf_bytes)).split())
    assert "Sized actions" in text
    assert "64 -> 96 GB memory: forecast peak 60 %, +$250/month" in text
