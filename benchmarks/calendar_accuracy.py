#!/usr/bin/env python
"""Month-end accuracy: a fleet whose load rises at month end, through stages 02-06, holdout hidden.

    .venv/bin/python benchmarks/calendar_accuracy.py                   # 200 servers x 640 days
    .venv/bin/python benchmarks/calendar_accuracy.py --servers 30      # a few minutes
    .venv-peers/bin/python benchmarks/calendar_accuracy.py --peers     # the peers beside ours
                                                    # (`make peers` creates .venv-peers)

The generator draws the fleet (``--month-end-share`` of the servers rise by 10-25 points of CPU
on the last two business days of each month in their country, memory and disk less), twice more
with the same seed: without outliers (the truth the injected outliers hid) and without month-end
rises (so the rising servers are known exactly). No monitoring gaps: they would fall on other
days in each draw.

Six rising servers then become month-end breachers and six others their controls, by adding to
their CPU (truth and dirty alike; an injected outlier stays as injected) a growth of 0.1 points
a day from 120 days before the cut on, and a constant: a breacher's history stays under 77 %,
its holdout's other days under 77 % and its holdout month-end peaks reach 83 % or more (the six
with the most room between the two, none moved more than 40 points); a control, a server that
does not rise at month end and is steady on its own (its holdout mean within 5 points of its last
90 days'; the busiest first), gets the same growth and a constant that puts its holdout peak at
its breacher's other-day peak. So each breacher crosses the 80 % CPU threshold in the holdout on
month-end days only, and its control never does. A small fleet may have fewer of either.

The last ``--holdout`` days are cut off; the rest is written as a user's own files (parquet)
and ``run_all.py`` runs stages 02-06 on them with the default params (horizon: the holdout).
Everything below is read from the products the stages wrote (features, forecasts, risk), never
from the stages' functions. Prints:

- MAE on month-end days over MAE on other days, and 80 % interval coverage on each, for every
  model, the champion and (``--peers``) the peers, on the rising servers' CPU and memory;
- cleaning: precision and recall of the outlier flags on the injected outliers, and how many
  genuine month-end days it flagged;
- breaches: of the servers whose holdout CPU crosses the threshold on month-end days only, how
  many got a breach date on a month-end day; and the controls' false alarms;
- the champion's mean MASE over all days and series (per metric too).

The pipeline runs in the project's .venv (pandas 3, as a run does) even when this script runs
in .venv-peers for the peers (statsforecast needs pandas < 3).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import peers  # benchmarks/peers.py, beside this script
import yaml

from capacity_forecaster.core import catalog, scoring
from capacity_forecaster.core.calendar import server_countries
from capacity_forecaster.core.calendar_windows import rows_by_country, window_flags
from capacity_forecaster.core.params import ModelParams, RiskParams, SyntheticParams
from capacity_forecaster.core.params_calendar import CalendarParams
from capacity_forecaster.core.vocabulary import CHAMPION, METRICS
from capacity_forecaster.ingest import synthetic

ROOT = Path(__file__).resolve().parents[1]
PIPELINE_PYTHON = ROOT / ".venv" / "bin" / "python"
SERIES = ["server_id", "metric"]
KEYS = ["server_id", "metric", "date"]
STAGES = "02,03,04,05,06"
THRESHOLD = RiskParams().thresholds["cpu_p95"]
INTERVAL = ModelParams().interval
MARGIN = 3.0  # points: breachers' other days stay under the threshold by this, peaks over it
GROWTH_PER_DAY = 0.1  # points of CPU a day, for breachers and controls
GROWTH_FROM_DAYS = 120  # before the cut: the growth starts then, flat before
MAX_SHIFT = 40.0  # points: a server that needs more to fit is not chosen
RISING_METRICS = ("cpu_p95", "mem_p95")  # the metrics the accuracy tables report


class Fleet(NamedTuple):
    """The generated fleet (wide): as monitored, the truth, servers, and per row whether it is
    a month-end day in the server's country; the servers that rise at month end."""

    dirty: pd.DataFrame
    truth: pd.DataFrame
    servers: pd.DataFrame
    month_end: np.ndarray
    risers: set[str]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=200, help="fleet size (%(default)s)")
    parser.add_argument("--days", type=int, default=640, help="days of data (%(default)s)")
    parser.add_argument(
        "--holdout", type=int, default=90, help="days held out, the horizon (%(default)s)"
    )
    parser.add_argument("--seed", type=int, default=42, help="the fleet's seed (%(default)s)")
    parser.add_argument(
        "--month-end-share",
        type=float,
        default=0.6,
        help="share of servers that rise at month end (%(default)s)",
    )
    parser.add_argument(
        "--outlier-share", type=float, default=0.002, help="outliers injected (%(default)s)"
    )
    parser.add_argument(
        "--pairs", type=int, default=6, help="breachers, and as many controls (%(default)s)"
    )
    parser.add_argument("--models", default="", help="comma-separated (default: params' default)")
    parser.add_argument("--n-jobs", type=int, default=-1, help="the run's workers (%(default)s)")
    parser.add_argument(
        "--peers", action="store_true", help="also score the peers (run in .venv-peers)"
    )
    parser.add_argument("--workdir", default="", help="keep the files and the run here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.peers:
        peers.check_installed()

    calendar = CalendarParams()
    fleet = generate(args, calendar)
    cut = fleet.dirty["date"].max() - pd.Timedelta(days=args.holdout)
    fleet, breachers, controls = with_breachers_and_controls(fleet, cut, args.pairs)
    print(
        f"fleet: {args.servers} servers x {args.days} days, seed {args.seed}; "
        f"{len(fleet.risers)} rise at month end; holdout {args.holdout} days after {cut.date()}; "
        f"{len(breachers)} breachers, {len(controls)} controls"
    )
    with tempfile.TemporaryDirectory(prefix="cf-calendar-") as temporary:
        folder = Path(args.workdir or temporary)
        run_root = run_stages(fleet, cut, args, folder)
        features = pd.read_parquet(run_root / catalog.FEATURES.key)
        forecasts = pd.read_parquet(run_root / catalog.FORECASTS.key)
        risk = pd.read_parquet(run_root / catalog.RISK.key)

    actual = long(fleet.truth, fleet.month_end)
    holdout = actual[actual["date"] > cut]
    history = features[[*KEYS, "value"]]
    scale = scoring.seasonal_naive_scale(history).reset_index()
    forecasts = forecasts[forecasts["date"] > cut]
    champion = forecasts[forecasts["is_champion"].astype(bool)].assign(model=CHAMPION)
    ours = pd.concat([forecasts, champion], ignore_index=True)
    rising = holdout[holdout["server_id"].isin(fleet.risers)]
    rising = rising[rising["metric"].isin(RISING_METRICS)]
    parts = [ours]
    if args.peers:
        parts.append(peer_forecasts(history, rising, cut, args))
    scored = pd.concat(parts, ignore_index=True).merge(rising, on=KEYS, how="inner")
    print_month_end_accuracy(scored)
    print_cleaning(features, long(fleet.dirty, fleet.month_end), actual, fleet.risers)
    print_breaches(risk, holdout, fleet, breachers, controls, cut, args.holdout)
    print_mase(ours.merge(holdout, on=KEYS).merge(scale, on=SERIES, how="left"))


def generate(args: argparse.Namespace, calendar: CalendarParams) -> Fleet:
    """The fleet with outliers, its truth and the servers that rise at month end (see module)."""
    params = SyntheticParams(
        n_servers=args.servers,
        days=args.days,
        outlier_share=args.outlier_share,
        missing_share=0.0,
        month_end_share=args.month_end_share,
    )
    dirty, servers = synthetic.generate_fleet(params, args.seed, calendar)
    truth, _ = synthetic.generate_fleet(
        params.model_copy(update={"outlier_share": 0.0}), args.seed, calendar
    )
    plain, _ = synthetic.generate_fleet(
        params.model_copy(update={"outlier_share": 0.0, "month_end_share": 0.0}),
        args.seed,
        calendar,
    )
    countries = truth["server_id"].map(server_countries(servers))
    month_end = rows_by_country(
        truth["date"], countries, lambda days, c: window_flags(days, c, calendar)["month_end"]
    ).astype(bool)
    rose = month_end & ((truth["cpu_p95"] - plain["cpu_p95"]).abs() > 1e-9).to_numpy()
    risers = set(truth.loc[rose, "server_id"])
    return Fleet(dirty, truth, servers, month_end, risers)


def with_breachers_and_controls(
    fleet: Fleet, cut: pd.Timestamp, pairs: int
) -> tuple[Fleet, list[str], list[str]]:
    """The fleet with ``pairs`` breachers and as many controls made (see module)."""
    since_cut = (fleet.truth["date"] - cut).dt.days.to_numpy()
    growth = GROWTH_PER_DAY * np.maximum(since_cut, -GROWTH_FROM_DAYS)
    frame = pd.DataFrame(
        {
            "server_id": fleet.truth["server_id"],
            "cpu": fleet.truth["cpu_p95"].to_numpy() + growth,
            "holdout": since_cut > 0,
            "month_end": fleet.month_end,
        }
    )
    fits = []
    for server_id in sorted(fleet.risers):
        rows = frame[frame["server_id"] == server_id]
        held, peak_days = rows[rows["holdout"]], rows["holdout"] & rows["month_end"]
        # The highest constant that keeps history and the holdout's other days under the line.
        shift = (THRESHOLD - MARGIN) - max(
            rows.loc[~rows["holdout"], "cpu"].max(), held.loc[~held["month_end"], "cpu"].max()
        )
        room = shift - ((THRESHOLD + MARGIN) - rows.loc[peak_days, "cpu"].max())
        if room >= 0 and abs(shift) <= MAX_SHIFT:
            fits.append((room, server_id, shift))
    chosen = sorted(fits, reverse=True)[:pairs]
    shifts = {server_id: shift for _, server_id, shift in chosen}
    breachers = [server_id for _, server_id, _ in chosen]

    # Controls: steady servers that do not rise, at their breacher's other-day peak.
    level = frame.assign(cpu=fleet.truth["cpu_p95"]).groupby("server_id")
    steady = level.apply(
        lambda rows: (
            rows.loc[rows["holdout"], "cpu"].mean()
            - rows.loc[~rows["holdout"], "cpu"].iloc[-90:].mean()
        ),
        include_groups=False,
    )
    median = level["cpu"].median()
    candidates = [
        s
        for s in median.sort_values(ascending=False).index
        if s not in fleet.risers and abs(steady[s]) < 5.0
    ]
    controls = []
    for breacher, control in zip(breachers, candidates, strict=False):
        rows = frame[frame["server_id"] == breacher]
        target = (rows.loc[rows["holdout"] & ~rows["month_end"], "cpu"] + shifts[breacher]).max()
        mine = frame[frame["server_id"] == control]
        shift = min(
            target - mine.loc[mine["holdout"], "cpu"].max(),
            (THRESHOLD - MARGIN) - mine.loc[~mine["holdout"], "cpu"].max(),
        )
        if abs(shift) <= MAX_SHIFT:
            shifts[control] = shift
            controls.append(control)

    truth, dirty = fleet.truth.copy(), fleet.dirty.copy()
    changed = frame["server_id"].isin(list(shifts)).to_numpy()
    offset = frame["server_id"].map(shifts).fillna(0.0).to_numpy() + growth
    new = np.clip(truth["cpu_p95"].to_numpy() + offset, 0.0, 100.0)
    genuine = dirty["cpu_p95"].to_numpy() == truth["cpu_p95"].to_numpy()
    truth["cpu_p95"] = np.where(changed, new, truth["cpu_p95"])
    dirty["cpu_p95"] = np.where(changed & genuine, new, dirty["cpu_p95"])
    return fleet._replace(truth=truth, dirty=dirty), breachers, controls


def run_stages(fleet: Fleet, cut: pd.Timestamp, args: argparse.Namespace, folder: Path) -> Path:
    """Stages 02-06 on the history before ``cut``, written as a user's own files; the run root.
    A stage that fails stops the benchmark with the runner's message."""
    folder.mkdir(parents=True, exist_ok=True)
    fleet.dirty[fleet.dirty["date"] <= cut].to_parquet(folder / "metrics.parquet", index=False)
    fleet.servers.to_parquet(folder / "servers.parquet", index=False)
    params = {
        "run": {"name": "calendar", "seed": args.seed, "output_root": "runs"},
        "data": {
            "source": "file",
            "metrics_path": "metrics.parquet",
            "servers_path": "servers.parquet",
        },
        "forecast": {"horizon_days": args.holdout},
        "compute": {"n_jobs": args.n_jobs},
    }
    if args.models:
        params["models"] = {"enabled": args.models.split(",")}
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # A new run each time: a --workdir kept from an earlier run may hold other data.
    run_id = f"calendar-{args.seed}-{args.servers}-{pd.Timestamp.now():%Y%m%d-%H%M%S}"
    python = PIPELINE_PYTHON if PIPELINE_PYTHON.exists() else Path(sys.executable)
    command = [str(python), str(ROOT / "run_all.py"), "--params", str(folder / "params.yaml"),
               "--run-id", run_id, "--only", STAGES]  # fmt: skip
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    run_root = folder / "runs" / run_id
    manifest_path = run_root / catalog.MANIFEST.key
    stages = json.loads(manifest_path.read_text())["stages"] if manifest_path.exists() else []
    print(f"stages {STAGES}: " + ", ".join(f"{s['stage']} {s['status']}" for s in stages))
    if completed.returncode != 0:
        raise SystemExit(
            f"run_all.py failed (exit {completed.returncode}) after {seconds:.0f} s; run folder "
            f"{run_root}\n{completed.stderr[-3000:]}"
        )
    print(f"pipeline: {seconds:.0f} s\n")
    return run_root


def long(wide: pd.DataFrame, month_end: np.ndarray) -> pd.DataFrame:
    """server_id, metric, date, actual, month_end: one row per series and day."""
    frame = wide.assign(month_end=month_end)
    return frame.melt(
        id_vars=["server_id", "date", "month_end"],
        value_vars=list(METRICS),
        var_name="metric",
        value_name="actual",
    )[[*KEYS, "actual", "month_end"]]


def peer_forecasts(
    history: pd.DataFrame, rising: pd.DataFrame, cut: pd.Timestamp, args: argparse.Namespace
) -> pd.DataFrame:
    """The peers' forecasts of the rising series' holdout, fitted on the cleaned history the
    pipeline's models saw (features.parquet)."""
    series = rising[SERIES].drop_duplicates()
    train = history.merge(series, on=SERIES)
    dates = pd.date_range(cut + pd.Timedelta(days=1), periods=args.holdout, freq="D")
    rows, seconds = peers.peer_forecasts(train, dates, INTERVAL, args.n_jobs)
    peers.check_complete(rows, len(series), len(dates))
    print("peers fitted: " + ", ".join(f"{name} {s:.0f} s" for name, s in seconds.items()))
    return rows


def print_month_end_accuracy(scored: pd.DataFrame) -> None:
    """Per metric and model: MAE on month-end days and on other days, their ratio, and
    interval coverage on each, over the rising servers' holdout."""
    error = (scored["actual"] - scored["yhat"]).abs()
    covered = (scored["actual"] >= scored["yhat_lower"]) & (
        scored["actual"] <= scored["yhat_upper"]
    )
    work = scored.assign(error=error, covered=covered.astype(float))
    table = work.pivot_table(
        index=["metric", "model"], columns="month_end", values=["error", "covered"]
    )
    result = pd.DataFrame(
        {
            "series": work.groupby(["metric", "model"])["server_id"].nunique(),
            "mae_month_end": table[("error", True)],
            "mae_other": table[("error", False)],
            "ratio": table[("error", True)] / table[("error", False)],
            "coverage_month_end": table[("covered", True)],
            "coverage_other": table[("covered", False)],
        }
    )
    days = work.drop_duplicates(["server_id", "date"])["month_end"]
    print(
        f"holdout accuracy on the rising servers ({int(days.sum())} month-end server-days, "
        f"{int((~days).sum())} others; {INTERVAL:.0%} intervals):"
    )
    for metric, part in result.groupby(level="metric"):
        print(f"\n{metric}:")
        # By MAE on month-end days: a ratio near 1 is no merit when other days are missed too.
        print(part.droplevel("metric").sort_values("mae_month_end").round(3).to_string())


def print_cleaning(
    features: pd.DataFrame, dirty: pd.DataFrame, truth: pd.DataFrame, risers: set[str]
) -> None:
    """Per metric: injected outliers, flags, precision, recall; genuine month-end days flagged."""
    scored = features[[*KEYS, "is_outlier"]].merge(
        dirty.rename(columns={"actual": "dirty"}), on=KEYS
    )
    scored = scored.merge(truth[[*KEYS, "actual"]], on=KEYS)
    injected = scored["dirty"] != scored["actual"]
    flagged = scored["is_outlier"].astype(bool)
    month_end = scored["month_end"].astype(bool)
    rising = scored["server_id"].isin(risers)
    rows = []
    for metric, index in scored.groupby("metric").groups.items():
        hit, flag, end = injected[index], flagged[index], month_end[index]
        rows.append(
            {
                "metric": metric,
                "injected": int(hit.sum()),
                "flagged": int(flag.sum()),
                "precision": int((hit & flag).sum()) / max(1, int(flag.sum())),
                "recall": int((hit & flag).sum()) / max(1, int(hit.sum())),
                "month_end_days": int((end & ~hit).sum()),
                "month_end_flagged": int((flag & ~hit & end).sum()),
                "of_them_rising": int((flag & ~hit & end & rising[index]).sum()),
            }
        )
    print("\ncleaning (stage 03 on the history; genuine month-end days flagged as outliers):")
    print(pd.DataFrame(rows).set_index("metric").round(3).to_string())


def print_breaches(
    risk: pd.DataFrame,
    holdout: pd.DataFrame,
    fleet: Fleet,
    breachers: list[str],
    controls: list[str],
    cut: pd.Timestamp,
    horizon: int,
) -> None:
    """Month-end breach recall from risk.parquet's breach_date, and the controls' alarms."""
    cpu = holdout[holdout["metric"] == "cpu_p95"]
    peaks = cpu.pivot_table(index="server_id", columns="month_end", values="actual", aggfunc="max")
    crossing = peaks[(peaks[True] >= THRESHOLD) & (peaks[False] < THRESHOLD)].index
    rows = risk[risk["metric"] == "cpu_p95"].set_index("server_id")
    countries = server_countries(fleet.servers)
    end = cut + pd.Timedelta(days=horizon)

    def breach(server_id: str) -> dict[str, object]:
        date = rows.loc[server_id, "breach_date"] if server_id in rows.index else pd.NaT
        within = bool(pd.notna(date) and cut < date <= end)
        on_month_end = bool(
            within
            and window_flags(pd.DatetimeIndex([date]), countries[server_id], CalendarParams())[
                "month_end"
            ][0]
        )
        return {
            "server_id": server_id,
            "made_here": server_id in breachers or server_id in controls,
            "month_end_peak": round(float(peaks.loc[server_id, True]), 1),
            "other_peak": round(float(peaks.loc[server_id, False]), 1),
            "breach_date": f"{date:%Y-%m-%d}" if pd.notna(date) else "",
            "on_month_end": on_month_end,
            "over_now": bool(rows.loc[server_id, "over_now"]) if server_id in rows.index else None,
            "risk_level": rows.loc[server_id, "risk_level"] if server_id in rows.index else None,
        }

    found = pd.DataFrame([breach(s) for s in crossing])
    hits = int(found["on_month_end"].sum()) if len(found) else 0
    print(
        f"\nbreach recall: {hits} of {len(crossing)} servers whose holdout CPU crosses "
        f"{THRESHOLD:.0f} % on month-end days only got a breach date on a month-end day "
        f"({sum(s in breachers for s in crossing)} of them made breachers here)"
    )
    if len(found):
        print(found.set_index("server_id").to_string())
    alarms = pd.DataFrame([breach(s) for s in controls])
    raised = alarms["breach_date"] != "" if len(alarms) else pd.Series(dtype=bool)
    print(f"\nfalse alarms: {int(raised.sum())} of {len(controls)} controls got a breach date")
    if len(alarms):
        print(alarms.set_index("server_id").to_string())


def print_mase(scored: pd.DataFrame) -> None:
    """The champion's (and every model's) mean per-series MASE over all holdout days."""
    per_series = scoring.score(scored, ["model", *SERIES])
    table = per_series.pivot_table(index="model", columns="metric", values="mase")
    table["all"] = per_series.groupby("model")["mase"].mean()
    print("\nmean MASE over all holdout days and series (per metric, and all):")
    print(table.sort_values("all").round(3).to_string())


if __name__ == "__main__":
    main()
