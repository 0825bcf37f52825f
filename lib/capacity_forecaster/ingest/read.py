"""Reading: a table's bytes (CSV or parquet, from stage 01 or a user's own files) into a frame.

Storage lives elsewhere: this module receives bytes and a source name (for messages and the
file type). Readers of monitoring exports (``formats/``) would sit beside it, each delivering
the tables in ``schema``.
"""

from __future__ import annotations

import io
import logging
import zlib
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from capacity_forecaster.ingest.messages import MAX_EXAMPLES, fail, one_line, repeated_name, warn

logger = logging.getLogger(__name__)

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
_READ_ERRORS = (ValueError, OSError, EOFError, zlib.error, pa.ArrowException)
# A frame's ``attrs`` key, true when its rows are not the rows of the file it is named after
# (an export's daily table, aggregated from the export's files): no line is named in it.
DERIVED_ROWS = "derived_rows"


def read_table(data: bytes, source: str, warnings: list[str] | None = None) -> pd.DataFrame:
    """Read CSV (.csv, .csv.gz) or parquet (.parquet, .pq) bytes; the format follows ``source``.

    CSV cells are read as written: only empty cells are missing, so a region called "NA"
    stays "NA", and ``server_id`` is always read as text (leading zeros survive). A column
    name written twice in the header is an error; a semicolon-separated file is read as one,
    with decimal commas, and a warning appended to ``warnings``.
    """
    name = str(source).lower()
    if not data or not bytes(data[:65536]).strip():
        raise fail(source, f"file is empty ({len(data)} bytes, no data)")
    try:
        frame = _parse(data, name, source, [] if warnings is None else warnings)
    except pd.errors.EmptyDataError:
        raise fail(source, "file has no header and no rows") from None
    except UnicodeDecodeError as exc:
        raise fail(source, f"not UTF-8 text (byte {exc.start}): save the file as UTF-8") from None
    except _READ_ERRORS as exc:
        kind = "parquet" if name.endswith(PARQUET_SUFFIXES) else "CSV"
        detail = one_line(str(exc))[:200] or type(exc).__name__
        raise fail(source, f"cannot be read as {kind}: {detail}") from None
    logger.info("read %s: %d rows, %d columns", source, len(frame), frame.shape[1])
    return frame


def row_name(source: str, index: int) -> str:
    """How every message names 0-based data row ``index`` of a table read from ``source``:
    ``line N`` of a CSV file (.csv, .csv.gz; the header is line 1, one line per row as exports
    write them), else ``data row N`` (a parquet file, a mapping file, an in-memory table), so
    one cell is named alike by every check; '' for source '', a table whose rows are no
    file's (``DERIVED_ROWS``), where the server and day say where instead."""
    if not source:
        return ""
    word, number = _numbered(source, index)
    return f"{word} {number}"


def row_names(source: str, mask: np.ndarray | pd.Series) -> str:
    """The first ``MAX_EXAMPLES`` flagged rows of ``source`` as ``row_name`` names them, in one
    phrase: ``lines 2, 11, 13`` of a CSV file, ``data rows 1, 10, 12`` of anything else ('' for
    source '', as ``row_name``)."""
    flagged = np.asarray(mask)
    if not source:
        return ""
    word = _numbered(source, 0)[0]
    shown = [str(_numbered(source, int(i))[1]) for i in np.flatnonzero(flagged)[:MAX_EXAMPLES]]
    return f"{word}{'' if int(flagged.sum()) == 1 else 's'} {', '.join(shown)}"


def _numbered(source: str, index: int) -> tuple[str, int]:
    """(what a row of ``source`` is called, the number of 0-based row ``index``): a CSV file's
    ``line`` (the header is line 1), else a 1-based ``data row``."""
    if str(source).lower().endswith(CSV_SUFFIXES):
        return "line", index + 2
    return "data row", index + 1


def _parse(data: bytes, name: str, source: str, warnings: list[str]) -> pd.DataFrame:
    """Parse ``data`` by the suffix of ``name`` (``source`` lowercased)."""
    if name.endswith(PARQUET_SUFFIXES):
        return pd.read_parquet(io.BytesIO(data))
    if not name.endswith(CSV_SUFFIXES):
        raise fail(
            source,
            f"unknown file type; expected one of {', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}",
        )
    compression: Literal["gzip"] | None = "gzip" if name.endswith(".gz") else None
    separator, header = ",", _csv_header(data, compression, ",")
    # Excel in a locale whose decimal mark is ',' (most of Europe) saves "CSV" with ';' between
    # columns and ',' in numbers. A header with ';' and no ',' cannot be one of ours read with
    # ',' (a single column never validates), so reading it with ';' turns no file that could
    # pass into a different one; refusing it would only send the user back to Excel. Decimal
    # commas come with that separator; a cell written with a point still reads as a number.
    if len(header) == 1 and ";" in header[0]:
        separator, header = ";", _csv_header(data, compression, ";")
        warn(
            warnings,
            source,
            "semicolon-separated (the header has ';' and no ','): read with ';' between "
            "columns and ',' as the decimal mark",
        )
    # pandas would rename a repeated name (cpu_p95, cpu_p95.1) and the first column would be
    # used silently: the header is checked as written.
    problem = repeated_name(header)
    if problem:
        raise fail(source, problem)
    return pd.read_csv(
        io.BytesIO(data),
        sep=separator,
        decimal="," if separator == ";" else ".",
        compression=compression,
        keep_default_na=False,
        na_values=[""],
        dtype={"server_id": "str"},
        skipinitialspace=True,
        low_memory=False,
        encoding="utf-8-sig",
    )


def _csv_header(data: bytes, compression: Literal["gzip"] | None, separator: str) -> list[str]:
    """The header cells of CSV ``data`` as written (quotes and a byte-order mark removed)."""
    first = pd.read_csv(
        io.BytesIO(data),
        sep=separator,
        header=None,
        nrows=1,
        dtype="str",
        keep_default_na=False,
        compression=compression,
        skipinitialspace=True,
        encoding="utf-8-sig",
    )
    return [str(cell) for cell in first.iloc[0]]
