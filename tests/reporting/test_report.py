"""Stage 08: headline figures, report tables, text safety, the PDF and the workbook."""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import re
import zipfile

import numpy as np
import openpyxl
import pandas as pd
import pypdf
import pytest
from PIL import Image

from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.reporting import report as rp
from capacity_forecaster.reporting.pdf import build_pdf
from capacity_forecaster.reporting.workbook import SHEETS, build_workbook

SCRIPT = "<script>alert(1)</script>"
HYPERLINK = '=HYPERLINK("http://evil","x")'
DDE = "+cmd|' /C calc'!A0"
AT_SUM = "@SUM(1)"
BOLD = "<b>bold</b>"
ENTITY = "&amp;"
HOSTILE = (SCRIPT, HYPERLINK, DDE, AT_SUM, BOLD, ENTITY)
FORMULA_LIKE = (HYPERLINK, DDE, AT_SUM)
METRICS = ("cpu_p95", "mem_p95", "disk_p95")
THRESHOLDS = {"cpu_p95": 80.0, "mem_p95": 85.0, "disk_p95": 90.0}
FIRST_DAY = pd.Timestamp("2026-07-01")
GENERATED_AT = "2026-07-01T06:00:00+00:00"


# --------------------------------------------------------------------------- fixtures


def _servers(names: list[str], units: list[str]) -> pd.DataFrame:
    count = len(names)
    return pd.DataFrame(
        {
            "server_id": names,
            "business_unit": units,
            "region": ["eu-west" if i % 2 else "us-east" for i in range(count)],
            "environment": "prod",
            "criticality": ["critical" if i % 3 == 0 else "high" for i in range(count)],
            "cpu_cores": 16,
            "memory_gb": 64,
            "monthly_cost_usd": 1000.0,
        }
    )


def _risk(servers: pd.DataFrame, levels: dict[str, tuple[str, float, float]]) -> pd.DataFrame:
    """One row per server x metric; ``levels[server]`` = (level, days to breach, probability)
    of its memory series (NaN days: no breach); the other metrics are low."""
    rows = []
    for server in servers.itertuples(index=False):
        for metric in METRICS:
            level, days, probability = (
                levels.get(server.server_id, ("low", math.nan, 0.01))
                if metric == "mem_p95"
                else ("low", math.nan, 0.001)
            )
            breach = FIRST_DAY + pd.Timedelta(days=days - 1) if not math.isnan(days) else pd.NaT
            rows.append(
                {
                    "server_id": server.server_id,
                    "metric": metric,
                    "model": "gradient_boosting",
                    "threshold": THRESHOLDS[metric],
                    "current_p95": 70.0,
                    "forecast_peak": 95.0 if level != "low" else 60.0,
                    "peak_date": FIRST_DAY + pd.Timedelta(days=60),
                    "days_to_breach": days,
                    "breach_date": breach,
                    "breach_probability": probability,
                    "eoq_breach": False,
                    "seasonal_peak": True,
                    "risk_level": level,
                    "risk_reason": f"reason for {server.server_id}",
                    "business_unit": server.business_unit,
                    "region": server.region,
                    "environment": server.environment,
                    "criticality": server.criticality,
                }
            )
    frame = pd.DataFrame(rows)
    # As stage 06 writes it: one urgency rank per series (level, days, probability).
    order = frame.assign(
        _level=frame["risk_level"].map({"high": 0, "medium": 1, "low": 2})
    ).sort_values(
        ["_level", "days_to_breach", "breach_probability", "server_id", "metric"],
        ascending=[True, True, False, True, True],
        na_position="last",
    )
    frame.loc[order.index, "urgency_rank"] = range(1, len(frame) + 1)
    return frame.astype({"urgency_rank": int})


def _risk_summary(risk: pd.DataFrame) -> dict:
    def rollup(dimension: str) -> list[dict]:
        return [
            {
                dimension: str(value),
                "servers": int(rows["server_id"].nunique()),
                "servers_at_risk": int(
                    rows.loc[rows["risk_level"] != "low", "server_id"].nunique()
                ),
                "share_at_risk": 0.5,
                "high": int(rows.loc[rows["risk_level"] == "high", "server_id"].nunique()),
                "medium": int(rows.loc[rows["risk_level"] == "medium", "server_id"].nunique()),
            }
            for value, rows in risk.groupby(dimension)
        ]

    def counts(levels: pd.Series) -> dict[str, int]:
        return {level: int((levels == level).sum()) for level in ("high", "medium", "low")}

    # As stage 06 counts them: each server by its worst level over its metrics.
    severity = risk["risk_level"].map({"high": 0, "medium": 1, "low": 2})
    worst = severity.groupby(risk["server_id"]).min().map({0: "high", 1: "medium", 2: "low"})
    return {
        "servers": int(risk["server_id"].nunique()),
        "levels": {"series": counts(risk["risk_level"]), "servers": counts(worst)},
        "rollups": {"business_unit": rollup("business_unit"), "region": rollup("region")},
    }


