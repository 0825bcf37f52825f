"""Format ``vm_trace``: per-VM CSV traces in the Bitbrains GWA-T-12 layout.

One file per VM (per month, possibly in month folders such as ``2013-7/54.csv``); the file's
stem is the VM id. The delimiter is ``;`` followed by a tab; ``Timestamp [ms]`` holds epoch
SECONDS despite its label. CPU utilisation is ``CPU usage [%]``; memory utilisation is
``Memory usage [KB]`` over the ``Memory capacity provisioned [KB]`` of the same sample. A sample
with zero provisioned CPU (cores or MHz) gives no CPU value, one with zero provisioned memory
no memory value (``zero_capacity_samples``): such rows are the trace's "VM not running" rows,
all zeros. The trace has disk throughput but no disk-space metric, so ``disk_p95`` is NaN.
"""

from __future__ import annotations

import gzip
import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import PurePosixPath

import numpy as np
import pandas as pd
import pyarrow as pa

from capacity_forecaster.core.params_formats import FormatOptions
from capacity_forecaster.ingest.formats import FormatResult, SourceFile
from capacity_forecaster.ingest.formats.daily import aggregate_samples
from capacity_forecaster.ingest.formats.sample_tables import SampleTable, sample_table
from capacity_forecaster.ingest.formats.table_bytes import column_key, csv_header, read_table_bytes
from capacity_forecaster.ingest.messages import col, fail, names, show, warn
from capacity_forecaster.ingest.read import row_name

logger = logging.getLogger(__name__)

KB_PER_GB = 1024**2
# The columns read, by their header names (compared ignoring case and spacing).
COLUMNS = {
    "timestamp": "timestamp [ms]",
    "cpu_cores": "cpu cores",
    "cpu_capacity_mhz": "cpu capacity provisioned [mhz]",
    "cpu_percent": "cpu usage [%]",
    "memory_capacity_kb": "memory capacity provisioned [kb]",
    "memory_used_kb": "memory usage [kb]",
}


def read_vm_trace(files: Sequence[SourceFile], options: FormatOptions) -> FormatResult:
    """Daily P95 of CPU and memory per VM, and each VM's latest provisioned capacity."""
    if not files:
        raise fail("vm_trace export", "no files given")
    traces = {vm: _vm_trace(vm_files) for vm, vm_files in _files_by_vm(files).items()}
    parts = _vm_samples(traces)
    result = aggregate_samples(parts, options.timezone, options.min_day_coverage)
    zero = {vm: int((_zero_cpu(t) | _zero_memory(t)).sum()) for vm, t in traces.items()}
    changes = {vm: _capacity_changes(t) for vm, t in traces.items()}
    result.counts.update(
        {
            "files_read": len(files),
            "zero_capacity_samples": sum(zero.values()),
            "zero_capacity_samples_by_server": {vm: n for vm, n in zero.items() if n},
            "capacity_changes": sum(changes.values()),
            "capacity_changes_by_server": {vm: n for vm, n in changes.items() if n},
        }
    )
    warn(
        result.warnings,
        "vm_trace export",
        "the trace has disk throughput but no disk-space metric: disk_p95 is empty",
    )
    servers = pd.DataFrame([_latest_capacity(vm, t) for vm, t in sorted(traces.items())])
    return FormatResult(result.metrics, servers, result.counts, result.warnings)


def _files_by_vm(files: Sequence[SourceFile]) -> dict[str, list[SourceFile]]:
    """The files of each VM (``2013-7/54.csv`` and ``2013-8/54.csv`` are both VM ``54``)."""
    by_vm: dict[str, list[SourceFile]] = defaultdict(list)
    for name, data in files:
        stem = PurePosixPath(name.replace("\\", "/")).name.split(".")[0]
        by_vm[stem].append((name, data))
    return dict(by_vm)


def _vm_trace(files: list[SourceFile]) -> pd.DataFrame:
    """One VM's rows from all its files, in time order (``source`` names each row's file)."""
    frames = [_trace_file(data, name) for name, data in files]
    trace = pd.concat(frames, ignore_index=True)
    return trace.sort_values("timestamp", kind="stable", ignore_index=True)


