#!/usr/bin/env python
"""Seconds to build details.xlsx and summary.pdf for a large fleet's champion forecasts.

    .venv/bin/python benchmarks/report_timing.py                       # 1000 servers x 3 x 180 days
    .venv/bin/python benchmarks/report_timing.py --servers 150 --days 120 --repeat 3

The forecasts sheet dominates: one row per server x metric x day. Prints the median of
``--repeat`` builds for each report and the rows written. openpyxl uses lxml when it is
installed (``OPENPYXL_LXML=False`` turns that off), so run it both ways to compare.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
from openpyxl.xml import LXML

from capacity_forecaster.reporting import tables, workbook

METRICS = ("cpu_p95", "mem_p95", "disk_p95")


def champion_forecasts(servers: int, days: int) -> pd.DataFrame:
    """A forecasts frame shaped like stage 05's champion rows."""
    rng = np.random.default_rng(0)
    n = servers * len(METRICS) * days
    yhat = rng.uniform(5, 95, n)
    return pd.DataFrame(
        {
            "server_id": np.repeat([f"srv-{i:05d}" for i in range(servers)], len(METRICS) * days),
            "metric": np.tile(np.repeat(METRICS, days), servers),
            "date": np.tile(pd.date_range("2026-07-01", periods=days, freq="D"), servers * 3),
            "horizon": np.tile(np.arange(1, days + 1), servers * len(METRICS)),
            "model": "gradient_boosting",
            "yhat": yhat,
            "yhat_lower": yhat - 5,
            "yhat_upper": yhat + 5,
            "is_champion": True,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    table = tables.forecast_table(champion_forecasts(args.servers, args.days))
    empty = pd.DataFrame({"Server": [], "Risk level": []})
    levels = {"high": 0, "medium": 0, "low": args.servers}
    summary = {
        "run_id": "benchmark",
        "fleet": {"servers": args.servers},
        "risk": {"servers_by_level": levels, "series_by_level": levels},
        "accuracy": {},
        "savings": {},
        "data_quality": {},
    }
    seconds = []
    size = 0
    for _ in range(args.repeat):
        started = time.perf_counter()
        data = workbook.build_workbook(summary, empty, table, empty, empty, empty, empty)
        seconds.append(time.perf_counter() - started)
        size = len(data)
    print(f"openpyxl with lxml: {LXML}")
    print(f"forecast rows: {len(table):,}; workbook {size / 1e6:.1f} MB")
    print(f"details.xlsx build: median {statistics.median(seconds):.1f} s over {args.repeat}")


if __name__ == "__main__":
    main()
