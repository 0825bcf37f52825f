#!/usr/bin/env python
"""Forecast accuracy on a synthetic fleet with a holdout the models never see.

    .venv/bin/python benchmarks/forecast_accuracy.py                # 200 servers, 90-day holdout
    .venv/bin/python benchmarks/forecast_accuracy.py --servers 50 --models seasonal_naive,gradient_boosting
    .venv/bin/python benchmarks/forecast_accuracy.py --backtest-step-days 91   # origins a season apart
    .venv/bin/python benchmarks/forecast_accuracy.py --end-date 2025-09-30,2025-12-31,2026-03-31,2026-06-30
    make peers ARGS="--end-date 2025-09-30,2025-12-31,2026-03-31,2026-06-30"   # with the issue's peers

``--end-date`` moves the fleet's last day and so the holdout's season; several dates (one fleet
each, the same seed) also print a table across them, because a 90-day holdout is one season
and interval coverage in particular depends on which one.

The last ``--holdout`` days are cut off; the rest is cleaned as stage 03 would have cleaned it
on the day of the cut. On it, the same rolling-origin backtest as stage 04 calibrates the
intervals and picks a champion per series; then every model is fitted on it and scored on the
holdout. Prints per model: fit seconds per series, MASE (mean and median over series), sMAPE,
interval coverage, and the share of series where it beats the seasonal-naive baseline; then
MASE and that share per metric, apart for series whose holdout has a sharp drop (a disk
cleanup or memory restart, which no model can time). ``mase_vs_naive`` is a model's mean MASE
over the seasonal-naive baseline's on the same holdout: unlike MASE itself, it can be compared
across fleets.

``--peers`` also fits the peers stage 04's targets were set against (``peers.py``: AutoTheta,
AutoETS, Prophet with its defaults), each with its own interval, and scores them alongside.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import pandas as pd
import peers  # benchmarks/peers.py, beside this script

from capacity_forecaster.cleaning import features
from capacity_forecaster.core import scoring
from capacity_forecaster.core.params import parse_params
from capacity_forecaster.core.vocabulary import BASELINE_MODEL
from capacity_forecaster.forecasting import backtest, intervals
from capacity_forecaster.forecasting.models import model_factories, trend
from capacity_forecaster.ingest import synthetic

SERIES = ["server_id", "metric"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=200)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--holdout", type=int, default=90)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--month-end-share",
        type=float,
        default=None,
        help="share of servers rising at month end (default: the params'; 0 for a fleet "
        "drawn as before the business calendar)",
    )
    parser.add_argument(
        "--end-date",
        default="",
        help="the fleet's last day (default: params' end_date); comma-separated for several runs",
    )
    parser.add_argument(
        "--models", default="seasonal_naive,robust_trend,prophet,random_forest,gradient_boosting"
    )
    parser.add_argument("--n-jobs", type=int, default=-1)
    parser.add_argument("--backtest-origins", type=int, default=3)
    parser.add_argument("--backtest-step-days", type=int, default=28)
    parser.add_argument("--per-series", default="", help="write per-series scores to this CSV")
    parser.add_argument(
        "--peers", action="store_true", help="also score the peers (needs `make peers`' venv)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.peers:
        peers.check_installed()

    end_dates = [d.strip() for d in args.end_date.split(",") if d.strip()] or [""]
    runs = []
    for end_date in end_dates:
        per_series, interval = evaluate_holdout(args, end_date)
        runs.append(per_series)
    scores = pd.concat(runs, ignore_index=True)
    if len(runs) > 1:
        print_across_holdouts(scores, interval)
    if args.per_series:
        scores.to_csv(args.per_series, index=False)


def forecast_holdout(
    factories: dict[str, Any],
    train: pd.DataFrame,
    servers: pd.DataFrame,
    dates: pd.DatetimeIndex,
    n_series: int,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Every model fitted on ``train`` for the holdout's length and its forecast of ``dates``,
    with each model's fit-and-predict seconds per series."""
    parts, fit_seconds = [], {}
    for name, make in factories.items():
        started = time.perf_counter()
        predicted = make().fit(train, servers, horizon_days=len(dates)).predict(dates)
        fit_seconds[name] = (time.perf_counter() - started) / n_series
        parts.append(predicted.assign(model=name))
    return pd.concat(parts, ignore_index=True), fit_seconds