def _trace_file(data: bytes, source: str) -> pd.DataFrame:
    """One trace file's columns of ``COLUMNS`` as numbers."""
    if source.lower().endswith(".gz"):
        data = gzip.decompress(data)
        source_plain = source[:-3]
    else:
        source_plain = source
    # The ";" + tab delimiter, as one character pyarrow can split on.
    data = data.replace(b";\t", b";")
    header = csv_header(data, source_plain, delimiter=";")
    found = {column_key(name): name for name in header}
    missing = [c for c in COLUMNS.values() if c not in found]
    if missing:
        raise fail(
            source,
            f"no {col(missing[0])}: a Bitbrains trace has ';'+tab separated columns such as "
            f"'Timestamp [ms]', 'CPU usage [%]', 'Memory capacity provisioned [KB]' "
            f"(found {names(header)})",
        )
    raw = [found[key] for key in COLUMNS.values()]
    table = read_table_bytes(
        data,
        source_plain,
        column_types=dict.fromkeys(raw, pa.float64()),
        text_fallback=raw,
        delimiter=";",
    )
    frame = pd.DataFrame(
        {
            name: _numbers(table.column(found[key]), source, found[key])
            for name, key in COLUMNS.items()
        }
    )
    frame["source"] = source
    return frame


def _numbers(column: pa.ChunkedArray, source: str, name: str) -> np.ndarray:
    """``column`` as floats; fail naming the first cell that is not a number."""
    if pa.types.is_floating(column.type) and not column.null_count:
        return column.to_numpy()
    text = pd.Series(column.to_pandas(), dtype="object")
    numbers = pd.to_numeric(text, errors="coerce")
    bad = numbers.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise fail(
            source,
            f"{col(name)} is not a number at {row_name(source, row)} ({show(text.iloc[row])}): "
            "every cell of a trace is a number",
        )
    return numbers.to_numpy(dtype=float)


def _zero_cpu(trace: pd.DataFrame) -> pd.Series:
    return (trace["cpu_cores"] <= 0) | (trace["cpu_capacity_mhz"] <= 0)


def _zero_memory(trace: pd.DataFrame) -> pd.Series:
    return trace["memory_capacity_kb"] <= 0


def _vm_samples(traces: dict[str, pd.DataFrame]) -> Iterator[SampleTable]:
    """Long samples of each VM's CPU and memory percent (zero-capacity samples left out)."""
    for vm, trace in traces.items():
        cpu = trace.loc[~_zero_cpu(trace)]
        memory = trace.loc[~_zero_memory(trace)]
        memory_percent = 100.0 * memory["memory_used_kb"] / memory["memory_capacity_kb"]
        label = f"{vm} ({len(set(trace['source']))} files)"
        yield (
            label,
            pa.concat_tables(
                [
                    sample_table(
                        pa.array(cpu["timestamp"]), vm, "cpu_p95", pa.array(cpu["cpu_percent"])
                    ),
                    sample_table(
                        pa.array(memory["timestamp"]), vm, "mem_p95", pa.array(memory_percent)
                    ),
                ]
            ),
        )


def _capacity_changes(trace: pd.DataFrame) -> int:
    """How often provisioned cores or memory change between samples where they are provisioned."""
    cores = trace.loc[~_zero_cpu(trace), "cpu_cores"]
    memory = trace.loc[~_zero_memory(trace), "memory_capacity_kb"]
    return int((cores.diff().fillna(0) != 0).sum() + (memory.diff().fillna(0) != 0).sum())


def _latest_capacity(vm: str, trace: pd.DataFrame) -> dict[str, object]:
    """The VM's capacity at its latest sample that has it (NaN when never provisioned)."""
    cores = trace.loc[~_zero_cpu(trace), "cpu_cores"]
    memory = trace.loc[~_zero_memory(trace), "memory_capacity_kb"]
    return {
        "server_id": vm,
        "cpu_cores": float(cores.iloc[-1]) if len(cores) else np.nan,
        "memory_gb": float(memory.iloc[-1]) / KB_PER_GB if len(memory) else np.nan,
    }
