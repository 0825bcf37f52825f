#!/usr/bin/env python
"""Forecast accuracy on real VMs: the Bitbrains Rnd trace's daily aggregates, a holdout at the end.

    .venv/bin/python benchmarks/real_accuracy.py                       # 14-day holdout
    .venv/bin/python benchmarks/real_accuracy.py --holdout 14,28       # both, one after the other
    make peers-real ARGS="--holdout 14,28"                             # with AutoETS and AutoTheta
    .venv/bin/python benchmarks/real_accuracy.py --end-to-end          # seconds of a whole run_all.py

Reads ../shared/data/real/bitbrains_rnd/daily_vms_001_150.csv (150 VMs, 2013-06-30 to
2013-09-29; not part of the project: benchmarks may read ../shared, tests never do). Each row
becomes a day of the daily contract: CPU P95 in percent, memory P95 used over the day's
provisioned memory; disk is not in the trace (not monitored). A day with fewer than 80 % of
its 288 five-minute samples is dropped, as ``data.min_day_coverage`` drops it from a samples
export. The rows then go through stage 02's validation (CPU above 100 % clipped, all-zero days
and stale VMs set aside) and stage 03's cleaning, as a run would take them.

The last ``--holdout`` days are cut off; on the rest, the project's backtest (fitted to that
history: ``backtest_plan``), champion choice and intervals run as stage 04 runs them, every
model is fitted and forecasts the holdout, and each series is scored on it beside the peers:
naive (the last value), seasonal-naive (ours), and with ``--peers`` statsforecast's AutoETS and
AutoTheta (``peers.py``). MASE is scaled by the in-sample seasonal-naive-7 error. Prints, per
model and metric: median and mean MASE, the share of series beating seasonal-naive, 80 %
interval coverage on the holdout and the coverage the backtest reported; and the seconds.

``--end-to-end`` instead writes the whole trace as a user's own daily files (metrics.csv and
servers.csv, the inventory's labels made up) and times ``run_all.py`` on them, stages 02 to 09
with the default params but ``forecast.horizon_days`` 28 and origins a week apart.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import peers  # benchmarks/peers.py, beside this script
from forecast_accuracy import forecast_holdout  # benchmarks/forecast_accuracy.py

from capacity_forecaster.cleaning import features
from capacity_forecaster.core import scoring
from capacity_forecaster.core.params import parse_params
from capacity_forecaster.core.vocabulary import BASELINE_MODEL
from capacity_forecaster.forecasting import backtest, intervals
from capacity_forecaster.forecasting.models import model_factories
from capacity_forecaster.ingest.validate import validate_metrics

SERIES = ["server_id", "metric"]
DEFAULT_CSV = (
    Path(__file__).resolve().parents[2] / "shared/data/real/bitbrains_rnd/daily_vms_001_150.csv"
)
SAMPLES_PER_DAY = 288  # five-minute samples
MIN_DAY_COVERAGE = 0.8
# The peers: our seasonal-naive baseline, the naive last value, statsforecast's models.
PEERS = ("naive", BASELINE_MODEL, "auto_ets", "auto_theta")


def daily_contract(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The trace's daily aggregates as the daily metrics table and a servers table."""
    raw = pd.read_csv(path)
    full = raw[raw["n_samples"] >= MIN_DAY_COVERAGE * SAMPLES_PER_DAY]
    memory = np.where(
        full["mem_cap_kb"] > 0, 100 * full["mem_used_kb_p95"] / full["mem_cap_kb"], 0.0
    )
    cpu = np.where(full["cpu_cap_mhz"] > 0, full["cpu_pct_p95"], 0.0)
    metrics = pd.DataFrame(
        {
            "date": pd.to_datetime(full["date_utc"]),
            "server_id": full["vm_id"].astype(str),
            "cpu_p95": cpu,
            "mem_p95": np.minimum(memory, 100.0),
        }
    )
    last = raw.sort_values("date_utc").groupby("vm_id").tail(1)
    servers = pd.DataFrame(
        {
            "server_id": last["vm_id"].astype(str),
            "cpu_cores": last["cpu_cores"].clip(lower=1),
            "memory_gb": (last["mem_cap_kb"] / 1024**2).clip(lower=0.5),
            "country": "NL",  # Bitbrains runs in Amsterdam: Dutch public holidays
        }
    )
    print(
        f"{path.name}: {len(raw)} VM-days, {len(raw) - len(full)} partial days dropped "
        f"(under {MIN_DAY_COVERAGE:.0%} of {SAMPLES_PER_DAY} samples)"
    )
    return metrics, servers


