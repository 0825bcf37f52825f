"""Real monitoring exports and short histories, through the real runner to the reports.

- params/example_bitbrains.yaml: a month of three real Bitbrains VMs (format vm_trace), no
  disk metric, CPU values above 100 %.
- params/example_cloudwatch.yaml: 62 days of a real auto-scaling group's CPU exported from
  CloudWatch (format cloudwatch_csv, a mapping file), CPU only.
- A fleet with 28, 60, 92 and 260 days of history and one server growing into its CPU
  threshold inside the horizon: every server is forecast, and the growing one is flagged.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pypdf
import pytest

from capacity_forecaster.core.params import SyntheticParams
from capacity_forecaster.ingest import synthetic
from tests.cli import own_data_params, run_all
from tests.conftest import PARAMS_DIR

pytestmark = pytest.mark.e2e

END_DATE = pd.Timestamp("2026-06-30")
GROWING = "srv-00002"
CPU_THRESHOLD = 80.0  # the default risk threshold of cpu_p95
DAYS_TO_THRESHOLD = 20  # after the last day of history, on the growing server's trend


def _succeeded(result, root: Path) -> dict:
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["status"] == "succeeded"
    return manifest


def _run_example(name: str, tmp_path: Path) -> Path:
    """Run params/example_<name>.yaml to the end under ``tmp_path``; its run folder."""
    result = run_all(
        "--params",
        str(PARAMS_DIR / f"example_{name}.yaml"),
        "--run-id",
        name,
        "--set",
        f"run.output_root={tmp_path}",
    )
    _succeeded(result, tmp_path / name)
    return tmp_path / name


def test_the_bitbrains_example_runs_to_the_reports(tmp_path: Path) -> None:
    root = _run_example("bitbrains", tmp_path)

    quality = json.loads((root / "validated" / "quality.json").read_text())
    assert quality["source"]["format"] == "vm_trace" and quality["source"]["export_files"] == 3
    assert quality["source"]["counts"]["partial_days_by_server"] == {"1": 2, "407": 2, "412": 2}
    assert quality["metrics_monitored"] == ["cpu_p95", "mem_p95"]
    assert quality["clipped_over_100"] == {"407": {"cpu_p95": 17}}
    assert (quality["servers"], quality["days"]) == (3, 30)

    risk = pd.read_parquet(root / "risk" / "risk.parquet")
    assert sorted(risk["metric"].unique()) == ["cpu_p95", "mem_p95"]  # disk: not monitored
    assert sorted(risk["server_id"].unique()) == ["1", "407", "412"]
    metrics = json.loads((root / "models" / "metrics.json").read_text())
    assert metrics["backtest"]["scored_horizon_days"] < metrics["backtest"]["forecast_horizon_days"]
    assert metrics["backtest"]["adjustments"]

    summary = json.loads((root / "reports" / "summary.json").read_text())
    assert summary["fleet"]["metrics_monitored"] == ["cpu_p95", "mem_p95"]
    assert summary["forecast"]["scored_horizon_days"] == metrics["backtest"]["scored_horizon_days"]
    index = (root / "index.html").read_text()
    assert "Disk not monitored" in index and "intervals beyond extrapolated" in index
    pdf = pypdf.PdfReader(io.BytesIO((root / "reports" / "summary.pdf").read_bytes()))
    text = " ".join(page.extract_text() for page in pdf.pages)
    assert "Not monitored: Disk" in " ".join(text.split())


def test_the_cloudwatch_example_runs_to_the_reports(tmp_path: Path) -> None:
    root = _run_example("cloudwatch", tmp_path)
    quality = json.loads((root / "validated" / "quality.json").read_text())
    assert quality["source"]["format"] == "cloudwatch_csv"
    assert quality["source"]["counts"]["samples_read"] == 18_050
    assert quality["metrics_monitored"] == ["cpu_p95"]
    assert (quality["date_start"], quality["date_end"]) == ("2014-05-14", "2014-07-14")
    risk = pd.read_parquet(root / "risk" / "risk.parquet")
    assert risk[["server_id", "metric", "risk_level"]].values.tolist() == [
        ["asg-web-01", "cpu_p95", "high"]
    ]
    assert "Memory, Disk not monitored" in (root / "index.html").read_text()


def _fleet_growing_into_its_threshold(days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A synthetic fleet of ``days`` whose ``GROWING`` server's CPU climbs steadily (with a
    weekly swing and noise) to cross ``CPU_THRESHOLD`` ``DAYS_TO_THRESHOLD`` days after the end."""
    metrics, servers = synthetic.generate_fleet(
        SyntheticParams(
            n_servers=4, days=days, end_date=END_DATE.date(), outlier_share=0, missing_share=0
        ),
        seed=5,
    )
    rows = metrics["server_id"] == GROWING
    t = ((metrics.loc[rows, "date"] - metrics.loc[rows, "date"].min()).dt.days).to_numpy()
    start, end = 40.0, CPU_THRESHOLD
    slope = (end - start) / (days - 1 + DAYS_TO_THRESHOLD)
    noise = np.random.default_rng(1).normal(0, 0.8, len(t))
    metrics.loc[rows, "cpu_p95"] = start + slope * t + 2.0 * np.sin(2 * np.pi * t / 7) + noise
    return metrics, servers


