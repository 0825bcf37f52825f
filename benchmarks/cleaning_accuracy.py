#!/usr/bin/env python
"""How well stage 03's outlier cleaning finds the outliers a synthetic fleet was given, and
whether it leaves the fleet's month-end load alone.

    .venv/bin/python benchmarks/cleaning_accuracy.py                      # 150 servers, seed 42
    .venv/bin/python benchmarks/cleaning_accuracy.py --servers 200 --seed 7
    .venv/bin/python benchmarks/cleaning_accuracy.py --month-end-share 0  # no month-end load

The synthetic generator injects its outliers (one-day spikes to 97-100 %, drops to 0) after it
draws the series, so the same seed with ``outlier_share`` 0 gives every value the outliers
replaced. Both fleets are drawn without missing days (gaps would fall on other days in each).
A share of the series (``--month-end-share``, 0.6) then rises by 10-25 points on the last two
business days of every month in the server's country, as a bank fleet's do (the same rise in
both fleets, so it is genuine load), and the dirty fleet is cleaned as stage 03 cleans it.
Prints per metric: outliers injected and flagged, precision and recall of the flags, how many
flagged values were genuine (and how many of those fell on a weekend, or on a month-end day),
how far cleaning moved genuine values in total, and how far the replaced outliers still are
from the values they hid.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import pandas as pd

from capacity_forecaster.cleaning.clean import clean_series
from capacity_forecaster.cleaning.grid import to_long
from capacity_forecaster.core.calendar import server_countries
from capacity_forecaster.core.calendar_windows import rows_by_country, window_flags
from capacity_forecaster.core.params import FeatureParams, SyntheticParams
from capacity_forecaster.core.params_calendar import CalendarParams
from capacity_forecaster.core.vocabulary import METRICS
from capacity_forecaster.ingest import synthetic

KEYS = ["server_id", "metric", "date"]
MONTH_END_UPLIFT = (10.0, 25.0)  # points, drawn per series


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=150)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--outlier-share", type=float, default=0.002)
    parser.add_argument("--month-end-share", type=float, default=0.6)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    # The generator's own month-end load is off: this script adds its own, the same in both.
    fleet = SyntheticParams(
        n_servers=args.servers,
        days=args.days,
        outlier_share=args.outlier_share,
        missing_share=0.0,
        month_end_share=0.0,
    )
    calendar = CalendarParams()
    dirty, servers = synthetic.generate_fleet(fleet, seed=args.seed)
    truth, _ = synthetic.generate_fleet(
        fleet.model_copy(update={"outlier_share": 0.0}), seed=args.seed
    )
    month_end = month_end_rows(dirty, servers, calendar)
    uplift = month_end_uplift(dirty, month_end, args.month_end_share, args.seed)
    dirty, truth = with_uplift(dirty, truth, uplift)

    started = time.perf_counter()
    cleaned = clean_series(to_long(dirty), FeatureParams(), servers, calendar)
    seconds = time.perf_counter() - started
    scored = cleaned.merge(
        to_long(truth).rename(columns={"value": "truth"})[[*KEYS, "truth"]], on=KEYS
    )
    month_end_days = pd.DataFrame({"server_id": dirty["server_id"], "date": dirty["date"]})
    scored = scored.merge(month_end_days.assign(month_end=month_end), on=["server_id", "date"])
    print(
        f"fleet: {args.servers} servers x {args.days} days, seed {args.seed}, outlier share "
        f"{args.outlier_share}, month-end share {args.month_end_share}; "
        f"clean_series {seconds:.2f} s\n"
    )
    print(score(scored).to_string())


def month_end_rows(
    metrics: pd.DataFrame, servers: pd.DataFrame, calendar: CalendarParams
) -> np.ndarray:
    """Per wide row, True on a day of the month_end window in its server's country."""
    countries = metrics["server_id"].map(server_countries(servers))
    return rows_by_country(
        metrics["date"], countries, lambda d, c: window_flags(d, c, calendar)["month_end"]
    ).astype(bool)


def month_end_uplift(
    metrics: pd.DataFrame, month_end: np.ndarray, share: float, seed: int
) -> pd.DataFrame:
    """Points added per wide row and metric: ``share`` of the series rise by a drawn 10-25
    points on their month-end days (the same draw for the same seed)."""
    rng = np.random.default_rng(seed + 1)
    server_codes, server_ids = pd.factorize(metrics["server_id"])
    uplift = {}
    for metric in METRICS:
        rises = rng.random(len(server_ids)) < share
        points = np.where(rises, rng.uniform(*MONTH_END_UPLIFT, len(server_ids)), 0.0)
        uplift[metric] = np.where(month_end, points[server_codes], 0.0)
    return pd.DataFrame(uplift, index=metrics.index)


def with_uplift(
    dirty: pd.DataFrame, truth: pd.DataFrame, uplift: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both fleets with the month-end rise; an injected outlier stays as it was injected."""
    dirty, truth = dirty.copy(), truth.copy()
    for metric in METRICS:
        risen = (truth[metric] + uplift[metric]).clip(upper=100.0)
        genuine = dirty[metric] == truth[metric]
        dirty[metric] = dirty[metric].where(~genuine, risen)
        truth[metric] = risen
    return dirty, truth


def score(scored: pd.DataFrame) -> pd.DataFrame:
    """Per metric: injected, flagged, precision, recall, genuine values flagged (on a weekend,
    on a month-end day), points genuine values moved, and the median and mean distance left
    between a replaced outlier and the value it hid."""
    injected = scored["value_raw"] != scored["truth"]
    flagged = scored["is_outlier"]
    weekend = scored["date"].dt.day_of_week >= 5
    month_end = scored["month_end"]
    moved = (scored["value"] - scored["truth"]).abs()
    rows = []
    for metric, index in scored.groupby("metric").groups.items():
        hit, flag, end = injected[index], flagged[index], weekend[index]
        true_flags = int((hit & flag).sum())
        left = moved[index][hit]
        rows.append(
            {
                "metric": metric,
                "injected": int(hit.sum()),
                "flagged": int(flag.sum()),
                "precision": true_flags / max(1, int(flag.sum())),
                "recall": true_flags / max(1, int(hit.sum())),
                "genuine_flagged": int((flag & ~hit).sum()),
                "of_them_weekend": int((flag & ~hit & end).sum()),
                "of_them_month_end": int((flag & ~hit & month_end[index]).sum()),
                "genuine_points_moved": float(moved[index][~hit].sum()),
                "outlier_left_median": float(np.median(left)) if len(left) else float("nan"),
                "outlier_left_mean": float(left.mean()) if len(left) else float("nan"),
            }
        )
    return pd.DataFrame(rows).set_index("metric").round(3)


if __name__ == "__main__":
    main()
