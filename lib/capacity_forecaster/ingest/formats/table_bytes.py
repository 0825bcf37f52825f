"""A file's bytes (CSV, CSV.gz or parquet) into an Arrow table, every failure one line.

pyarrow's CSV reader is multi-threaded and hands its table to DuckDB without a copy. It infers
a column's type from the first block: when a later cell does not fit, the listed columns are
read again as text, so the sample checks (``sample_tables``) can name the bad cell and row.
"""

from __future__ import annotations

import csv
import logging
import zlib
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from capacity_forecaster.ingest.messages import fail, one_line
from capacity_forecaster.ingest.read import CSV_SUFFIXES, PARQUET_SUFFIXES

logger = logging.getLogger(__name__)

_READ_ERRORS = (ValueError, OSError, EOFError, zlib.error, pa.ArrowException)
# Enough of a file to hold its header line, compressed or not.
_HEADER_BYTES = 1 << 16


def base_name(source: str) -> str:
    """The last part of a path or URI (``s3://b/x/i-1_CPUUtilization.csv`` -> the file name)."""
    return PurePosixPath(source.replace("\\", "/")).name


def file_names(sources: Sequence[str], limit: int = 10) -> str:
    """Up to ``limit`` file names in full (not cut short like other examples), then how many more."""
    shown = ", ".join(repr(base_name(s)) for s in sources[:limit])
    return shown + (f" and {len(sources) - limit} more" if len(sources) > limit else "")


def is_parquet(source: str) -> bool:
    return source.lower().endswith(PARQUET_SUFFIXES)


def read_table_bytes(
    data: bytes,
    source: str,
    column_types: Mapping[str, pa.DataType] | None = None,
    text_fallback: Sequence[str] = (),
    delimiter: str = ",",
) -> pa.Table:
    """Read CSV (.csv, .csv.gz) or parquet (.parquet, .pq) bytes; the type follows ``source``.

    ``column_types`` fix the type of columns by their header name (text columns stay text:
    ``server_id`` keeps its leading zeros). When a cell does not convert, the columns named
    in ``text_fallback`` are read again as text and the table returned as it is.
    """
    name = source.lower()
    check_table_file(data, source)
    try:
        if is_parquet(name):
            return pq.read_table(pa.BufferReader(data))
        return _read_csv(data, source, dict(column_types or {}), text_fallback, delimiter)
    except _READ_ERRORS as exc:
        kind = "parquet" if is_parquet(name) else "CSV"
        detail = one_line(str(exc))[:200] or type(exc).__name__
        raise fail(source, f"cannot be read as {kind}: {detail}") from None


def check_table_file(data: bytes, source: str) -> None:
    """Fail on an empty file or a file type other than CSV, CSV.gz or parquet."""
    if not data or not bytes(data[:_HEADER_BYTES]).strip():
        raise fail(source, f"file is empty ({len(data)} bytes, no data)")
    if not source.lower().endswith(CSV_SUFFIXES + PARQUET_SUFFIXES):
        raise fail(
            source,
            f"unknown file type; expected one of {', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}",
        )


def csv_header(data: bytes, source: str, delimiter: str = ",") -> list[str]:
    """The header names of CSV (or CSV.gz) ``data`` exactly as written (pyarrow's names)."""
    head = bytes(data[:_HEADER_BYTES])
    if source.lower().endswith(".gz"):
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, _HEADER_BYTES)
        except zlib.error as exc:
            raise fail(source, f"cannot be read as CSV: not gzip data ({exc})") from None
    line = head.decode("utf-8-sig", errors="replace").splitlines()[:1]
    if not line:
        raise fail(source, "file has no header line")
    return next(csv.reader(line, delimiter=delimiter))


def column_key(name: str) -> str:
    """A header name compared loosely: ``' CPU usage [%]'`` -> ``'cpu usage [%]'``."""
    return " ".join(name.strip().lower().split())


def _read_csv(
    data: bytes,
    source: str,
    column_types: dict[str, pa.DataType],
    text_fallback: Sequence[str],
    delimiter: str,
) -> pa.Table:
    try:
        return _parse_csv(data, source, column_types, delimiter)
    except pa.ArrowInvalid as exc:
        if not text_fallback or "conversion error" not in str(exc).lower():
            raise
        logger.info("%s: %s; reading %s as text", source, one_line(str(exc))[:200], text_fallback)
    as_text = {**column_types, **dict.fromkeys(text_fallback, pa.string())}
    return _parse_csv(data, source, as_text, delimiter)


def _parse_csv(
    data: bytes, source: str, column_types: dict[str, pa.DataType], delimiter: str
) -> pa.Table:
    stream: pa.NativeFile = pa.BufferReader(data)
    if source.lower().endswith(".gz"):
        stream = pa.CompressedInputStream(stream, "gzip")
    return pacsv.read_csv(
        stream,
        parse_options=pacsv.ParseOptions(delimiter=delimiter),
        convert_options=pacsv.ConvertOptions(
            column_types=column_types,
            # Only empty cells are missing: a server called "NA" stays "NA".
            null_values=[""],
            strings_can_be_null=False,
        ),
    )
