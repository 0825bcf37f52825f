"""Long sample tables into DuckDB: each file's timestamps read as instants and local days, checked.

A reader hands over ``(source, table)`` pairs: an Arrow table with ``timestamp, server_id,
metric, value`` per source file, ``metric`` already a contract name. The ``timestamp`` column's
type says how to read it:

* timestamp without a zone (or a date): a local wall-clock time in ``timezone``;
* timestamp with a zone: an instant;
* a number: epoch seconds (an instant);
* text: ISO 8601, an instant when it carries an offset (``Z``, ``+02:00``), else local time.

A cell that cannot be read fails with one line naming the file, the column and the row
(``read.row_name``: the line of a CSV file, the data row of a parquet file).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from capacity_forecaster.ingest.messages import col, fail, one_line, show, unprintable
from capacity_forecaster.ingest.read import row_name

logger = logging.getLogger(__name__)

SAMPLE_COLUMNS = ("timestamp", "server_id", "metric", "value")
# (source name for messages, long samples of that source)
SampleTable = tuple[str, pa.Table]

# Epoch values above this are not seconds (1e11 s is the year 5138): most likely milliseconds.
_MAX_EPOCH_SECONDS = 1e11

_CREATE_SQL = """
CREATE TEMP TABLE samples (
    server_id VARCHAR, metric VARCHAR, value DOUBLE, sample_time TIMESTAMPTZ, day DATE
)
"""

TIME_HINT = (
    "write ISO 8601 times such as 2024-01-31 13:05:00 (local time in data.timezone), "
    "with an offset (Z or +02:00) for instants, or epoch seconds"
)


@dataclass
class LoadedSamples:
    """What loading counted: samples read and dropped, and warnings."""

    counts: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def load_samples(
    con: duckdb.DuckDBPyConnection, parts: Iterable[SampleTable], timezone: str
) -> LoadedSamples:
    """Create table ``samples`` (server_id, metric, value, sample_time, day) in ``con`` from ``parts``.

    Values that are empty, NaN or infinite are dropped and counted (``missing_values``).
    """
    # Text times without an offset are read in the session's zone: the user's zone.
    con.execute(f"SET TimeZone = '{_quoted(timezone)}'")
    con.execute("SET preserve_insertion_order = false")
    con.execute(_CREATE_SQL)
    loaded = LoadedSamples({"files_read": 0, "samples_read": 0, "missing_values": 0})
    for source, table in parts:
        read, missing = _load_part(con, source, table, timezone)
        loaded.counts["files_read"] += 1
        loaded.counts["samples_read"] += read
        loaded.counts["missing_values"] += missing
    if loaded.counts["samples_read"] == 0:
        raise fail("export", "no samples in any file: nothing to aggregate")
    return loaded


def _load_part(
    con: duckdb.DuckDBPyConnection, source: str, table: pa.Table, timezone: str
) -> tuple[int, int]:
    """Insert one source's samples; return (samples read, values missing)."""
    missing_columns = [c for c in SAMPLE_COLUMNS if c not in table.column_names]
    if missing_columns:
        raise fail(source, f"no {col(missing_columns[0])} (columns: {table.column_names})")
    _check_server_ids(table, source)
    instant, day = _time_sql(table, source, timezone)
    value = "value" if _is_number(table.schema.field("value").type) else "TRY_CAST(value AS DOUBLE)"
    con.register("part", table.select(list(SAMPLE_COLUMNS)))
    try:
        _check_part(con, table, source, instant, value)
        result = con.execute(
            f"INSERT INTO samples SELECT CAST(server_id AS VARCHAR), metric, v, t, {day} "
            f"FROM (SELECT *, {value} AS v, {instant} AS t FROM part) "
            "WHERE v IS NOT NULL AND isfinite(v)"
        ).fetchone()
        inserted = int(result[0]) if result else 0
    except duckdb.Error as exc:
        # What the checks above did not foresee (e.g. a NaN epoch time): still one line.
        raise fail(source, f"cannot be read: {one_line(str(exc))[:200]}") from None
    finally:
        con.unregister("part")
    logger.info("%s: %d samples, %d kept", source, table.num_rows, inserted)
    return table.num_rows, table.num_rows - inserted


def _time_sql(table: pa.Table, source: str, timezone: str) -> tuple[str, str]:
    """SQL of (the instant, the local day) of ``part.timestamp``, by its Arrow type."""
    kind = table.schema.field("timestamp").type
    zone = _quoted(timezone)
    if (pa.types.is_timestamp(kind) and kind.tz is None) or pa.types.is_date(kind):
        naive = "CAST(timestamp AS TIMESTAMP)"
        return f"timezone('{zone}', {naive})", "CAST(timestamp AS DATE)"
    if pa.types.is_timestamp(kind):
        instant = "CAST(timestamp AS TIMESTAMPTZ)"
    elif _is_number(kind):
        _check_epoch_seconds(table, source)
        instant = "to_timestamp(CAST(timestamp AS DOUBLE))"
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        instant = "TRY_CAST(trim(timestamp) AS TIMESTAMPTZ)"
    else:
        raise fail(source, f"{col('timestamp')} has type {kind}: {TIME_HINT}")
    return instant, f"CAST(timezone('{zone}', {instant}) AS DATE)"