def _model_row(model: str, mase: float, coverage: float, **extra: object) -> dict:
    return {
        "model": model,
        "series": 6,
        "mae": 1.5,
        "rmse": 2.0,
        "mape": 5.0,
        "smape": 5.1,
        "mase": mase,
        "mase_median": mase - 0.1,
        "beats_baseline_share": 0.75 if model != "seasonal_naive" else 0.0,
        "coverage": coverage,
        "interval_width": 4.0,
        **extra,
    }


SAME_SEASON = "the same season a year earlier"
BACKTEST_ORIGINS = "the backtest origins"


def _metrics() -> dict:
    overall = [
        _model_row("champion", 0.8, 0.79),
        _model_row("gradient_boosting", 0.9, 0.78),
        _model_row("seasonal_naive", 1.6, 0.81),
    ]
    overall[0]["mase_median"] = float("nan")  # a NaN in the input must become null
    by_metric = [
        _model_row(model, mase, 0.8, metric=metric)
        for metric in METRICS
        for model, mase in (("champion", 0.7), ("gradient_boosting", 0.8), ("seasonal_naive", 1.4))
    ]
    return {
        "interval_level": 0.8,
        "models": overall,
        "models_by_metric": by_metric,
        "champions": {"gradient_boosting": 18},
        "interval_calibration": {
            "gradient_boosting": BACKTEST_ORIGINS,
            "seasonal_naive": SAME_SEASON,
            "robust_trend": SAME_SEASON,
        },
    }


def _clusters(servers: pd.DataFrame) -> pd.DataFrame:
    """Server 0 is freed onto server 1 (a host); server 2 is downsized; the rest are optimal."""
    ids = servers["server_id"].tolist()
    frame = servers.assign(
        cluster=[i % 2 for i in range(len(ids))],
        cluster_label=["idle" if i % 2 == 0 else "steady" for i in range(len(ids))],
        cpu_p95=20.0,
        mem_p95=40.0,
        disk_p95=30.0,
        cpu_mean=15.0,
        mem_mean=35.0,
        disk_mean=28.0,
        cpu_growth=0.1,
        mem_growth=0.2,
        disk_growth=0.3,
        recommended_cores=16,
        recommended_memory_gb=64,
        finding="optimal",
        action="none",
        monthly_savings_usd=0.0,
        host_server_id=ids,
        freed=False,
        excluded_reason="finding optimal",
    )
    frame.loc[0, ["finding", "action", "monthly_savings_usd", "freed", "host_server_id"]] = [
        "idle",
        "decommission",
        1000.0,
        True,
        ids[1],
    ]
    frame.loc[1, ["finding", "action", "monthly_savings_usd", "recommended_cores"]] = [
        "over-provisioned",
        "downsize",
        400.0,
        8,
    ]
    frame.loc[2, ["finding", "action", "monthly_savings_usd", "recommended_cores"]] = [
        "over-provisioned",
        "downsize",
        250.0,
        4,
    ]
    frame["excluded_reason"] = np.where(frame["action"] == "none", "finding optimal", "")
    # As stage 07 counts them: the freed server its whole cost, its host nothing.
    frame["counted_savings_usd"] = frame["monthly_savings_usd"]
    frame.loc[0, "counted_savings_usd"] = frame.loc[0, "monthly_cost_usd"]
    frame.loc[1, "counted_savings_usd"] = 0.0
    frame["saving_kind"] = np.where(frame["counted_savings_usd"] > 0, "right-sizing", "")
    frame.loc[0, "saving_kind"] = "consolidation"
    frame.loc[1, "saving_kind"] = "none (hosts freed servers)"
    return frame


