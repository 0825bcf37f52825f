"""Format ``samples``: long raw samples ``timestamp, server_id, metric, value`` at any interval.

Each file is CSV, CSV.gz or parquet; header names are matched ignoring case and surrounding
spaces, other columns are ignored with a warning. ``metric`` holds a contract name (cpu_p95,
mem_p95, disk_p95) or an alias in ``METRIC_ALIASES``. The files are aggregated together by
``daily.aggregate_samples``, whose docstring states the rules (day boundary, duplicates,
coverage, P95).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import pyarrow as pa
import pyarrow.compute as pc

from capacity_forecaster.core.params_formats import FormatOptions
from capacity_forecaster.core.vocabulary import METRICS, MetricName
from capacity_forecaster.ingest.formats import FormatResult, SourceFile
from capacity_forecaster.ingest.formats.daily import aggregate_samples
from capacity_forecaster.ingest.formats.sample_tables import (
    SAMPLE_COLUMNS,
    SampleTable,
    first_place,
    text_epochs_as_numbers,
)
from capacity_forecaster.ingest.formats.table_bytes import (
    check_table_file,
    column_key,
    csv_header,
    is_parquet,
    read_table_bytes,
)
from capacity_forecaster.ingest.messages import col, fail, names, show, warn

logger = logging.getLogger(__name__)

# Metric names as users write them (compared ignoring case and surrounding spaces).
METRIC_ALIASES: Mapping[str, MetricName] = MappingProxyType(
    {
        **{metric: metric for metric in METRICS},
        "cpu": "cpu_p95",
        "cpu_utilization": "cpu_p95",
        "cpuutilization": "cpu_p95",
        "mem": "mem_p95",
        "memory": "mem_p95",
        "memory_utilization": "mem_p95",
        "mem_used_percent": "mem_p95",
        "disk": "disk_p95",
        "disk_utilization": "disk_p95",
        "disk_used_percent": "disk_p95",
    }
)


def read_samples(files: Sequence[SourceFile], options: FormatOptions) -> FormatResult:
    """Daily P95 per server and metric of long samples in ``files`` (``(name, bytes)`` pairs).

    P95 is linear interpolation (numpy's default percentile); the day is a calendar day in
    ``options.timezone`` (naive timestamps are local times there); see
    ``daily.aggregate_samples`` for duplicates, repeated timestamps and day coverage.
    """
    if not files:
        raise fail("samples export", "no files given")
    warnings: list[str] = []
    parts = (_sample_table(data, name, warnings) for name, data in files)
    result = aggregate_samples(parts, options.timezone, options.min_day_coverage)
    result.warnings[:0] = warnings
    return result


def read_sample_paths(paths: Sequence[Path], options: FormatOptions) -> FormatResult:
    """:func:`read_samples` on local files, each read only when its turn comes.

    For large local exports (the throughput benchmark): only one file's bytes are held at a
    time, and the files are never all in memory as bytes at once.
    """
    if not paths:
        raise fail("samples export", "no files given")
    warnings: list[str] = []
    parts = (_sample_table(path.read_bytes(), str(path), warnings) for path in paths)
    result = aggregate_samples(parts, options.timezone, options.min_day_coverage)
    result.warnings[:0] = warnings
    return result


def _sample_table(data: bytes, source: str, warnings: list[str]) -> SampleTable:
    """One file's samples: the four columns by their contract names, metrics mapped."""
    check_table_file(data, source)
    if is_parquet(source):
        table = read_table_bytes(data, source)
        renames = _column_names(table.column_names, source, warnings)
    else:
        renames = _column_names(csv_header(data, source), source, warnings)
        raw = {name: raw for raw, name in renames.items()}
        table = read_table_bytes(
            data,
            source,
            column_types={
                raw["server_id"]: pa.string(),
                raw["metric"]: pa.string(),
                raw["value"]: pa.float64(),
            },
            text_fallback=(raw["timestamp"], raw["value"]),
        )
    table = table.select(list(renames)).rename_columns(list(renames.values()))
    table = text_epochs_as_numbers(table)
    metric_index = table.column_names.index("metric")
    return source, table.set_column(metric_index, "metric", _contract_metrics(table, source))


def _column_names(header: Sequence[str], source: str, warnings: list[str]) -> dict[str, str]:
    """``{name as written: contract name}`` of the sample columns; fail naming a missing one."""
    found = {column_key(name): name for name in header}
    missing = [c for c in SAMPLE_COLUMNS if c not in found]
    if missing:
        raise fail(
            source,
            f"no {col(missing[0])}: a samples file needs the columns {', '.join(SAMPLE_COLUMNS)} "
            f"(found {names(list(header))})",
        )
    extra = [name for name in header if column_key(name) not in SAMPLE_COLUMNS]
    if extra:
        warn(warnings, source, f"columns ignored: {names(extra)}")
    return {found[c]: c for c in SAMPLE_COLUMNS}


def _contract_metrics(table: pa.Table, source: str) -> pa.ChunkedArray:
    """The ``metric`` column mapped to contract names (dictionary-encoded: one lookup per name)."""
    column = table.column("metric")
    if column.null_count:
        place = first_place(table, source, "metric", None)
        raise fail(source, f"{col('metric')} is empty at {place}: name the metric of every sample")
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column.cast(pa.string()))
    chunks = []
    for chunk in column.chunks:
        spoken = chunk.dictionary.to_pylist()
        mapped = [METRIC_ALIASES.get(column_key(str(name))) for name in spoken]
        unknown = [name for name, metric in zip(spoken, mapped, strict=True) if metric is None]
        if unknown:
            raise _unknown_metric(table, source, unknown)
        chunks.append(pa.DictionaryArray.from_arrays(chunk.indices, pa.array(mapped, pa.string())))
    return pa.chunked_array(
        chunks, chunks[0].type if chunks else pa.dictionary(pa.int32(), pa.string())
    )


def _unknown_metric(table: pa.Table, source: str, unknown: list[str | None]) -> Exception:
    """The error naming a metric value that is no contract name or known alias."""
    used = pc.unique(table.column("metric").cast(pa.string())).to_pylist()
    example = next(name for name in used if name in unknown)
    place = first_place(table, source, "metric", example)
    return fail(
        source,
        f"{col('metric')} has the unknown metric {show(example)} at {place}: use "
        f"{', '.join(METRICS)} or one of {names(sorted(set(METRIC_ALIASES) - set(METRICS)))}",
    )