def evaluate_holdout(args: argparse.Namespace, end_date: str) -> tuple[pd.DataFrame, float]:
    """Backtest, fit, forecast and score one fleet's holdout; prints its tables and returns
    the per-series scores (with the holdout's first and last day) and the interval level."""
    params = parse_params(
        {
            "run": {"seed": args.seed},
            "data": {
                "synthetic": {
                    "n_servers": args.servers,
                    "days": args.days,
                    **(
                        {"month_end_share": args.month_end_share}
                        if args.month_end_share is not None
                        else {}
                    ),
                    **({"end_date": end_date} if end_date else {}),
                }
            },
            "models": {
                "enabled": args.models.split(","),
                "backtest_origins": args.backtest_origins,
                "backtest_step_days": args.backtest_step_days,
            },
            # For the params schema only (90-180 days): the models are fitted for --holdout.
            "forecast": {"horizon_days": max(90, args.holdout)},
            "compute": {"n_jobs": args.n_jobs},
        }
    )
    raw, servers = synthetic.generate_fleet(
        params.data.synthetic, seed=args.seed, calendar=params.calendar
    )
    feature_frame, _ = features.build_features(raw, servers, params.features, params.calendar)
    history = feature_frame[[*SERIES, "date", "value", "is_imputed"]]
    cut = history["date"].max() - pd.Timedelta(days=args.holdout)
    # The models' history is cleaned as stage 03 would clean it on the day of the cut: outlier
    # windows and gap interpolation must not reach into the holdout. The holdout's actuals are
    # the cleaned values of the whole series.
    train_frame, _ = features.build_features(
        raw[raw["date"] <= cut], servers, params.features, params.calendar
    )
    train = train_frame[[*SERIES, "date", "value", "is_imputed"]]
    holdout = history[(history["date"] > cut) & ~history["is_imputed"]].rename(
        columns={"value": "actual"}
    )
    factories = model_factories(params)
    n_series = train.groupby(SERIES).ngroups
    print(
        f"fleet: {args.servers} servers x {args.days} days, {n_series} series; holdout {args.holdout} days after {cut.date()}"
    )

    # Backtest on the training part only: intervals and champions, as stage 04 does, every
    # model fitted for the holdout's length.
    started = time.perf_counter()
    result = backtest.run(
        train,
        servers,
        factories,
        horizon_days=args.holdout,
        n_origins=params.models.backtest_origins,
        step_days=params.models.backtest_step_days,
        interval=params.models.interval,
    )
    report, champions, calibration = result.report, result.champions, result.calibration
    season = result.season
    print(
        f"backtest: {len(result.origins)} origins, and {season['origin'].nunique()} a year earlier "
        f"for the intervals of {sorted(season['model'].unique())}, in "
        f"{time.perf_counter() - started:.0f} s"
    )

    # Fit on everything before the holdout, forecast it, score it.
    dates = pd.date_range(cut + pd.Timedelta(days=1), periods=args.holdout, freq="D")
    scale = scoring.seasonal_naive_scale(train).reset_index()
    forecasts, fit_seconds = forecast_holdout(factories, train, servers, dates, n_series)
    forecasts = forecasts.merge(scale, on=SERIES, how="left")
    forecasts["horizon"] = (forecasts["date"] - cut).dt.days
    # As stage 05 draws them: past the days a short history's backtest scored, extended.
    forecasts = intervals.apply(
        forecasts, calibration, scored_horizon_days=result.plan.horizon_days
    )
    if args.peers:
        peer_rows, peer_seconds = peers.peer_forecasts(
            train[[*SERIES, "date", "value"]], dates, params.models.interval, args.n_jobs
        )
        peers.check_complete(peer_rows, n_series, len(dates))
        peer_rows = peer_rows.merge(scale, on=SERIES, how="left")
        peer_rows["horizon"] = (peer_rows["date"] - cut).dt.days
        forecasts = pd.concat([forecasts, peer_rows], ignore_index=True)
        fit_seconds.update({name: value / n_series for name, value in peer_seconds.items()})
    picked = forecasts.merge(champions[[*SERIES, "champion"]], on=SERIES)
    champion = (
        picked[picked["model"] == picked["champion"]]
        .drop(columns="champion")
        .assign(model="champion")
    )
    scored = pd.concat([forecasts, champion]).merge(holdout, on=[*SERIES, "date"], how="inner")
    per_series = scoring.score(scored, ["model", *SERIES])
    baseline = per_series[per_series["model"] == "seasonal_naive"].set_index(SERIES)["mase"]
    per_series = per_series.join(baseline.rename("baseline"), on=SERIES)

    table = holdout_table(per_series, fit_seconds, report)
    print(f"\nholdout accuracy (interval level {params.models.interval:.0%}):")
    print(table.round(3).to_string())
    by_metric = per_series.pivot_table(
        index="model", columns="metric", values="mase", aggfunc="mean"
    )
    print("\nMASE (mean over series) by metric:")
    print(by_metric.round(3).to_string())
    per_series["beats_baseline"] = per_series["mase"] < per_series["baseline"]
    beats = per_series.pivot_table(
        index="model", columns="metric", values="beats_baseline", aggfunc="mean"
    )
    print("\nshare of series beating seasonal-naive, by metric:")
    print(beats.round(3).to_string())
    per_series = per_series.join(holdout_drops(train, holdout), on=SERIES)
    print_by_holdout_drop(per_series)
    print("\nchampions:", champions["champion"].value_counts().to_dict())
    last = history["date"].max()
    return per_series.assign(
        holdout=f"{(cut + pd.Timedelta(days=1)).date()}..{last.date()}"
    ), params.models.interval


