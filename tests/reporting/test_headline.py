"""Stage 08: reports/summary.json, the headline figures, and the line of the run's dates."""

from __future__ import annotations

import json

import pytest

from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.reporting import headline, tables
from tests.reporting.report_fleet import (
    BACKTEST_ORIGINS,
    GENERATED_AT,
    METRICS,
    SAME_SEASON,
    Fleet,
    pdf_pages,
)

OUTLOOK = (
    "Forecast horizon 5 days (2026-07-01 \u2013 2026-07-05) \u00b7 "
    "data 2025-06-01 \u2013 2026-06-30 \u00b7 generated 2026-07-01"
)


def test_headline_has_documented_keys_and_is_strict_json(fleet: Fleet) -> None:
    summary = fleet.headline()
    json.dumps(summary, allow_nan=False)
    assert summary["schema_version"] == 1
    assert summary["generated_at"] == GENERATED_AT
    assert summary["forecast"] == {
        "horizon_days": 5,
        "scored_horizon_days": 5,
        "first_date": "2026-07-01",
        "last_date": "2026-07-05",
    }
    for section, keys in headline.HEADLINE_KEYS.items():
        assert set(keys) <= set(summary[section]), section
    assert summary["fleet"] == {
        "servers": 6,
        "series": 18,
        "date_start": "2025-06-01",
        "date_end": "2026-06-30",
        "days": 395,
        "metrics_monitored": ["cpu_p95", "mem_p95", "disk_p95"],
        "business_units": 3,
        "regions": 2,
    }
    risk = summary["risk"]
    assert risk["servers_by_level"] == {"high": 2, "medium": 2, "low": 2}
    assert risk["series_by_level"] == {"high": 2, "medium": 2, "low": 14}
    assert risk["servers_at_risk"] == 4
    assert [b["server_id"] for b in risk["earliest_breaches"]] == ["srv-002", "srv-001", "srv-003"]
    assert risk["earliest_breaches"][0] == {
        "server_id": "srv-002",
        "metric": "mem_p95",
        "breach_date": "2026-07-05",
        "days_to_breach": 5,
        "breach_window": "",
        "over_now": False,
        "current_p95": 70.0,
        "threshold": 85.0,
        "breach_probability": 0.6,
        "criticality": "high",
        "business_unit": "Payments",
        "trust_grade": "B",
    }
    assert [row["business_unit"] for row in risk["by_business_unit"]] == [
        "Payments",
        "Retail",
        "Trading",
    ]
    accuracy = summary["accuracy"]
    assert accuracy["champion"]["mase"] == 0.8
    assert accuracy["champion"]["mase_median"] is None  # NaN in metrics.json -> null
    assert accuracy["baseline"] == {"model": "seasonal_naive", "mase": 1.6, "coverage": 0.81}
    assert accuracy["mase_reduction"] == 0.5
    assert accuracy["interval_calibration"] == {
        "gradient_boosting": BACKTEST_ORIGINS,
        "robust_trend": SAME_SEASON,
        "seasonal_naive": SAME_SEASON,
    }
    assert [m["metric"] for m in accuracy["by_metric"]] == sorted(METRICS)
    assert summary["savings"] == {
        "monthly_usd_total": 1250.0,
        "consolidation_usd": 1000.0,
        "right_sizing_usd": 250.0,
        "servers_freed": 1,
        "annual_usd_total": 15000.0,
        "note": "monthly USD; freed servers count once",
    }
    assert summary["data_quality"]["outliers"] == 7
    assert summary["data_quality"]["missing_share"] == 0.012


def test_headline_names_a_missing_column(fleet: Fleet) -> None:
    fleet.risk = fleet.risk.drop(columns=["breach_probability"])
    with pytest.raises(StageCheckError, match="breach_probability"):
        fleet.headline()


def test_headline_names_a_missing_model(fleet: Fleet) -> None:
    fleet.metrics["models"] = [m for m in fleet.metrics["models"] if m["model"] != "champion"]
    with pytest.raises(StageCheckError, match="champion"):
        fleet.headline()


def test_metrics_without_calibration_sources_report_none(fleet: Fleet) -> None:
    # A metrics.json from before stage 04 recorded them: no sources, no column, no sentence.
    del fleet.metrics["interval_calibration"]
    assert fleet.headline()["accuracy"]["interval_calibration"] == {}
    assert "Intervals calibrated on" not in tables.accuracy_table(fleet.metrics).columns
    assert "Intervals calibrated on" not in " ".join(pdf_pages(fleet.pdf()))


def test_headline_names_malformed_calibration_sources(fleet: Fleet) -> None:
    fleet.metrics["interval_calibration"] = ["the backtest origins"]
    with pytest.raises(StageCheckError, match="interval_calibration must map models to text"):
        fleet.headline()


def test_headline_rejects_unknown_risk_levels(fleet: Fleet) -> None:
    fleet.risk.loc[0, "risk_level"] = "severe"
    with pytest.raises(StageCheckError, match="severe"):
        fleet.headline()


def test_check_headline_refuses_nan(fleet: Fleet) -> None:
    summary = fleet.headline()
    summary["savings"]["monthly_usd_total"] = float("nan")
    with pytest.raises(StageCheckError, match="strict JSON"):
        headline.check_headline(summary)


def test_the_forecast_section_comes_from_the_forecast_summary(fleet: Fleet) -> None:
    assert headline.HEADLINE_KEYS["forecast"] == (
        "horizon_days",
        "scored_horizon_days",
        "first_date",
        "last_date",
    )
    fleet.forecast_summary = dict(fleet.forecast_summary, horizon_days=120)
    assert fleet.headline()["forecast"]["horizon_days"] == 120
    del fleet.forecast_summary["last_date"]
    with pytest.raises(
        StageCheckError, match=r"forecasts/summary.json lacks key\(s\) \['last_date'\]"
    ):
        fleet.headline()


def test_check_headline_requires_the_forecast_section(fleet: Fleet) -> None:
    summary = fleet.headline()
    del summary["forecast"]
    with pytest.raises(StageCheckError, match="forecast"):
        headline.check_headline(summary)


def test_outlook_line_names_horizon_window_and_date(fleet: Fleet) -> None:
    assert headline.outlook_line(fleet.headline()) == OUTLOOK


def test_outlook_line_says_a_shortened_backtest_and_the_metrics_not_monitored(
    fleet: Fleet,
) -> None:
    fleet.metrics["backtest"] = dict(fleet.metrics["backtest"], scored_horizon_days=3)
    fleet.quality["metrics_monitored"] = ["cpu_p95", "mem_p95"]
    line = headline.outlook_line(fleet.headline())
    assert "(2026-07-01 \u2013 2026-07-05; backtested 3 days ahead, intervals beyond" in line
    assert line.endswith(
        "\u00b7 metrics CPU, Memory (Disk not monitored) \u00b7 generated 2026-07-01"
    )


def test_outlook_line_of_an_older_summary_leaves_the_forecast_out(fleet: Fleet) -> None:
    summary = fleet.headline()
    del summary["forecast"]
    assert headline.outlook_line(summary) == (
        "Data 2025-06-01 \u2013 2026-06-30 \u00b7 generated 2026-07-01"
    )
    assert headline.outlook_line({}) == ""
