"""Format ``cloudwatch_csv``: a folder of CloudWatch exports, one metric of one instance per file.

Each file is ``timestamp,value`` (CSV or CSV.gz; NAB's realAWSCloudwatch files are such
exports: naive timestamps, 5-minute averages). Which server and metric a file holds comes from
``cloudwatch_csv.mapping_file`` (a CSV ``file,server_id,metric`` among the export's files) when
set, else from the first of ``cloudwatch_csv.filename_patterns`` that matches its name. The
CloudWatch metric name maps to a contract metric through ``cloudwatch_csv.metric_names``
(ignoring case); a file of any other metric (disk_write_bytes, network_in) is skipped and named
in a warning. The samples are then aggregated by ``daily.aggregate_samples``.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from capacity_forecaster.core.params_formats import CloudWatchCsvOptions, FormatOptions
from capacity_forecaster.core.vocabulary import METRICS, MetricName
from capacity_forecaster.ingest.formats import FormatResult, SourceFile
from capacity_forecaster.ingest.formats.daily import aggregate_samples
from capacity_forecaster.ingest.formats.sample_tables import (
    SampleTable,
    sample_table,
    text_epochs_as_numbers,
)
from capacity_forecaster.ingest.formats.table_bytes import (
    base_name,
    check_table_file,
    column_key,
    csv_header,
    file_names,
    is_parquet,
    read_table_bytes,
)
from capacity_forecaster.ingest.messages import col, fail, names, plural, warn
from capacity_forecaster.ingest.read import row_name

logger = logging.getLogger(__name__)

_MAPPING_COLUMNS = ("file", "server_id", "metric")


class _Series(NamedTuple):
    """What one file holds: its server and its CloudWatch metric name."""

    server_id: str
    metric: str


def read_cloudwatch_csv(
    files: Sequence[SourceFile], options: FormatOptions, mapping: SourceFile | None = None
) -> FormatResult:
    """Daily P95 per server and metric of CloudWatch per-metric CSV exports.

    ``mapping`` (a ``file,server_id,metric`` CSV) overrides the file-name patterns; without
    it, ``options.cloudwatch_csv.mapping_file`` names it among ``files``.
    """
    settings = options.cloudwatch_csv
    if mapping is None and settings.mapping_file:
        mapping, files = _take_mapping_file(files, settings.mapping_file)
    if not files:
        raise fail("cloudwatch_csv export", "no files given")
    warnings: list[str] = []
    series = _mapped_series(files, mapping) if mapping else _series_from_names(files, settings)
    _warn_unnamed(files, series, warnings, "mapping file" if mapping else "filename_patterns")
    targets = _contract_targets(files, series, settings.metric_names, warnings)
    if not targets:
        raise fail(
            "cloudwatch_csv export",
            f"none of the {len(files)} files holds a metric in cloudwatch_csv.metric_names "
            f"({names(sorted(settings.metric_names))}); see the warnings for each file",
        )
    semicolon_files: list[str] = []
    parts = (
        _file_samples(data, name, *targets[name], semicolon_files)
        for name, data in files
        if name in targets
    )
    result = aggregate_samples(parts, options.timezone, options.min_day_coverage)
    if semicolon_files:
        warn(
            warnings,
            "cloudwatch_csv export",
            f"{plural(len(semicolon_files), 'file')} semicolon-separated (a header with ';' and "
            f"no ','; Excel saves so where ',' is the decimal mark), read with ';' between "
            f"columns and ',' as the decimal mark: {file_names(semicolon_files)}",
        )
    result.warnings[:0] = warnings
    result.counts["files_skipped"] = len(files) - len(targets)
    return result


def _take_mapping_file(
    files: Sequence[SourceFile], mapping_name: str
) -> tuple[SourceFile, list[SourceFile]]:
    """(the mapping CSV named ``mapping_name``, the other files)."""
    wanted = base_name(mapping_name)
    found = [f for f in files if f[0] == mapping_name or base_name(f[0]) == wanted]
    if not found:
        raise fail(
            mapping_name,
            "cloudwatch_csv.mapping_file is not among the export's files: put it beside them "
            "or set mapping_file to null to use the file-name patterns",
        )
    return found[0], [f for f in files if f is not found[0]]


def _series_from_names(
    files: Sequence[SourceFile], settings: CloudWatchCsvOptions
) -> dict[str, _Series]:
    """``{file name: series}`` for the files whose name one of the patterns matches."""
    patterns = [re.compile(p) for p in settings.filename_patterns]
    series = {}
    for name, _ in files:
        match = next((m for p in patterns if (m := p.search(base_name(name)))), None)
        if match:
            series[name] = _Series(match["server_id"], match["metric"])
    return series


def _mapped_series(files: Sequence[SourceFile], mapping: SourceFile) -> dict[str, _Series]:
    """``{file name: series}`` from the mapping CSV (``file`` matched by full or base name)."""
    source, data = mapping
    rows = _mapping_rows(data, source)
    by_name = {}
    for index, (file, server_id, metric) in enumerate(rows):
        if not (file and server_id and metric):
            empty = _MAPPING_COLUMNS[[file, server_id, metric].index("")]
            raise fail(
                source,
                f"{col(empty)} is empty at {row_name(source, index)}: give file, server_id and "
                "metric on every row",
            )
        by_name[file] = _Series(server_id, metric)
    series = {}
    for name, _ in files:
        found = by_name.get(name) or by_name.get(base_name(name))
        if found:
            series[name] = found
    return series


def _mapping_rows(data: bytes, source: str) -> list[tuple[str, str, str]]:
    """The mapping CSV's (file, server_id, metric) rows, stripped."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise fail(source, f"not UTF-8 text (byte {exc.start}): save the file as UTF-8") from None
    reader = csv.reader(io.StringIO(text))
    header = [column_key(h) for h in next(reader, [])]
    missing = [c for c in _MAPPING_COLUMNS if c not in header]
    if missing:
        raise fail(
            source, f"no {col(missing[0])}: a mapping file has the columns file, server_id, metric"
        )
    at = [header.index(c) for c in _MAPPING_COLUMNS]
    return [
        (row[at[0]].strip(), row[at[1]].strip(), row[at[2]].strip())
        for row in reader
        if any(cell.strip() for cell in row) and len(row) > max(at)
    ]


