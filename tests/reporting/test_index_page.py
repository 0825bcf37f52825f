"""The run's front page: headline figures, links only to files that exist, inert data text."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from capacity_forecaster.reporting.index_page import render_index
from tests.reporting import report_fleet

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.hrefs.extend(value or "" for name, value in attrs if name == "href")


def _parse(page: str) -> _Links:
    parser = _Links()
    parser.feed(page)
    return parser


def _records() -> list[dict]:
    return [
        {
            "stage": "07_cluster",
            "status": "succeeded",
            "seconds": 6.0,
            "html": "notebooks/07_cluster.html",
            "report_html": "notebooks/07_cluster.report.html",
        },
        {
            "stage": "08_report",
            "status": "failed",
            "seconds": 1.5,
            "error": f"08_report failed in cell 3: ValueError: {HOSTILE}",
            "html": "notebooks/08_report.html",
            "report_html": "notebooks/08_report.report.html",
        },
        {"stage": "09_visualize", "status": "not_run"},
    ]


def _headline() -> dict:
    return {
        "fleet": {"servers": 150, "date_start": "2024-07-01", "date_end": "2026-06-30"},
        "risk": {
            "servers_by_level": {"high": 4, "medium": 11, "low": 135},
            "earliest_breaches": [
                {
                    "server_id": HOSTILE,
                    "metric": "mem_p95",
                    "breach_date": "2026-07-09",
                    "days_to_breach": 9,
                    "breach_probability": 0.71,
                    "criticality": "critical",
                }
            ],
        },
        "accuracy": {"champion": {"mase": 0.812}, "baseline": {"mase": 1.43}},
        "savings": {"monthly_usd_total": 12345.6},
    }


KEYS = {
    "notebooks/07_cluster.html",
    "notebooks/07_cluster.report.html",
    "notebooks/08_report.html",
    "reports/summary.pdf",
    "reports/details.xlsx",
    "reports/plots/risk_heatmap.html",
    "reports/plots/risk_heatmap.png",
    "reports/plots/only_static.png",
    "manifest.json",
}


def test_links_only_to_files_that_exist() -> None:
    page = render_index("run-1", "failed", _records(), KEYS, _headline())
    hrefs = _parse(page).hrefs
    assert set(hrefs) <= KEYS
    # The shareable report of 08 was never written, so it is not linked.
    assert "notebooks/08_report.report.html" not in hrefs
    for key in (
        "reports/summary.pdf",
        "reports/details.xlsx",
        "reports/plots/risk_heatmap.html",
        "reports/plots/risk_heatmap.png",
        "reports/plots/only_static.png",
        "notebooks/07_cluster.report.html",
        "notebooks/07_cluster.html",
        "notebooks/08_report.html",
        "manifest.json",
    ):
        assert key in hrefs, key
    assert all(not href.startswith(("/", "http", "file:")) for href in hrefs)


def test_a_series_over_its_threshold_now_leads_the_breaches() -> None:
    headline = report_fleet.over_now_fleet().headline()
    assert headline["risk"]["series_over_now"] == 1
    first = headline["risk"]["earliest_breaches"][0]
    assert (first["server_id"], first["days_to_breach"], first["over_now"]) == ("srv-005", 0, True)
    page = render_index("run-1", "succeeded", _records(), KEYS, headline)
    text = re.sub(r"<[^>]+>", " ", page)
    assert "over now (P95 92.3 % against 85 %)" in text


def test_headline_figures_are_shown() -> None:
    page = render_index("run-1", "succeeded", _records(), KEYS, _headline())
    text = re.sub(r"<[^>]+>", " ", page)
    for figure in ("150", "$12,346", "0.81", "1.43", "2024-07-01", "2026-06-30", "71%"):
        assert figure in text, figure


def test_data_and_error_text_is_inert() -> None:
    page = render_index(HOSTILE, "failed", _records(), KEYS, _headline())
    assert "<script>" not in page
    tags = set(_parse(page).tags)
    assert "script" not in tags and "img" not in tags
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_without_headline_the_page_still_lists_stages() -> None:
    page = render_index("run-2", "incomplete", _records()[:1], {"notebooks/07_cluster.html"})
    assert "Headline" not in page
    assert "07_cluster" in page
    assert _parse(page).hrefs == ["notebooks/07_cluster.html"]


def test_the_forecast_horizon_and_data_window_line() -> None:
    headline = _headline() | {
        "generated_at": "2026-07-01T06:00:00+00:00",
        "forecast": {"horizon_days": 120, "first_date": "2026-07-01", "last_date": "2026-10-28"},
    }
    page = render_index("run-1", "succeeded", _records(), KEYS, headline)
    assert (
        '<p class="sub">Forecast horizon 120 days (2026-07-01 \u2013 2026-10-28) \u00b7 '
        "data 2024-07-01 \u2013 2026-06-30 \u00b7 generated 2026-07-01</p>"
    ) in page
    # a summary.json from before the forecast section: the data window alone
    older = render_index("run-1", "succeeded", _records(), KEYS, _headline())
    assert '<p class="sub">Data 2024-07-01 \u2013 2026-06-30</p>' in older


def test_data_warnings_reach_the_front_page() -> None:
    headline = _headline()
    lines = [f"srv-{i:03d}: 12 days missing in a row" for i in range(13)]
    headline["data_quality"] = {"warnings": [HOSTILE, *lines]}
    page = render_index("run-1", "succeeded", _records(), KEYS, headline)
    assert "Data warnings (14)" in page
    assert "srv-008: 12 days missing in a row" in page and "srv-009" not in page
    assert "and 4 more in validated/quality.json" in page
    assert "<script>alert(1)" not in page