def _check_part(
    con: duckdb.DuckDBPyConnection, table: pa.Table, source: str, instant: str, value: str
) -> None:
    """Fail on the first empty server_id, unreadable time or non-numeric value."""
    _fail_on_first(
        con,
        table,
        source,
        "server_id",
        "server_id IS NULL OR trim(CAST(server_id AS VARCHAR)) = ''",
        lambda place, _: f"is empty at {place}: every sample needs a server",
    )
    _fail_on_first(
        con,
        table,
        source,
        "timestamp",
        f"{instant} IS NULL",
        lambda place, example: f"cannot be read at {place} ({show(example)}): {TIME_HINT}",
    )
    if value == "value":  # already numbers: nothing to parse
        return
    _fail_on_first(
        con,
        table,
        source,
        "value",
        f"{value} IS NULL AND value IS NOT NULL AND trim(CAST(value AS VARCHAR)) <> ''",
        lambda place, example: (
            f"is not a number at {place} ({show(example)}): "
            "write plain numbers such as 42.5 (empty cells are allowed and skipped)"
        ),
    )


def _check_server_ids(table: pa.Table, source: str) -> None:
    """Fail naming the row of the first server_id holding a control or text-direction
    character (``messages.UNPRINTABLE``): refused, as in a daily table (``coerce.server_ids``)."""
    for server_id in pc.unique(table.column("server_id")).to_pylist():
        code = unprintable(server_id) if isinstance(server_id, str) else None
        if code:
            place = first_place(table, source, "server_id", server_id)
            raise fail(
                source,
                f"{col('server_id')} {show(server_id)} at {place} has a control or "
                f"text-direction character ({code}): a server id must be printable text; "
                "remove the character from the export",
            )


def _fail_on_first(
    con: duckdb.DuckDBPyConnection,
    table: pa.Table,
    source: str,
    column: str,
    where: str,
    problem: Callable[[str, Any], str],
) -> None:
    """Fail naming the row (``first_place``) of the first value of ``column`` matching
    ``where``; ``problem`` words it from that row and the value."""
    found = con.execute(f"SELECT {column} FROM part WHERE {where} LIMIT 1").fetchall()
    if found:
        example = found[0][0]
        place = first_place(table, source, column, example)
        raise fail(source, f"{col(column)} {problem(place, example)}")


def _check_epoch_seconds(table: pa.Table, source: str) -> None:
    """Fail when epoch numbers are too large to be seconds (milliseconds, most likely)."""
    magnitude = pc.abs(table.column("timestamp"))
    largest = pc.max(magnitude).as_py()
    if largest is not None and largest > _MAX_EPOCH_SECONDS:
        place = row_name(source, int(pc.index(magnitude, largest).as_py()))
        raise fail(
            source,
            f"{col('timestamp')} holds {show(largest)} at {place}, too large for epoch "
            "seconds (milliseconds?): give epoch seconds",
        )


def constant_text(value: str, length: int) -> pa.DictionaryArray:
    """A text column of ``length`` cells all ``value`` (dictionary-encoded: no copies of it)."""
    indices = pa.array(np.zeros(length, dtype=np.int32))
    return pa.DictionaryArray.from_arrays(indices, pa.array([value], pa.string()))


def sample_table(
    timestamp: pa.Array | pa.ChunkedArray, server_id: str, metric: str, value: Any
) -> pa.Table:
    """Long samples of one server's metric (``value`` an array or column of numbers)."""
    length = len(timestamp)
    return pa.table(
        {
            "timestamp": timestamp,
            "server_id": constant_text(server_id, length),
            "metric": constant_text(metric, length),
            "value": value,
        }
    )


def text_epochs_as_numbers(table: pa.Table) -> pa.Table:
    """``table`` with a text ``timestamp`` column turned to numbers when every cell is one.

    CSV type inference reads epoch seconds as integers from the first block; a later
    fractional cell sends the column back as text, which is still epoch seconds.
    """
    column = table.column("timestamp")
    if not pa.types.is_string(column.type):
        return table
    try:
        numbers = pc.cast(column, pa.float64())
    except pa.ArrowInvalid:
        return table
    return table.set_column(table.column_names.index("timestamp"), "timestamp", numbers)


def first_place(table: pa.Table, source: str, column: str, value: Any) -> str:
    """Where (``read.row_name``) the first cell of ``column`` equal to ``value`` (None: empty)
    is in ``source``."""
    cells = table.column(column)
    if pa.types.is_dictionary(cells.type):
        cells = cells.cast(cells.type.value_type)
    if value is None:
        mask = pc.is_null(cells)
    else:
        mask = pc.fill_null(pc.equal(cells, pa.scalar(value, type=cells.type)), False)
    index = pc.index(mask, True).as_py()
    # The value came from the column, so "not found" (-1) is only defensive.
    return row_name(source, int(index)) if index is not None and index >= 0 else "a row"


def _is_number(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))


def _quoted(text: str) -> str:
    """``text`` safe inside a single-quoted SQL literal."""
    return text.replace("'", "''")