def evaluate(metrics: pd.DataFrame, servers: pd.DataFrame, holdout_days: int, args) -> pd.DataFrame:
    """Backtest, choose, fit and forecast on all but the last ``holdout_days``; score the holdout."""
    params = parse_params(
        {
            "models": {
                "enabled": args.models.split(","),
                "backtest_origins": args.backtest_origins,
                "backtest_step_days": args.step,
            },
            "forecast": {"horizon_days": holdout_days},
            "compute": {"n_jobs": args.n_jobs},
        }
    )
    started = time.perf_counter()
    last_day = metrics["date"].max()
    cut = last_day - pd.Timedelta(days=holdout_days)
    validated = validate_metrics(
        metrics[metrics["date"] <= cut],
        "bitbrains",
        max_missing_share=1.0,
        min_history_days=params.data.min_history_days,
        over_100="clip",
        stale_after_days=params.data.stale_after_days,
    )
    train_frame, _ = features.build_features(validated.frame, servers, params.features)
    train = train_frame[[*SERIES, "date", "value", "is_imputed"]]
    everything, _ = features.build_features(
        validate_metrics(
            metrics, "bitbrains", max_missing_share=1.0, min_history_days=1, over_100="clip"
        ).frame,
        servers,
        params.features,
    )
    holdout = everything[(everything["date"] > cut) & ~everything["is_imputed"]]
    holdout = holdout[[*SERIES, "date", "value"]].rename(columns={"value": "actual"})
    n_series = train.groupby(SERIES).ngroups
    print(
        f"\nholdout {holdout_days} days after {cut.date()}: {n_series} series "
        f"({len(validated.set_aside)} VMs set aside as powered off or stale)"
    )
    factories = model_factories(params)
    result = backtest.run(
        train,
        servers,
        factories,
        horizon_days=holdout_days,
        n_origins=params.models.backtest_origins,
        step_days=params.models.backtest_step_days,
        interval=params.models.interval,
    )
    print("backtest:", result.report["backtest"])
    dates = pd.date_range(cut + pd.Timedelta(days=1), periods=holdout_days, freq="D")
    scale = scoring.seasonal_naive_scale(train).reset_index()
    forecasts, seconds = forecast_holdout(factories, train, servers, dates, n_series)
    forecasts = forecasts.merge(scale, on=SERIES, how="left")
    forecasts["horizon"] = (forecasts["date"] - cut).dt.days
    forecasts = intervals.apply(
        forecasts, result.calibration, scored_horizon_days=result.plan.horizon_days
    )
    naive = _naive(train, dates).merge(scale, on=SERIES, how="left")
    parts = [forecasts, naive]
    if args.peers:
        peer_rows, _ = peers.peer_forecasts(
            train[[*SERIES, "date", "value"]],
            dates,
            params.models.interval,
            args.n_jobs,
            names=("auto_theta", "auto_ets"),
        )
        parts.append(peer_rows.merge(scale, on=SERIES, how="left"))
    forecasts = pd.concat(parts, ignore_index=True)
    picked = forecasts.merge(result.champions[[*SERIES, "champion"]], on=SERIES)
    champion = picked[picked["model"] == picked["champion"]].drop(columns="champion")
    scored = pd.concat([forecasts, champion.assign(model="champion")]).merge(
        holdout, on=[*SERIES, "date"], how="inner"
    )
    per_series = scoring.score(scored, ["model", *SERIES])
    baseline = per_series[per_series["model"] == BASELINE_MODEL].set_index(SERIES)["mase"]
    per_series = per_series.join(baseline.rename("baseline"), on=SERIES)
    reported = {row["model"]: row["coverage"] for row in result.report["models"]}
    _print_tables(per_series, reported)
    print(f"\nchampions: {result.champions['champion'].value_counts().to_dict()}")
    print(f"seconds, backtest to scored holdout: {time.perf_counter() - started:.0f}")
    print("fit seconds per series:", {k: round(v, 4) for k, v in seconds.items()})
    return per_series.assign(holdout=holdout_days)