def _recommendations() -> dict:
    return {
        "k": 2,
        "silhouette": 0.4,
        "clusters": [
            {"cluster": 0, "label": "idle", "size": 3, "centroid": {"cpu_p95": 5.0}},
            {"cluster": 1, "label": "steady", "size": 3, "centroid": {"cpu_p95": 40.0}},
        ],
        "servers_freed": 1,
        "consolidation_savings_usd": 1000.0,
        "right_sizing_savings_usd": 250.0,
        "total_savings_usd": 1250.0,
        "savings_note": "monthly USD; freed servers count once",
    }


def _quality() -> dict:
    return {
        "date_start": "2025-06-01",
        "date_end": "2026-06-30",
        "days": 395,
        "metrics": {
            m: {"missing_share": 0.01, "min": 0.0, "max": 99.0, "mean": 40.0} for m in METRICS
        },
        "missing_server_days_share": 0.012,
        "warnings": [f"extra column dropped: {BOLD}"],
    }


def _cleaning() -> dict:
    return {
        "outliers": 7,
        "imputed": 11,
        "by_metric": {m: {"outliers": 2, "imputed": 3} for m in METRICS},
    }


def _forecasts(servers: pd.DataFrame, days: int = 5) -> pd.DataFrame:
    frames = []
    for server_id in servers["server_id"]:
        for metric in METRICS:
            dates = pd.date_range(FIRST_DAY, periods=days, freq="D")
            champion = pd.DataFrame(
                {
                    "server_id": server_id,
                    "metric": metric,
                    "date": dates,
                    "horizon": np.arange(1, days + 1),
                    "model": "gradient_boosting",
                    "yhat": np.linspace(50, 55, days),
                    "yhat_lower": np.linspace(45, 50, days),
                    "yhat_upper": np.linspace(55, 60, days),
                    "is_champion": True,
                }
            )
            frames += [champion, champion.assign(model="prophet", is_champion=False, yhat=1.0)]
    return pd.concat(frames, ignore_index=True)


class Fleet:
    """A small fleet's stage artifacts, as the report notebook reads them."""

    def __init__(self, names: list[str], units: list[str], levels: dict) -> None:
        self.servers = _servers(names, units)
        self.risk = _risk(self.servers, levels)
        self.risk_summary = _risk_summary(self.risk)
        self.metrics = _metrics()
        self.clusters = _clusters(self.servers)
        self.recommendations = _recommendations()
        self.quality = _quality()
        self.cleaning = _cleaning()
        self.forecasts = _forecasts(self.servers)

    def headline(self) -> dict:
        return rp.headline(
            servers=self.servers,
            quality=self.quality,
            cleaning=self.cleaning,
            risk=self.risk,
            risk_summary=self.risk_summary,
            metrics=self.metrics,
            recommendations=self.recommendations,
            run_id="ci-20260701",
            generated_at=GENERATED_AT,
        )

    def pdf(self, top_n: int = 20, charts: dict[str, bytes] | None = None) -> bytes:
        return build_pdf(
            self.headline(),
            rp.at_risk_table(self.risk, top_n),
            rp.accuracy_table(self.metrics),
            rp.cluster_table(self.recommendations, self.clusters),
            rp.recommendation_table(self.clusters),
            charts,
        )

    def workbook(self, max_forecast_rows: int | None = None) -> bytes:
        limits = {} if max_forecast_rows is None else {"max_forecast_rows": max_forecast_rows}
        return build_workbook(
            self.headline(),
            rp.at_risk_table(self.risk, include_low=True),
            rp.forecast_table(self.forecasts),
            rp.accuracy_table(self.metrics, by_metric=True),
            rp.server_cluster_table(self.clusters),
            rp.recommendation_table(self.clusters),
            rp.quality_table(self.quality, self.cleaning),
            **limits,
        )


LEVELS = {
    "srv-001": ("high", 12.0, 0.9),
    "srv-002": ("high", 5.0, 0.6),
    "srv-003": ("medium", 60.0, 0.4),
    "srv-004": ("medium", math.nan, 0.25),
}


@pytest.fixture
def fleet() -> Fleet:
    names = [f"srv-{i:03d}" for i in range(1, 7)]
    units = ["Payments", "Payments", "Trading", "Retail", "Retail", "Trading"]
    return Fleet(names, units, LEVELS)


@pytest.fixture
def hostile_fleet() -> Fleet:
    """Every server and business unit name is an injection attempt."""
    names = list(HOSTILE)
    units = [HOSTILE[(i + 1) % len(HOSTILE)] for i in range(len(HOSTILE))]
    levels = {name: ("high", 10.0 + i, 0.9) for i, name in enumerate(names)}
    return Fleet(names, units, levels)


