"""Reading: a table's bytes (CSV or parquet, from stage 01 or a user's own files) into a frame.

Storage lives elsewhere: this module receives bytes and a source name (for messages and the
file type). Readers of monitoring exports (``formats/``) would sit beside it, each delivering
the tables in ``schema``.
"""

from __future__ import annotations

import io
import logging
import zlib

import pandas as pd
import pyarrow as pa

from capacity_forecaster.ingest.messages import fail, one_line

logger = logging.getLogger(__name__)

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
_READ_ERRORS = (ValueError, OSError, EOFError, zlib.error, pa.ArrowException)


def read_table(data: bytes, source: str) -> pd.DataFrame:
    """Read CSV (.csv, .csv.gz) or parquet (.parquet, .pq) bytes; the format follows ``source``.

    CSV cells are read as written: only empty cells are missing, so a region called "NA"
    stays "NA", and ``server_id`` is always read as text (leading zeros survive).
    """
    name = str(source).lower()
    if not data or not bytes(data[:65536]).strip():
        raise fail(source, f"file is empty ({len(data)} bytes, no data)")
    try:
        frame = _parse(data, name, source)
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


def _parse(data: bytes, name: str, source: str) -> pd.DataFrame:
    """Parse ``data`` by the suffix of ``name`` (``source`` lowercased)."""
    if name.endswith(PARQUET_SUFFIXES):
        return pd.read_parquet(io.BytesIO(data))
    if name.endswith(CSV_SUFFIXES):
        return pd.read_csv(
            io.BytesIO(data),
            compression="gzip" if name.endswith(".gz") else None,
            keep_default_na=False,
            na_values=[""],
            dtype={"server_id": "str"},
            skipinitialspace=True,
            low_memory=False,
            encoding="utf-8-sig",
        )
    raise fail(
        source,
        f"unknown file type; expected one of {', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}",
    )