@pytest.mark.parametrize("days", [28, 60, 92, 260])
def test_a_short_history_forecasts_every_server_and_flags_the_growing_one(
    days: int, tmp_path: Path
) -> None:
    metrics, servers = _fleet_growing_into_its_threshold(days)
    params = own_data_params(tmp_path, metrics, servers)
    result = run_all("--params", str(params), "--run-id", "short")
    root = tmp_path / "out" / "short"
    _succeeded(result, root)

    forecasts = pd.read_parquet(root / "forecasts" / "forecasts.parquet")
    champions = forecasts[forecasts["is_champion"]]
    assert champions.groupby(["server_id", "metric"]).ngroups == 4 * 3  # every series
    backtest = json.loads((root / "models" / "metrics.json").read_text())["backtest"]
    assert len(backtest["origins"]) >= 2
    past_scored = champions["horizon"] > backtest["scored_horizon_days"]
    assert (champions["beyond_backtest"] == past_scored).all()
    if days < 200:  # 3 origins 28 days apart, scored on 90 days, need 160 days after 14
        assert backtest["scored_horizon_days"] < 90 and backtest["adjustments"]

    risk = pd.read_parquet(root / "risk" / "risk.parquet").set_index(["server_id", "metric"])
    growing = risk.loc[(GROWING, "cpu_p95")]
    assert growing["risk_level"] == "high", growing.to_dict()
    assert 0 < growing["days_to_breach"] <= DAYS_TO_THRESHOLD + 15, growing.to_dict()
    if days == 28:  # under 56 days of history, backtested on under half the horizon
        assert growing["trust_grade"] == "D", growing.to_dict()
        assert "trust D: the date rests on too little (28 days of history" in growing["risk_reason"]
    if days == 260:
        assert growing["trust_grade"] in ("A", "B", "C"), growing.to_dict()
    steady = risk.drop(index=(GROWING, "cpu_p95"))
    assert (steady["days_to_breach"].isna() | (steady["days_to_breach"] > 0)).all()


def test_powered_off_and_stale_servers_are_listed_to_reclaim_not_forecast(
    tmp_path: Path,
) -> None:
    metrics, servers = synthetic.generate_fleet(
        SyntheticParams(n_servers=5, days=90, end_date=END_DATE.date(), missing_share=0), seed=2
    )
    metrics.loc[metrics["server_id"] == "srv-00001", ["cpu_p95", "mem_p95", "disk_p95"]] = 0.0
    metrics = metrics[
        (metrics["server_id"] != "srv-00003")
        | (metrics["date"] <= END_DATE - pd.Timedelta(days=30))
    ]
    params = own_data_params(tmp_path, metrics, servers)
    result = run_all("--params", str(params), "--run-id", "reclaim")
    root = tmp_path / "out" / "reclaim"
    _succeeded(result, root)

    costs = servers.set_index("server_id")["monthly_cost_usd"]
    quality = json.loads((root / "validated" / "quality.json").read_text())
    assert [(r["server_id"], r["reason"], r["last_seen"]) for r in quality["reclamation"]] == [
        ("srv-00001", "powered off", None),
        ("srv-00003", "stale", "2026-05-31"),
    ]
    assert quality["reclamation"][1]["monthly_cost_usd"] == pytest.approx(costs["srv-00003"])
    forecasts = pd.read_parquet(root / "forecasts" / "forecasts.parquet")
    assert set(forecasts["server_id"]) == {"srv-00002", "srv-00004", "srv-00005"}
    clusters = pd.read_parquet(root / "clusters" / "clusters.parquet")
    assert set(clusters["server_id"]) == {"srv-00002", "srv-00004", "srv-00005"}
    summary = json.loads((root / "reports" / "summary.json").read_text())
    assert [c["server_id"] for c in summary["data_quality"]["reclamation"]] == [
        "srv-00001",
        "srv-00003",
    ]
    index = (root / "index.html").read_text()
    assert "Not forecast: set aside in loading" in index
    assert "srv-00003: stale, last seen 2026-05-31" in index
    pdf = pypdf.PdfReader(io.BytesIO((root / "reports" / "summary.pdf").read_bytes()))
    text = " ".join(" ".join(page.extract_text() for page in pdf.pages).split())
    assert "Not forecast: 2 servers set aside in loading" in text
    assert "srv-00001: powered off" in text