def _pdf_pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages]


def _squash(text: str) -> str:
    """Text without whitespace: table cells wrap long words across lines."""
    return re.sub(r"\s+", "", text)


def _png(width: int = 400, height: int = 200) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (31, 56, 100)).save(buffer, format="PNG")
    return buffer.getvalue()


# --------------------------------------------------------------------------- text safety


@pytest.mark.parametrize("text", [*FORMULA_LIKE, "-2+3", "\t=1+1", "\r=1", "\uff1dSUM(1)"])
def test_excel_safe_quotes_formula_triggers(text: str) -> None:
    assert rp.excel_safe(text) == "'" + text


@pytest.mark.parametrize("text", ["srv-001", SCRIPT, BOLD, ENTITY, "Risk & Compliance", ""])
def test_excel_safe_keeps_other_text(text: str) -> None:
    assert rp.excel_safe(text) == text


def test_excel_safe_plain_values() -> None:
    assert rp.excel_safe(float("nan")) is None
    assert rp.excel_safe(float("inf")) is None
    assert rp.excel_safe(pd.NaT) is None
    assert rp.excel_safe(np.int64(3)) == 3 and type(rp.excel_safe(np.int64(3))) is int
    assert rp.excel_safe(True) is True
    aware = pd.Timestamp("2026-07-01 12:00", tz="Europe/London")
    assert rp.excel_safe(aware) == dt.datetime(2026, 7, 1, 11, 0)
    assert rp.excel_safe("a\x00b\x1fc") == "abc"  # XML-illegal characters would break the file


def test_pdf_safe_escapes_markup() -> None:
    assert rp.pdf_safe(BOLD) == "&lt;b&gt;bold&lt;/b&gt;"
    assert rp.pdf_safe(ENTITY) == "&amp;amp;"
    assert rp.pdf_safe(None) == "\u2013"
    assert rp.pdf_safe(float("nan"), missing="n/a") == "n/a"


# --------------------------------------------------------------------------- headline


