"""A server that breaches only at month end, through the real pipeline: the user's own files,
run_all.py stages 02-08, and what the products and reports say about it.

The fleet is built by hand so the answer is known: "spiky" runs at about 58 % CPU and rises by
21 points on the last two business days of every month (US), growing 1.5 points a month, so
its month ends cross 80 % within the horizon while its other days stay near 62 %; "calm" is the
same server without the month-end load. Neither is over the threshold now.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from capacity_forecaster.core.calendar_windows import window_flags
from capacity_forecaster.core.params_calendar import CalendarParams
from tests.cli import own_data_params, run_all

DAYS = 500
END = pd.Timestamp("2026-06-30")
SPIKE = 21.0


def _fleet() -> tuple[pd.DataFrame, pd.DataFrame]:
    dates = pd.date_range(end=END, periods=DAYS, freq="D")
    month_end = window_flags(dates, "US", CalendarParams())["month_end"]
    rng = np.random.default_rng(3)
    # Flat, then growing 1.5 points a month over the last 150 days: 51 % -> 58.5 % by the end,
    # so June's month end peaks near 79.5 % and July's and August's cross 80 %.
    growth = np.clip(np.arange(DAYS) - (DAYS - 150), 0, None) * 0.05
    weekend = np.asarray(dates.day_of_week >= 5)
    base = 51.0 + growth - 3.0 * weekend
    rows = []
    for server, spike in (("spiky", SPIKE), ("calm", 0.0)):
        cpu = base + spike * month_end + rng.normal(0, 0.8, DAYS)
        rows.append(
            pd.DataFrame(
                {
                    "date": dates.strftime("%Y-%m-%d"),
                    "server_id": server,
                    "cpu_p95": cpu.round(2),
                    "mem_p95": (40.0 + rng.normal(0, 0.5, DAYS)).round(2),
                    "disk_p95": (30.0 + rng.normal(0, 0.3, DAYS)).round(2),
                }
            )
        )
    servers = pd.DataFrame(
        {
            "server_id": ["spiky", "calm"],
            "business_unit": ["Payments", "Payments"],
            "region": ["us-east-1", "us-east-1"],
            "environment": ["prod", "prod"],
            "criticality": ["high", "high"],
            "cpu_cores": [16, 16],
            "memory_gb": [64, 64],
            "disk_gb": [500, 500],
            "monthly_cost_usd": [900.0, 900.0],
        }
    )
    return pd.concat(rows, ignore_index=True), servers


@pytest.fixture(scope="module")
def month_end_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("month-end")
    metrics, servers = _fleet()
    params = own_data_params(folder, metrics, servers)
    result = run_all(
        "--params", str(params), "--run-id", "month-end", "--only", "02,03,04,05,06,07,08",
        "--set", "cluster.k=2",
        "--set", "models.enabled=[seasonal_naive,robust_trend,prophet,gradient_boosting]",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return folder / "out" / "month-end"


@pytest.mark.e2e
def test_the_month_end_breach_is_dated_on_a_month_end_and_named(month_end_run: Path) -> None:
    risk = pd.read_parquet(month_end_run / "risk" / "risk.parquet").set_index(
        ["server_id", "metric"]
    )
    spiky, calm = risk.loc[("spiky", "cpu_p95")], risk.loc[("calm", "cpu_p95")]
    assert not spiky["over_now"] and spiky["risk_level"] in ("high", "medium")
    breach = pd.DatetimeIndex([spiky["breach_date"]])
    assert window_flags(breach, "US", CalendarParams())["month_end"][0], spiky["breach_date"]
    assert spiky["breach_window"].startswith("month_end") and spiky["breach_window_only"]
    assert "month end" in spiky["risk_reason"] and "days only" in spiky["risk_reason"]
    assert spiky["breach_probability"] >= 0.5
    assert calm["risk_level"] == "low" and pd.isna(calm["breach_date"])

    summary = json.loads((month_end_run / "risk" / "summary.json").read_text())
    assert summary["window_breaches"]["month_end"]["window_only"] >= 1


@pytest.mark.e2e
def test_cleaning_kept_the_month_ends_and_the_reports_list_the_peak(month_end_run: Path) -> None:
    features = pd.read_parquet(month_end_run / "processed" / "features.parquet")
    cpu = features[(features["server_id"] == "spiky") & (features["metric"] == "cpu_p95")]
    month_end = cpu["calendar_windows"].str.contains("month_end")
    assert not cpu.loc[month_end, "is_outlier"].any()
    assert cpu.loc[month_end, "value"].mean() - cpu.loc[~month_end, "value"].mean() > 15

    effects = pd.read_parquet(month_end_run / "processed" / "calendar_effects.parquet")
    row = effects[
        (effects["server_id"] == "spiky")
        & (effects["metric"] == "cpu_p95")
        & (effects["window"] == "month_end")
    ].iloc[0]
    assert row["clear"] and row["uplift_pts"] == pytest.approx(SPIKE, abs=2.5)

    sheet = load_workbook(month_end_run / "reports" / "details.xlsx", read_only=True)[
        "Recurring peaks"
    ]
    cells = [str(c) for row in sheet.iter_rows(values_only=True) for c in row if c is not None]
    assert "spiky" in cells and any(c.startswith("month end +2") for c in cells)
    assert "calm" not in cells
