#!/usr/bin/env python
"""How well stage 03's outlier cleaning finds the outliers a synthetic fleet was given.

    .venv/bin/python benchmarks/cleaning_accuracy.py                      # 150 servers, seed 42
    .venv/bin/python benchmarks/cleaning_accuracy.py --servers 200 --seed 7

The synthetic generator injects its outliers (one-day spikes to 97-100 %, drops to 0) after it
draws the series, so the same seed with ``outlier_share`` 0 gives every value the outliers
replaced. Both fleets are drawn without missing days (gaps would fall on other days in each),
and the dirty one is cleaned as stage 03 cleans it. Prints per metric: outliers injected and
flagged, precision and recall of the flags, how many flagged values were genuine (and how many
of those fell on a weekend), how far cleaning moved genuine values in total, and how far the
replaced outliers still are from the values they hid.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import pandas as pd

from capacity_forecaster.cleaning.clean import clean_series
from capacity_forecaster.cleaning.grid import to_long
from capacity_forecaster.core.params import FeatureParams, SyntheticParams
from capacity_forecaster.ingest import synthetic

KEYS = ["server_id", "metric", "date"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=150)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--outlier-share", type=float, default=0.002)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    fleet = SyntheticParams(
        n_servers=args.servers,
        days=args.days,
        outlier_share=args.outlier_share,
        missing_share=0.0,
    )
    dirty, servers = synthetic.generate_fleet(fleet, seed=args.seed)
    truth, _ = synthetic.generate_fleet(
        fleet.model_copy(update={"outlier_share": 0.0}), seed=args.seed
    )
    started = time.perf_counter()
    cleaned = clean_series(to_long(dirty), FeatureParams(), servers)
    seconds = time.perf_counter() - started
    scored = cleaned.merge(
        to_long(truth).rename(columns={"value": "truth"})[[*KEYS, "truth"]], on=KEYS
    )
    print(
        f"fleet: {args.servers} servers x {args.days} days, seed {args.seed}, outlier share "
        f"{args.outlier_share}; clean_series {seconds:.2f} s\n"
    )
    print(score(scored).to_string())


def score(scored: pd.DataFrame) -> pd.DataFrame:
    """Per metric: injected, flagged, precision, recall, genuine values flagged (and on a
    weekend), points genuine values moved, and the median and mean distance left between a
    replaced outlier and the value it hid."""
    injected = scored["value_raw"] != scored["truth"]
    flagged = scored["is_outlier"]
    weekend = scored["date"].dt.day_of_week >= 5
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
                "genuine_points_moved": float(moved[index][~hit].sum()),
                "outlier_left_median": float(np.median(left)) if len(left) else float("nan"),
                "outlier_left_mean": float(left.mean()) if len(left) else float("nan"),
            }
        )
    return pd.DataFrame(rows).set_index("metric").round(3)


if __name__ == "__main__":
    main()