def holdout_table(
    per_series: pd.DataFrame, fit_seconds: dict[str, float], report: dict[str, Any]
) -> pd.DataFrame:
    """One row per model: holdout MASE, sMAPE, coverage (and the backtest's), seconds per series."""
    reported_coverage = {row["model"]: row["coverage"] for row in report["models"]}
    rows = []
    for name, group in per_series.groupby("model"):
        rows.append(
            {
                "model": name,
                "fit_s_per_series": round(fit_seconds.get(name, float("nan")), 4),
                "mase_mean": group["mase"].mean(),
                "mase_median": group["mase"].median(),
                "smape": group["smape"].mean(),
                "coverage": group["coverage"].mean(),
                # What stage 04 would report: coverage measured on the backtest origins.
                "coverage_backtest": reported_coverage.get(name, float("nan")),
                "beats_baseline": (group["mase"] < group["baseline"]).mean(),
            }
        )
    table = pd.DataFrame(rows).set_index("model").sort_values("mase_mean")
    table["mase_vs_naive"] = table["mase_mean"] / table.loc[BASELINE_MODEL, "mase_mean"]
    return table


def holdout_drops(train: pd.DataFrame, holdout: pd.DataFrame) -> pd.Series:
    """Per series, whether its actuals drop sharply inside the holdout (``trend.sharp_drops``:
    a disk cleanup or a memory restart, from the last training day on)."""
    last = train.sort_values("date").groupby(SERIES).tail(1)
    frame = pd.concat([last, holdout.rename(columns={"actual": "value"})])[
        [*SERIES, "date", "value"]
    ]
    wide = frame.pivot_table(index="date", columns=SERIES, values="value")
    wide = wide.reindex(pd.date_range(wide.index.min(), wide.index.max(), freq="D"))
    drops = trend.sharp_drops(wide.to_numpy())
    return pd.Series(drops.any(axis=0), index=wide.columns, name="holdout_drop")


def print_by_holdout_drop(per_series: pd.DataFrame) -> None:
    """Mean MASE and share beating the baseline per metric, apart for series with a sharp drop
    in the holdout: a diagnostic chosen after the fact, not a score. On disk and memory such a
    drop is a cleanup or a restart no model can time; on CPU it is mostly the end of a
    quarter-end peak, which the calendar foretells."""
    work = per_series.assign(
        beats=per_series["mase"] < per_series["baseline"],
        drop=per_series["holdout_drop"].map({True: "drop", False: "no drop"}),
    )
    counts = work[work["model"] == "seasonal_naive"].groupby(["metric", "drop"]).size()
    for value, title in [("mase", "MASE (mean)"), ("beats", "share beating seasonal-naive")]:
        table = work.pivot_table(index="model", columns=["metric", "drop"], values=value)
        table.columns = [
            f"{metric} {drop} ({counts.get((metric, drop), 0)})" for metric, drop in table.columns
        ]
        print(
            f"\n{title} by metric and whether the holdout has a sharp drop (>= 3 points and 8 % in a day, held a week; series in brackets):"
        )
        print(table.round(3).to_string())


def print_across_holdouts(scores: pd.DataFrame, interval: float) -> None:
    """Per model: mean MASE (also over the baseline's), share beating the baseline and
    coverage on each holdout, and their mean over the holdouts (coverage also its lowest and
    highest)."""
    per_holdout = scores.assign(beats=scores["mase"] < scores["baseline"]).pivot_table(
        index="model", columns="holdout", values=["mase", "beats", "coverage"], aggfunc="mean"
    )
    tables = {value: per_holdout[value] for value in ("mase", "beats", "coverage")}
    tables["mase_vs_naive"] = tables["mase"] / tables["mase"].loc[BASELINE_MODEL]
    for value, title in [
        ("mase", "MASE (mean over series)"),
        ("mase_vs_naive", "mean MASE over seasonal-naive's"),
        ("beats", "share of series beating seasonal-naive"),
        ("coverage", f"{interval:.0%} interval coverage"),
    ]:
        table = tables[value].copy()
        table["mean"] = table.mean(axis=1)
        if value == "coverage":
            table["lowest"] = tables[value].min(axis=1)
            table["highest"] = tables[value].max(axis=1)
        print(f"\nacross holdouts, {title}:")
        print(table.sort_values("mean", ascending=value.startswith("mase")).round(3).to_string())


if __name__ == "__main__":
    main()
