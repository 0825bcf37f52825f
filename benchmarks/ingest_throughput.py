#!/usr/bin/env python
"""Samples per second and peak memory of the `samples` export reader (parse plus daily P95).

    .venv/bin/python benchmarks/ingest_throughput.py                  # 1,000 servers: 51.8 M samples
    .venv/bin/python benchmarks/ingest_throughput.py --servers 50     # a quick look
    .venv/bin/python benchmarks/ingest_throughput.py --file-format csv.gz

Writes a synthetic export to a temporary folder: ``--servers`` servers x ``--days`` days of
5-minute samples of cpu and mem (1,000 x 90 x 288 x 2 = 51.8 million rows by default), one
file per ``--servers-per-file`` servers, as parquet (default) or CSV.gz. A child process then
reads it through the real code path, ``ingest.formats.samples.read_sample_paths`` (each file's
bytes read when its turn comes, then ``read_samples``' own parse and aggregation), and reports
its seconds and peak resident memory (its own ``ru_maxrss``, the generator not included).
The machine is shared: compare figures from one invocation.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
SAMPLES_PER_DAY = 288  # 5-minute samples
TARGET_SAMPLES_PER_SECOND = 1_000_000
TARGET_PEAK_GIB = 4.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--servers-per-file", type=int, default=100)
    parser.add_argument("--file-format", choices=("parquet", "csv.gz"), default="parquet")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the child's own run
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(_measure(args.measure)))
        return

    with tempfile.TemporaryDirectory(prefix="cf-ingest-") as folder:
        started = time.perf_counter()
        files = _write_export(Path(folder), args)
        size = sum(f.stat().st_size for f in files)
        print(
            f"wrote {len(files)} {args.file_format} files, {size / 2**20:.0f} MiB, "
            f"in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        child = subprocess.run(
            [sys.executable, __file__, "--measure", folder], capture_output=True, text=True
        )
    if child.returncode != 0:
        sys.exit(f"the reader failed:\n{child.stderr[-3000:]}")
    _report(json.loads(child.stdout.strip().splitlines()[-1]))


def _write_export(folder: Path, args: argparse.Namespace) -> list[Path]:
    """The synthetic export, one file per ``servers_per_file`` servers."""
    files = []
    for first in range(0, args.servers, args.servers_per_file):
        servers = range(first, min(first + args.servers_per_file, args.servers))
        table = _samples(servers, args.days, seed=first)
        path = folder / f"samples-{first:05d}.{args.file_format}"
        if args.file_format == "parquet":
            pq.write_table(table, path)
        else:
            with gzip.open(path, "wb", compresslevel=6) as stream:
                pacsv.write_csv(table, stream)
        files.append(path)
    return files


def _samples(servers: range, days: int, seed: int) -> pa.Table:
    """Long samples of cpu and mem for ``servers``: a daily cycle plus noise, in percent."""
    rng = np.random.default_rng(seed)
    per_series = days * SAMPLES_PER_DAY
    start = np.datetime64("2025-01-01T00:00:00", "s")
    times = start + np.arange(per_series) * np.timedelta64(300, "s")
    cycle = np.sin(np.arange(per_series) * 2 * np.pi / SAMPLES_PER_DAY)
    columns: dict[str, list[np.ndarray]] = {
        "timestamp": [],
        "server_id": [],
        "metric": [],
        "value": [],
    }
    for server in servers:
        for metric, level in (("cpu", 35.0), ("mem", 60.0)):
            noise = rng.normal(0, 6, per_series)
            columns["timestamp"].append(times)
            columns["server_id"].append(np.full(per_series, f"srv-{server:05d}"))
            columns["metric"].append(np.full(per_series, metric))
            columns["value"].append(np.clip(level + 15 * cycle + noise, 0, 100).round(2))
    return pa.table(
        {
            "timestamp": pa.array(np.concatenate(columns["timestamp"]), pa.timestamp("s", "UTC")),
            "server_id": np.concatenate(columns["server_id"]),
            "metric": np.concatenate(columns["metric"]),
            "value": np.concatenate(columns["value"]),
        }
    )


def _measure(folder: Path) -> dict[str, float]:
    """Read the export in ``folder`` through the samples reader; seconds and peak memory."""
    sys.path.insert(0, str(ROOT / "lib"))
    from capacity_forecaster.core.params_formats import FormatOptions
    from capacity_forecaster.ingest.formats.samples import read_sample_paths

    paths = sorted(p for p in folder.iterdir() if p.is_file())
    started = time.perf_counter()
    result = read_sample_paths(paths, FormatOptions())
    seconds = time.perf_counter() - started
    return {
        "samples": result.counts["samples_read"],
        "server_days": result.counts["days_out"],
        "seconds": seconds,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,  # KiB on Linux
    }


def _report(figures: dict[str, float]) -> None:
    rate = figures["samples"] / figures["seconds"]
    print(
        f"{figures['samples']:,} samples -> {figures['server_days']:,} server-days in "
        f"{figures['seconds']:.1f} s: {rate / 1e6:.2f} M samples/s "
        f"(target {TARGET_SAMPLES_PER_SECOND / 1e6:.0f} M), peak memory "
        f"{figures['peak_rss_gib']:.2f} GiB (target < {TARGET_PEAK_GIB:.0f})"
    )


if __name__ == "__main__":
    main()