def _decimal_commas(table: pa.Table) -> pa.Table:
    """``value`` cells written with a decimal comma ("12,5") as numbers; left as text when
    some cell is still not a number, for the sample checks to name."""
    points = pc.replace_substring(table.column("value"), ",", ".")
    try:
        numbers = pc.cast(points, pa.float64())
    except pa.ArrowInvalid:
        return table.set_column(1, "value", points)
    return table.set_column(1, "value", numbers)


def _warn_unnamed(
    files: Sequence[SourceFile], series: Mapping[str, _Series], warnings: list[str], by: str
) -> None:
    unnamed = [name for name, _ in files if name not in series]
    if unnamed:
        warn(
            warnings,
            "cloudwatch_csv export",
            f"{plural(len(unnamed), 'file')} skipped: their server and metric are not given by the {by}: "
            f"{file_names(unnamed)}",
        )


def _contract_targets(
    files: Sequence[SourceFile],
    series: Mapping[str, _Series],
    metric_names: Mapping[str, MetricName],
    warnings: list[str],
) -> dict[str, tuple[str, MetricName]]:
    """``{file name: (server_id, contract metric)}``; files of other metrics named in a warning."""
    lookup: dict[str, MetricName] = {name.lower(): m for name, m in metric_names.items()}
    lookup.update({m: m for m in METRICS})
    targets, skipped = {}, []
    for name, _ in files:
        if name not in series:
            continue
        metric = lookup.get(series[name].metric.lower())
        if metric is None:
            skipped.append(f"{base_name(name)} (metric {series[name].metric})")
        else:
            targets[name] = (series[name].server_id, metric)
    if skipped:
        warn(
            warnings,
            "cloudwatch_csv export",
            f"{plural(len(skipped), 'file')} skipped: their metric is not in cloudwatch_csv.metric_names "
            f"(a CPU, memory or disk-space percent): {'; '.join(skipped[:10])}"
            f"{f' and {len(skipped) - 10} more' if len(skipped) > 10 else ''}",
        )
    return targets


def _file_samples(
    data: bytes, source: str, server_id: str, metric: str, semicolon_files: list[str]
) -> SampleTable:
    """One export file's ``timestamp,value`` rows as long samples of ``server_id``'s ``metric``.

    A file re-saved by Excel in a locale whose decimal mark is ',' has ';' between columns: it
    is read so (its name added to ``semicolon_files``), with ',' in its values as the mark.
    """
    check_table_file(data, source)
    header, delimiter = csv_header(data, source), ","
    if len(header) == 1 and ";" in header[0] and not is_parquet(source):
        delimiter = ";"
        header = csv_header(data, source, delimiter)
        semicolon_files.append(source)
    found = {column_key(name): name for name in header}
    for needed in ("timestamp", "value"):
        if needed not in found:
            raise fail(
                source,
                f"no {col(needed)}: a CloudWatch export has the columns timestamp,value "
                f"(found {names(header)})",
            )
    table = read_table_bytes(
        data,
        source,
        column_types={found["value"]: pa.string() if delimiter == ";" else pa.float64()},
        text_fallback=(found["timestamp"], found["value"]),
        delimiter=delimiter,
    )
    table = table.select([found["timestamp"], found["value"]]).rename_columns(
        ["timestamp", "value"]
    )
    if delimiter == ";":
        table = _decimal_commas(table)
    table = text_epochs_as_numbers(table)
    samples = sample_table(table.column("timestamp"), server_id, metric, table.column("value"))
    return source, samples
