"""A small fleet's stage products, as notebook 08 reads them, for the reporting tests.

``Fleet`` holds every product the reports are built from; ``small_fleet`` is an ordinary
fleet, ``hostile_fleet`` one whose server and business unit names are injection attempts.
"""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pandas as pd
import pypdf
from PIL import Image

from capacity_forecaster.reporting import headline, tables
from capacity_forecaster.reporting.pdf import build_pdf
from capacity_forecaster.reporting.workbook import build_workbook
from capacity_forecaster.risk import rollups

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


# --------------------------------------------------------------------------- products


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
                    "over_now": False,
                    "forecast_peak": 95.0 if level != "low" else 60.0,
                    "peak_date": FIRST_DAY + pd.Timedelta(days=60),
                    "days_to_breach": days,
                    "breach_date": breach,
                    "breach_probability": probability,
                    "breach_window": "",
                    "breach_window_only": False,
                    "seasonal_peak": True,
                    "risk_level": level,
                    "risk_reason": f"reason for {server.server_id}",
                    "trust_grade": "B" if level == "high" else "A",
                    "trust_note": "120 days of history" if level == "high" else "no weakness",
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
        "series_over_now": int(risk["over_now"].sum()),
        "earliest_breaches": rollups.earliest_breaches(risk),
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
        "backtest": {
            "origins": ["2026-03-02", "2026-03-30", "2026-04-27"],
            "scored_horizon_days": 5,
            "step_days": 28,
            "forecast_horizon_days": 5,
            "adjustments": [],
        },
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
    # Sizes and projections as stage 07 writes them; srv-004's memory, at medium risk, upsized.
    frame["disk_gb"] = 500.0
    frame["recommended_disk_gb"] = 500.0
    frame["projected_cpu_peak"] = 20.0 * frame["cpu_cores"] / frame["recommended_cores"]
    frame["projected_mem_peak"] = 40.0
    frame["projected_disk_peak"] = 30.0
    frame["monthly_cost_change_usd"] = -frame["monthly_savings_usd"]
    frame["move_crosses"] = ""
    frame.loc[3, ["finding", "action", "recommended_memory_gb"]] = [
        "under-provisioned",
        "upsize",
        96,
    ]
    frame.loc[3, ["projected_mem_peak", "monthly_cost_change_usd", "excluded_reason"]] = [
        60.0,
        250.0,
        "finding under-provisioned",
    ]
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
            m: {
                "monitored": True,
                "missing_share": 0.01,
                "min": 0.0,
                "max": 99.0,
                "mean": 40.0,
                "servers_not_reporting": [],
                "clipped_over_100": 0,
            }
            for m in METRICS
        },
        "metrics_monitored": list(METRICS),
        "missing_server_days_share": 0.012,
        "clipped_over_100": {},
        "source": {"source": "synthetic", "format": "daily"},
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


def _forecast_summary(forecasts: pd.DataFrame) -> dict:
    """forecasts/summary.json as stage 05 writes it."""
    return {
        "rows": len(forecasts),
        "series": int(forecasts.groupby(["server_id", "metric"]).ngroups),
        "models": sorted(forecasts["model"].unique()),
        "first_date": forecasts["date"].min().date().isoformat(),
        "last_date": forecasts["date"].max().date().isoformat(),
        "horizon_days": int(forecasts["horizon"].max()),
    }


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
        self.forecast_summary = _forecast_summary(self.forecasts)

    def headline(self) -> dict:
        return headline.headline(
            servers=self.servers,
            quality=self.quality,
            cleaning=self.cleaning,
            forecast=self.forecast_summary,
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
            tables.at_risk_table(self.risk, top_n),
            tables.accuracy_table(self.metrics),
            tables.cluster_table(self.recommendations, self.clusters),
            tables.recommendation_table(self.clusters),
            charts,
        )

    def workbook(self, max_forecast_rows: int | None = None) -> bytes:
        limits = {} if max_forecast_rows is None else {"max_forecast_rows": max_forecast_rows}
        return build_workbook(
            self.headline(),
            tables.at_risk_table(self.risk, include_low=True),
            tables.forecast_table(self.forecasts),
            tables.accuracy_table(self.metrics, by_metric=True),
            tables.server_cluster_table(self.clusters),
            tables.recommendation_table(self.clusters),
            tables.quality_table(self.quality, self.cleaning),
            **limits,
        )


LEVELS = {
    "srv-001": ("high", 12.0, 0.9),
    "srv-002": ("high", 5.0, 0.6),
    "srv-003": ("medium", 60.0, 0.4),
    "srv-004": ("medium", math.nan, 0.25),
}


def small_fleet() -> Fleet:
    """Six servers in three business units: two high, two medium, two low."""
    names = [f"srv-{i:03d}" for i in range(1, 7)]
    units = ["Payments", "Payments", "Trading", "Retail", "Retail", "Trading"]
    return Fleet(names, units, LEVELS)


def over_now_fleet() -> Fleet:
    """The small fleet with srv-005's memory over its 85 % threshold now (P95 92.3 %): high,
    0 days to breach, dated the history's last day, as stage 06 writes it."""
    fleet = small_fleet()
    risk = fleet.risk
    row = (risk["server_id"] == "srv-005") & (risk["metric"] == "mem_p95")
    risk.loc[row, ["risk_level", "over_now", "current_p95", "days_to_breach"]] = [
        "high",
        True,
        92.3,
        0.0,
    ]
    risk.loc[row, "breach_date"] = FIRST_DAY - pd.Timedelta(days=1)
    risk["urgency_rank"] = risk["urgency_rank"] + 1
    risk.loc[row, "urgency_rank"] = 1
    fleet.risk = risk.sort_values("urgency_rank", ignore_index=True)
    fleet.risk_summary = _risk_summary(fleet.risk)
    return fleet


def hostile_fleet() -> Fleet:
    """Every server and business unit name is an injection attempt."""
    names = list(HOSTILE)
    units = [HOSTILE[(i + 1) % len(HOSTILE)] for i in range(len(HOSTILE))]
    levels = {name: ("high", 10.0 + i, 0.9) for i, name in enumerate(names)}
    return Fleet(names, units, levels)


# --------------------------------------------------------------------------- reading back


def pdf_pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages]


def squash(text: str) -> str:
    """Text without whitespace: table cells wrap long words across lines."""
    return re.sub(r"\s+", "", text)


def png(width: int = 400, height: int = 200) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (31, 56, 100)).save(buffer, format="PNG")
    return buffer.getvalue()