def _naive(train: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """Each series' last value, held over ``dates`` (no interval)."""
    last = train.sort_values("date").groupby(SERIES).tail(1)[[*SERIES, "value"]]
    grid = last.merge(pd.DataFrame({"date": dates}), how="cross")
    return grid.rename(columns={"value": "yhat"}).assign(
        model="naive", yhat_lower=np.nan, yhat_upper=np.nan
    )


def _print_tables(per_series: pd.DataFrame, reported: dict[str, float]) -> None:
    work = per_series.assign(beats=per_series["mase"] < per_series["baseline"])
    for metric, group in [("all", work), *work.groupby("metric")]:
        table = group.groupby("model").agg(
            series=("mase", "size"),
            mase_median=("mase", "median"),
            mase_mean=("mase", "mean"),
            beats_seasonal_naive=("beats", "mean"),
            coverage=("coverage", "mean"),
        )
        if metric == "all":
            table["coverage_backtest"] = pd.Series(reported)
        best_peer = table.loc[table.index.isin(PEERS), "mase_median"].min()
        table["median_vs_best_peer"] = table["mase_median"] / best_peer
        print(f"\n{metric}: (best peer median MASE {best_peer:.3f})")
        print(table.sort_values("mase_median").round(3).to_string())


def end_to_end(metrics: pd.DataFrame, servers: pd.DataFrame) -> None:
    """Time ``run_all.py`` on the trace written as a user's own daily files."""
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="cf-bitbrains-") as folder:
        work = Path(folder)
        metrics.to_csv(work / "metrics.csv", index=False)
        servers.assign(
            business_unit="research",
            region="nl-ams",
            environment="prod",
            criticality="medium",
            disk_gb=100,
            monthly_cost_usd=50.0,
        ).to_csv(work / "servers.csv", index=False)
        params = work / "params.yaml"
        params.write_text(
            "run: {name: bitbrains, output_root: out}\n"
            "data: {source: file, metrics_path: metrics.csv, servers_path: servers.csv}\n"
            "models: {backtest_step_days: 7}\n"
            "forecast: {horizon_days: 28}\n"
        )
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, str(root / "run_all.py"), "--params", str(params), "--run-id", "e2e"],
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        status = "succeeded" if result.returncode == 0 else "failed: " + result.stderr[-500:]
        print(f"run_all.py on {metrics['server_id'].nunique()} VMs: {status} in {seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--holdout", default="14", help="days held out; comma-separated runs")
    parser.add_argument(
        "--models",
        default="seasonal_naive,robust_trend,prophet,random_forest,gradient_boosting,recent_level",
    )
    parser.add_argument("--backtest-origins", type=int, default=3)
    parser.add_argument("--step", type=int, default=7, help="days between backtest origins")
    parser.add_argument("--n-jobs", type=int, default=-1)
    parser.add_argument("--peers", action="store_true", help="also AutoETS and AutoTheta")
    parser.add_argument("--end-to-end", action="store_true", help="time a whole run_all.py")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.csv.is_file():
        raise SystemExit(f"{args.csv}: not found; pass --csv with the Bitbrains daily aggregates")
    if args.peers:
        peers.check_installed()
    metrics, servers = daily_contract(args.csv)
    if args.end_to_end:
        end_to_end(metrics, servers)
        return
    for holdout_days in (int(h) for h in args.holdout.split(",")):
        evaluate(metrics, servers, holdout_days, args)


if __name__ == "__main__":
    main()