def test_headline_has_documented_keys_and_is_strict_json(fleet: Fleet) -> None:
    summary = fleet.headline()
    json.dumps(summary, allow_nan=False)
    assert summary["schema_version"] == 1
    assert summary["generated_at"] == GENERATED_AT
    for section, keys in rp.HEADLINE_KEYS.items():
        assert set(keys) <= set(summary[section]), section
    assert summary["fleet"] == {
        "servers": 6,
        "series": 18,
        "date_start": "2025-06-01",
        "date_end": "2026-06-30",
        "days": 395,
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
        "breach_probability": 0.6,
        "criticality": "high",
        "business_unit": "Payments",
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
    assert "Intervals calibrated on" not in rp.accuracy_table(fleet.metrics).columns
    assert "Intervals calibrated on" not in " ".join(_pdf_pages(fleet.pdf()))


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
        rp.check_headline(summary)


# --------------------------------------------------------------------------- tables


def test_at_risk_table_follows_the_urgency_rank(fleet: Fleet) -> None:
    table = rp.at_risk_table(fleet.risk, top_n=10)
    # high first (sooner breach first), then medium (a breach before none), never low
    assert table["Server"].tolist() == ["srv-002", "srv-001", "srv-003", "srv-004"]
    assert table["Rank"].tolist() == [1, 2, 3, 4]
    assert table["Risk level"].tolist() == ["high", "high", "medium", "medium"]
    assert table.loc[0, "Metric"] == "Memory"
    assert rp.at_risk_table(fleet.risk, top_n=1)["Server"].tolist() == ["srv-002"]
    everything = rp.at_risk_table(fleet.risk, include_low=True)
    assert len(everything) == 18
    assert everything["Risk level"].tolist()[-1] == "low"
    # The rank decides, not the table's own idea of urgency (nor the row order).
    swapped = fleet.risk.copy()
    first, second = (
        (swapped["server_id"] == "srv-002") & (swapped["metric"] == "mem_p95"),
        (swapped["server_id"] == "srv-001") & (swapped["metric"] == "mem_p95"),
    )
    swapped.loc[first, "urgency_rank"], swapped.loc[second, "urgency_rank"] = 2, 1
    assert rp.at_risk_table(swapped, top_n=2)["Server"].tolist() == ["srv-001", "srv-002"]


def test_recommendation_table_counts_each_saving_once(fleet: Fleet) -> None:
    table = rp.recommendation_table(fleet.clusters).set_index("Server")
    assert table.loc["srv-001", "Monthly saving (USD)"] == 1000.0  # freed: its whole cost
    assert table.loc["srv-001", "Saving type"] == "consolidation"
    assert table.loc["srv-001", "Move onto"] == "srv-002"
    assert table.loc["srv-002", "Monthly saving (USD)"] == 0.0  # hosts srv-001
    assert table.loc["srv-003", "Monthly saving (USD)"] == 250.0
    total = fleet.recommendations["total_savings_usd"]
    assert table["Monthly saving (USD)"].sum() == pytest.approx(total)


def test_cluster_table_counts_findings(fleet: Fleet) -> None:
    table = rp.cluster_table(fleet.recommendations, fleet.clusters).set_index("Cluster")
    assert table.loc[0, "Idle"] == 1 and table.loc[0, "Freed"] == 1
    assert table.loc[1, "Over-provisioned"] == 1


def test_forecast_table_keeps_champions_only(fleet: Fleet) -> None:
    table = rp.forecast_table(fleet.forecasts)
    assert len(table) == int(fleet.forecasts["is_champion"].sum())
    assert list(table.columns) == [
        "Server",
        "Metric",
        "Date",
        "Model",
        "Forecast %",
        "Lower %",
        "Upper %",
    ]
    assert set(table["Model"]) == {"Gradient boosting"}


# --------------------------------------------------------------------------- PDF


def test_pdf_reads_back_with_key_figures(fleet: Fleet) -> None:
    pages = _pdf_pages(fleet.pdf())
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


def test_pdf_is_reproducible(fleet: Fleet) -> None:
    assert fleet.pdf() == fleet.pdf()


def test_pdf_long_table_repeats_its_header() -> None:
    names = [f"srv-{i:03d}" for i in range(1, 121)]
    levels = {name: ("high", float(i + 1), 0.9) for i, name in enumerate(names)}
    long_fleet = Fleet(names, ["Payments"] * len(names), levels)
    pages = [_squash(text) for text in _pdf_pages(long_fleet.pdf(top_n=120))]
    with_rows = [i for i, text in enumerate(pages) if "srv-120" in text or "srv-060" in text]
    table_pages = [i for i, text in enumerate(pages) if "Forecastpeak%" in text]
    assert len(table_pages) >= 2  # the table spans pages ...
    assert set(with_rows) <= set(table_pages)  # ... and every page of it has the header


def test_pdf_embeds_charts_and_skips_empty_ones(fleet: Fleet) -> None:
    with_chart = fleet.pdf(charts={"Fleet utilisation": _png(), "Nothing yet": b""})
    reader = pypdf.PdfReader(io.BytesIO(with_chart))
    assert sum(len(page.images) for page in reader.pages) == 1
    text = "\n".join(_pdf_pages(with_chart))
    assert "Fleet utilisation" in text and "Nothing yet" not in text
    assert "Charts" not in "\n".join(_pdf_pages(fleet.pdf(charts={})))


def test_pdf_rejects_an_unreadable_chart(fleet: Fleet) -> None:
    with pytest.raises(ValueError, match="Broken"):
        fleet.pdf(charts={"Broken": b"not a png"})


def test_pdf_shows_hostile_names_literally(hostile_fleet: Fleet) -> None:
    pdf = hostile_fleet.pdf(charts={BOLD: _png()})
    text = _squash("\n".join(_pdf_pages(pdf)))
    # escaped, not parsed: the tags print as typed, the entity is not decoded
    for name in HOSTILE:
        assert _squash(name) in text, name
    assert _squash(f"extra column dropped: {BOLD}") in text


# --------------------------------------------------------------------------- workbook


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

    at_risk = book["At risk"]
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
        "Champion (per metric)": rp.CHAMPION_CALIBRATION,
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


def test_excel_safe_is_what_stops_the_formula() -> None:
    # openpyxl stores a str starting with "=" as a formula unless the text is made safe first
    sheet = openpyxl.Workbook().active
    sheet["A1"] = HYPERLINK
    sheet["A2"] = rp.excel_safe(HYPERLINK)
    assert sheet["A1"].data_type == "f"
    assert sheet["A2"].data_type == "s"
