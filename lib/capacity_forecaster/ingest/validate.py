"""Stage 02: load and validate a fleet's metrics and server metadata.

Input is ours (stage 01) or a user's own CSV/parquet, received as bytes: storage lives
elsewhere. Every problem becomes one :class:`DataValidationError` line that names the file,
the column and the count, with up to three example values, never a traceback from pandas.
Softer problems (extra columns, time zones, short-history servers) come back as warnings.
"""

from __future__ import annotations

import io
import logging
import re
import time
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from capacity_forecaster.core.errors import DataValidationError

logger = logging.getLogger(__name__)

METRIC_COLUMNS = ("cpu_p95", "mem_p95", "disk_p95")
METRICS_CONTRACT = ("date", "server_id", *METRIC_COLUMNS)
SERVERS_REQUIRED = (
    "server_id",
    "business_unit",
    "region",
    "environment",
    "criticality",
    "cpu_cores",
    "memory_gb",
    "disk_gb",
    "monthly_cost_usd",
)
SERVER_TEXT_COLUMNS = ("business_unit", "region", "environment", "criticality")
# Capacity must be positive; a cost of zero is allowed (e.g. already paid-off hardware).
SERVER_POSITIVE_COLUMNS = ("cpu_cores", "memory_gb", "disk_gb")
SERVER_NON_NEGATIVE_COLUMNS = ("monthly_cost_usd",)

# Percent values this far above 100 are float noise from upstream tools: clipped silently.
PERCENT_TOLERANCE = 1e-6
MAX_EXAMPLES = 3
MAX_SHOWN_CHARS = 40
_CSV_SUFFIXES = (".csv", ".csv.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_READ_ERRORS = (ValueError, OSError, EOFError, zlib.error, pa.ArrowException)


# --------------------------------------------------------------------------- message helpers


def _one_line(text: str) -> str:
    return re.sub(r"[\r\n\t\v\f]+", " ", str(text)).strip()


def _show(value: Any) -> str:
    """A short, printable form of one example value (strings repr'd and truncated)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return "<empty>"
    if isinstance(value, float) and np.isnan(value):
        return "<empty>"
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d") if value == value.normalize() else value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, str):
        short = value if len(value) <= MAX_SHOWN_CHARS else value[: MAX_SHOWN_CHARS - 1] + "…"
        return repr(short)
    return _show(str(value))


def _examples(values: Iterable[Any]) -> str:
    """``(e.g. 'a', 'b', 'c')`` from the first distinct values, or '' when there are none."""
    shown: list[str] = []
    for value in values:
        text = _show(value)
        if text not in shown:
            shown.append(text)
        if len(shown) == MAX_EXAMPLES:
            break
    return f" (e.g. {', '.join(shown)})" if shown else ""


def _col(name: str) -> str:
    return f"column {_show(str(name))}"


def _names(names: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(_show(str(n)) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _for_servers(ids: pd.Series) -> str:
    """`` (servers 'a', 'b', 'c')`` naming where a problem is, by server_id."""
    return _examples(ids.iloc[:50]).replace("(e.g.", "(servers", 1)


def _rows(mask: pd.Series) -> str:
    """``data rows 1, 10, 12`` (1-based, the header not counted) for the first flagged rows."""
    rows = np.flatnonzero(np.asarray(mask))[:MAX_EXAMPLES] + 1
    label = "data row" if int(np.asarray(mask).sum()) == 1 else "data rows"
    return f"{label} {', '.join(str(r) for r in rows)}"


def _fail(source: str, message: str) -> DataValidationError:
    return DataValidationError(_one_line(f"{source}: {message}"))


def _warn(warnings: list[str], source: str, message: str) -> None:
    text = _one_line(f"{source}: {message}")
    logger.warning(text)
    warnings.append(text)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# --------------------------------------------------------------------------- reading


def read_table(data: bytes, source: str) -> pd.DataFrame:
    """Read CSV (.csv, .csv.gz) or parquet (.parquet, .pq) bytes; the format follows ``source``.

    CSV cells are read as written: only empty cells are missing, so a region called "NA"
    stays "NA", and ``server_id`` is always read as text (leading zeros survive).
    """
    name = str(source).lower()
    if not data or not bytes(data[:65536]).strip():
        raise _fail(source, f"file is empty ({len(data)} bytes, no data)")
    try:
        if name.endswith(_PARQUET_SUFFIXES):
            frame = pd.read_parquet(io.BytesIO(data))
        elif name.endswith(_CSV_SUFFIXES):
            frame = pd.read_csv(
                io.BytesIO(data),
                compression="gzip" if name.endswith(".gz") else None,
                keep_default_na=False,
                na_values=[""],
                dtype={"server_id": "str"},
                skipinitialspace=True,
                low_memory=False,
                encoding="utf-8-sig",
            )
        else:
            raise _fail(
                source,
                "unknown file type; expected one of "
                f"{', '.join(_CSV_SUFFIXES + _PARQUET_SUFFIXES)}",
            )
    except pd.errors.EmptyDataError:
        raise _fail(source, "file has no header and no rows") from None
    except UnicodeDecodeError as exc:
        raise _fail(source, f"not UTF-8 text (byte {exc.start}): save the file as UTF-8") from None
    except _READ_ERRORS as exc:
        kind = "parquet" if name.endswith(_PARQUET_SUFFIXES) else "CSV"
        detail = _one_line(str(exc))[:200] or type(exc).__name__
        raise _fail(source, f"cannot be read as {kind}: {detail}") from None
    logger.info("read %s: %d rows, %d columns", source, len(frame), frame.shape[1])
    return frame


# --------------------------------------------------------------------------- column helpers


def _prepare(df: pd.DataFrame, source: str, keys: Sequence[str]) -> pd.DataFrame:
    """A shallow copy with stripped text column names and contract keys out of the index."""
    if not isinstance(df, pd.DataFrame):
        raise _fail(source, f"expected a table, got {type(df).__name__}")
    frame = df.copy(deep=False)
    index_keys = [n for n in frame.index.names if n is not None and str(n).strip() in keys]
    if index_keys:
        logger.info("%s: moved index level(s) %s to columns", source, index_keys)
        frame = frame.reset_index(level=index_keys)
    frame.columns = [str(c).strip() for c in frame.columns]
    duplicated = frame.columns[frame.columns.duplicated()].unique().tolist()
    if duplicated:
        raise _fail(
            source, f"{_plural(len(duplicated), 'duplicate column name')}: {_names(duplicated)}"
        )
    return frame.reset_index(drop=True)


def _require_columns(frame: pd.DataFrame, source: str, required: Sequence[str]) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        found = list(frame.columns)
        raise _fail(
            source,
            f"{_plural(len(missing), 'missing column')}: {_names(missing)} "
            f"(found {_names(found) if found else 'no columns'})",
        )


def _as_text(series: pd.Series) -> pd.Series:
    """Values as stripped ``str`` (missing stays missing; 7.0 from a float column becomes '7')."""
    values = series
    if pd.api.types.is_float_dtype(values.dtype):
        finite = values.dropna()
        if len(finite) and np.all(np.isfinite(finite)) and np.all(finite == np.round(finite)):
            values = values.astype("Int64")
    return values.astype("str").str.strip()


def _server_ids(series: pd.Series, source: str) -> pd.Series:
    ids = _as_text(series)
    empty = ids.isna() | ids.eq("")
    if empty.any():
        raise _fail(
            source,
            f"{_col('server_id')}: {_plural(int(empty.sum()), 'empty value')} ({_rows(empty)})",
        )
    return ids


def _parse_uniques(uniques: pd.Index) -> tuple[pd.DatetimeIndex, str | None]:
    """Parse distinct date values (ISO 8601 first, then pandas' inferred format).

    Returns (naive parsed values, how time zones were handled or None); failures are NaT.
    """
    if pd.api.types.is_object_dtype(uniques.dtype) or pd.api.types.is_string_dtype(uniques.dtype):
        uniques = pd.Index([u.strip() if isinstance(u, str) else u for u in uniques], dtype=object)
    best = pd.DatetimeIndex([pd.NaT] * len(uniques))
    # A plain parse turns values in a second time zone into NaT (or raises on mixed offsets);
    # the UTC parse only wins when it parses strictly more, i.e. when time zones are involved.
    for fmt, utc in (("ISO8601", False), ("ISO8601", True), (None, False), (None, True)):
        try:
            parsed = pd.DatetimeIndex(pd.to_datetime(uniques, errors="coerce", format=fmt, utc=utc))
        except (ValueError, TypeError):
            continue
        if parsed.isna().sum() < best.isna().sum():
            best = parsed
        if not best.isna().any():
            break
    handled = None
    if best.tz is not None:
        best, handled = _day_frame(_wall_clock(uniques, best), best)
    return best.where(_ns_range_mask(best)), handled


def _wall_clock(uniques: pd.Index, parsed: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Each value's local time in its own zone (mixed offsets parse one by one)."""
    if parsed.tz is not None and str(parsed.tz) != "UTC":
        return parsed.tz_localize(None)
    local = []
    for value, fallback in zip(uniques, parsed, strict=True):
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, TypeError):
            stamp = fallback
        local.append(
            stamp.tz_localize(None) if isinstance(stamp, pd.Timestamp) and stamp.tz else stamp
        )
    return pd.DatetimeIndex(local)


def _day_frame(local: pd.DatetimeIndex, aware: pd.DatetimeIndex) -> tuple[pd.DatetimeIndex, str]:
    """Naive dates from time-zone-aware ones, in the frame where they are whole days.

    A daily export stamps each day at midnight, either local (the usual case: a Berlin
    exporter writes 2024-03-01T00:00+01:00, which is still 29 February in UTC) or UTC shown in
    a local zone (2024-02-29T19:00-05:00 for UTC 1 March). Local midnights keep the local
    day; otherwise values are converted to UTC.
    """
    present = local[~local.isna()]
    if len(present) and (present == present.normalize()).all():
        return local, "local calendar day kept, time zone dropped"
    return aware.tz_convert("UTC").tz_localize(None), "converted to UTC, time zone dropped"


def _ns_range_mask(values: pd.DatetimeIndex) -> np.ndarray:
    """True where a value is missing or fits datetime64[ns] (years 1677..2262)."""
    low, high = pd.Timestamp.min.ceil("D"), pd.Timestamp.max.floor("D")
    return np.asarray(values.isna() | ((values >= low) & (values <= high)))


def _parse_dates(
    series: pd.Series, source: str, column: str, warnings: list[str], *, allow_empty: bool
) -> pd.Series:
    """Dates as naive ``datetime64[ns]``; time-zone-aware values lose their zone (``_day_frame``)."""
    dtype = series.dtype
    empty = series.isna().to_numpy()
    if pd.api.types.is_bool_dtype(dtype) or (
        pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_datetime64_any_dtype(dtype)
    ):
        present = series.dropna()
        if len(present):
            raise _fail(
                source,
                f"{_col(column)}: {_plural(len(present), 'numeric value')}, expected dates "
                f"like '2024-01-31'{_examples(present.iloc[:50])}",
            )
        parsed = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns]")
    elif isinstance(dtype, pd.DatetimeTZDtype):
        aware = pd.DatetimeIndex(series)
        days, handled = _day_frame(aware.tz_localize(None), aware)
        _warn(warnings, source, f"{_col(column)}: time-zone-aware dates ({dtype.tz}): {handled}")
        parsed = pd.Series(days, index=series.index)
    elif pd.api.types.is_datetime64_dtype(dtype):
        parsed = series
    else:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        # One flag per distinct value, plus a trailing True that code -1 (missing) picks up.
        blank = np.array([isinstance(u, str) and not u.strip() for u in uniques] + [True])
        empty = blank[codes]
        parsed_uniques, handled = _parse_uniques(pd.Index(uniques))
        if handled:
            _warn(warnings, source, f"{_col(column)}: time-zone-aware dates: {handled}")
        taken = parsed_uniques.as_unit("ns").take(codes, allow_fill=True, fill_value=pd.NaT)
        parsed = pd.Series(taken, index=series.index)

    in_range = _ns_range_mask(pd.DatetimeIndex(parsed))
    if not in_range.all():
        raise _fail(
            source,
            f"{_col(column)}: {_plural(int((~in_range).sum()), 'date')} outside the years 1677..2262"
            f"{_examples(series[~in_range].iloc[:50])}",
        )
    parsed = parsed.astype("datetime64[ns]")

    unparseable = parsed.isna().to_numpy() & ~empty
    if unparseable.any():
        raise _fail(
            source,
            f"{_col(column)}: {_plural(int(unparseable.sum()), 'unparseable or out-of-range date')}"
            f"{_examples(series[unparseable].iloc[:200])}; expected dates like '2024-01-31'",
        )
    if not allow_empty and empty.any():
        raise _fail(
            source,
            f"{_col(column)}: {_plural(int(empty.sum()), 'empty value')} ({_rows(empty)})",
        )
    return parsed


def _as_number(series: pd.Series, source: str, column: str) -> pd.Series:
    """Values as float64: empty strings and NaN are missing, any other text is an error."""
    if pd.api.types.is_bool_dtype(series.dtype):
        raise _fail(
            source,
            f"{_col(column)}: {_plural(int(series.notna().sum()), 'true/false value')}, expected numbers",
        )
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype("float64")
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    text = pd.Series(pd.Index(uniques).astype("str")).str.strip()
    numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    blank = text.isna() | text.eq("") | text.str.lower().eq("nan")
    bad_unique = (numbers.isna() & ~blank).to_numpy()
    if bad_unique.any():
        bad_rows = np.isin(codes, np.flatnonzero(bad_unique))
        raise _fail(
            source,
            f"{_col(column)}: {_plural(int(bad_rows.sum()), 'non-numeric value')}"
            f"{_examples(series[bad_rows].iloc[:200])}",
        )
    values = numbers.to_numpy().take(codes)
    values[codes < 0] = np.nan
    return pd.Series(values, index=series.index, dtype="float64")


# --------------------------------------------------------------------------- metrics


def _coverage(metrics: pd.DataFrame) -> tuple[int, int, dict[str, int]]:
    """(expected server-days, present rows, non-missing values per metric) over each server's range."""
    if metrics.empty:
        return 0, 0, dict.fromkeys(METRIC_COLUMNS, 0)
    grouped = metrics.groupby("server_id", sort=False, observed=True)
    span = grouped["date"].agg(["min", "max"])
    expected = int(((span["max"] - span["min"]).dt.days + 1).sum())
    present = int(metrics[["server_id", "date"]].drop_duplicates().shape[0])
    counts = {m: int(metrics[m].notna().sum()) for m in METRIC_COLUMNS}
    return expected, present, counts


def validate_metrics(
    df: pd.DataFrame, source: str, *, max_missing_share: float, min_history_days: int
) -> tuple[pd.DataFrame, list[str]]:
    """Check a metrics table against its contract; return (clean frame sorted by server_id, date; warnings).

    The clean frame has exactly ``METRICS_CONTRACT`` columns: ``date`` naive datetime64[ns]
    (daily), ``server_id`` str, metrics float64 in 0..100. Servers with less than
    ``min_history_days`` of history are dropped with a warning.
    """
    started = time.perf_counter()
    warnings: list[str] = []
    frame = _prepare(df, source, METRICS_CONTRACT)
    if frame.empty:
        raise _fail(source, f"0 rows (columns: {_names(list(frame.columns)) or 'none'})")
    _require_columns(frame, source, METRICS_CONTRACT)
    extra = [c for c in frame.columns if c not in METRICS_CONTRACT]
    if extra:
        _warn(warnings, source, f"{_plural(len(extra), 'extra column')} dropped: {_names(extra)}")

    dates = _parse_dates(frame["date"], source, "date", warnings, allow_empty=False)
    with_time = dates.ne(dates.dt.normalize())
    if with_time.any():
        _warn(
            warnings,
            source,
            f"{_col('date')}: {_plural(int(with_time.sum()), 'value')} with a time of day"
            f"{_examples(dates[with_time].iloc[:50])}; only the day is kept",
        )
        dates = dates.dt.normalize()
    ids = _server_ids(frame["server_id"], source)

    values: dict[str, np.ndarray] = {}
    for metric in METRIC_COLUMNS:
        number = _as_number(frame[metric], source, metric)
        array = number.to_numpy(dtype="float64", copy=True)
        outside = (array < 0) | (array > 100 + PERCENT_TOLERANCE)
        if outside.any():
            raise _fail(
                source,
                f"{_col(metric)}: {_plural(int(outside.sum()), 'value')} outside 0..100 percent"
                f"{_examples(array[outside][:50])}",
            )
        np.minimum(array, 100.0, out=array, where=~np.isnan(array))
        present = array[~np.isnan(array)]
        if len(present) and present.max() <= 1.0:
            _warn(
                warnings,
                source,
                f"{_col(metric)}: every value is within 0..1; expected percent (0..100), not fractions",
            )
        values[metric] = array

    # Sort by (server_id, date) once; duplicates are then neighbours.
    server_codes, server_names = pd.factorize(ids, sort=True)
    day_values = dates.to_numpy()
    order = np.lexsort((day_values, server_codes))
    if not np.array_equal(order, np.arange(len(order))):
        logger.info("%s: rows were not sorted by server_id, date; sorted", source)
    server_codes, day_values = server_codes[order], day_values[order]
    repeat = np.zeros(len(order), dtype=bool)
    repeat[1:] = (server_codes[1:] == server_codes[:-1]) & (day_values[1:] == day_values[:-1])
    if repeat.any():
        where = np.flatnonzero(repeat)[:MAX_EXAMPLES]
        shown = ", ".join(
            f"({_show(server_names[server_codes[i]])}, {_show(pd.Timestamp(day_values[i]))})"
            for i in where
        )
        raise _fail(
            source,
            f"columns 'server_id', 'date': {_plural(int(repeat.sum()), 'duplicate row')} "
            f"(e.g. {shown}); expected one row per server per day",
        )

    clean = pd.DataFrame(
        {
            "date": day_values,
            "server_id": pd.Series(
                np.asarray(server_names, dtype=object)[server_codes], dtype="str"
            ),
            **{m: values[m][order] for m in METRIC_COLUMNS},
        }
    )
    clean["date"] = clean["date"].astype("datetime64[ns]")

    first, last = day_values.min(), day_values.max()
    span_days = int((last - first) // np.timedelta64(1, "D")) + 1
    if first == last:
        raise _fail(source, f"{_col('date')}: only 1 day of data ({_show(pd.Timestamp(first))})")
    if span_days < min_history_days:
        raise _fail(
            source,
            f"{_col('date')}: {span_days} days of history "
            f"({_show(pd.Timestamp(first))} to {_show(pd.Timestamp(last))}), "
            f"data.min_history_days is {min_history_days}",
        )

    # Rows are sorted, so each server's first and last day sit at its block's ends.
    boundaries = np.flatnonzero(np.diff(server_codes)) + 1
    starts = day_values[np.r_[0, boundaries]]
    ends = day_values[np.r_[boundaries - 1, len(day_values) - 1]]
    history = (ends - starts) // np.timedelta64(1, "D") + 1
    short = history < min_history_days
    if short.all():
        raise _fail(
            source,
            f"{_col('date')}: no server has {min_history_days} days of history "
            f"(longest {int(history.max())} days, data.min_history_days is {min_history_days})",
        )
    if short.any():
        names = [str(server_names[i]) for i in np.flatnonzero(short)]
        _warn(
            warnings,
            source,
            f"{_col('server_id')}: {_plural(len(names), 'server')} with under {min_history_days} "
            f"days of history dropped{_examples(names)}",
        )
        clean = clean[~short[server_codes]].reset_index(drop=True)

    expected, _, counts = _coverage(clean)
    too_sparse = []
    for metric in METRIC_COLUMNS:
        missing = expected - counts[metric]
        share = missing / expected
        if share > max_missing_share:
            too_sparse.append(
                f"{_col(metric)} missing share {share:.3f} ({missing} of {expected} server-days)"
            )
    if too_sparse:
        raise _fail(
            source,
            f"{', '.join(too_sparse)}: above data.max_missing_share {max_missing_share:g} "
            "(empty values plus absent days within each server's first..last date)",
        )

    logger.info(
        "%s: %d rows, %d servers, %d days valid in %.2fs",
        source,
        len(clean),
        clean["server_id"].nunique(),
        span_days,
        time.perf_counter() - started,
    )
    return clean, warnings


# --------------------------------------------------------------------------- servers


def validate_servers(df: pd.DataFrame, source: str) -> tuple[pd.DataFrame, list[str]]:
    """Check server metadata: required columns present (extras kept), one row per server_id.

    Text columns are stripped and must not be empty; capacity columns are numeric (int64 when
    given as integers, else float64) and > 0, ``monthly_cost_usd`` >= 0; ``commissioned_date`` (if present) becomes datetime64[ns].
    """
    warnings: list[str] = []
    frame = _prepare(df, source, ("server_id",))
    if frame.empty:
        raise _fail(source, f"0 rows (columns: {_names(list(frame.columns)) or 'none'})")
    _require_columns(frame, source, SERVERS_REQUIRED)

    ids = _server_ids(frame["server_id"], source)
    repeated = ids.duplicated(keep="first")
    if repeated.any():
        raise _fail(
            source,
            f"{_col('server_id')}: {_plural(int(repeated.sum()), 'duplicate value')}"
            f"{_examples(ids[repeated].iloc[:50])}; expected one row per server",
        )
    frame["server_id"] = ids

    for column in SERVER_TEXT_COLUMNS:
        text = _as_text(frame[column])
        empty = text.isna() | text.eq("")
        if empty.any():
            raise _fail(
                source,
                f"{_col(column)}: {_plural(int(empty.sum()), 'empty value')}"
                f"{_for_servers(ids[empty])}",
            )
        frame[column] = text

    for column in SERVER_POSITIVE_COLUMNS + SERVER_NON_NEGATIVE_COLUMNS:
        number = _as_number(frame[column], source, column)
        if number.isna().any():
            raise _fail(
                source,
                f"{_col(column)}: {_plural(int(number.isna().sum()), 'empty value')}"
                f"{_for_servers(ids[number.isna()])}",
            )
        positive = column in SERVER_POSITIVE_COLUMNS
        bad = ~np.isfinite(number) | (number <= 0 if positive else number < 0)
        if bad.any():
            rule = "> 0" if positive else ">= 0"
            raise _fail(
                source,
                f"{_col(column)}: {_plural(int(bad.sum()), 'invalid value')} "
                f"(must be finite and {rule})"
                f"{_examples(number[bad].iloc[:50])}",
            )
        # Integer columns (ours: cores, GB) stay integer; anything else becomes float64.
        keep_int = pd.api.types.is_integer_dtype(frame[column].dtype)
        frame[column] = number.astype("int64") if keep_int else number

    if "commissioned_date" in frame.columns:
        parsed = _parse_dates(
            frame["commissioned_date"], source, "commissioned_date", warnings, allow_empty=True
        )
        frame["commissioned_date"] = parsed

    frame = frame.sort_values("server_id", kind="stable").reset_index(drop=True)
    logger.info("%s: %d servers valid", source, len(frame))
    return frame, warnings


# --------------------------------------------------------------------------- fleet


def validate_fleet(
    metrics: pd.DataFrame,
    servers: pd.DataFrame,
    *,
    metrics_source: str,
    servers_source: str,
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Cross-check validated metrics and servers: every measured server must be described.

    Servers described but never measured are dropped from ``servers`` with a warning.
    """
    warnings: list[str] = []
    measured = pd.Index(metrics["server_id"].unique())
    described = pd.Index(servers["server_id"])
    unknown = measured.difference(described, sort=True)
    if len(unknown):
        raise _fail(
            metrics_source,
            f"{_col('server_id')}: {_plural(len(unknown), 'server')} not in {servers_source}"
            f"{_examples(unknown[:MAX_EXAMPLES])}",
        )
    has_metrics = servers["server_id"].isin(measured)
    if not has_metrics.all():
        names = servers.loc[~has_metrics, "server_id"]
        _warn(
            warnings,
            servers_source,
            f"{_col('server_id')}: {_plural(len(names), 'server')} without metrics in "
            f"{metrics_source} dropped{_examples(names.iloc[:50])}",
        )
        servers = servers[has_metrics].reset_index(drop=True)
    if len(servers) == 1:
        logger.info("fleet of a single server: %s", servers["server_id"].iloc[0])
    logger.info("fleet: %d servers, %d metric rows", len(servers), len(metrics))
    return metrics, servers, warnings


# --------------------------------------------------------------------------- quality


def _number(value: Any) -> float | None:
    value = float(value)
    return None if np.isnan(value) else round(value, 6)


def quality_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per metric: count, missing (empty values plus absent days), missing_share, min, p50, p95, max."""
    expected, _, counts = _coverage(metrics)
    rows = []
    for metric in METRIC_COLUMNS:
        values = metrics[metric].dropna()
        missing = expected - counts[metric]
        quantiles = values.quantile([0.5, 0.95]) if len(values) else pd.Series([np.nan, np.nan])
        rows.append(
            {
                "metric": metric,
                "count": counts[metric],
                "missing": missing,
                "missing_share": missing / expected if expected else np.nan,
                "min": values.min() if len(values) else np.nan,
                "p50": float(quantiles.iloc[0]),
                "p95": float(quantiles.iloc[1]),
                "max": values.max() if len(values) else np.nan,
            }
        )
    table = pd.DataFrame(rows).set_index("metric")
    return table.astype({"count": "int64", "missing": "int64"})


def quality_summary(metrics: pd.DataFrame, servers: pd.DataFrame, warnings: list[str]) -> dict:
    """A JSON-ready data-quality summary of a validated fleet (counts, dates, per-metric stats)."""
    expected, present, counts = _coverage(metrics)
    has_rows = not metrics.empty
    start = pd.Timestamp(metrics["date"].min()) if has_rows else None
    end = pd.Timestamp(metrics["date"].max()) if has_rows else None
    per_metric = {}
    for metric in METRIC_COLUMNS:
        values = metrics[metric]
        per_metric[metric] = {
            "missing_share": _number((expected - counts[metric]) / expected) if expected else None,
            "min": _number(values.min()),
            "max": _number(values.max()),
            "mean": _number(values.mean()),
        }

    def counts_by(column: str) -> dict[str, int]:
        if column not in servers.columns:
            return {}
        return {str(k): int(v) for k, v in servers[column].value_counts().sort_index().items()}

    return {
        "rows": len(metrics),
        "servers": int(metrics["server_id"].nunique()),
        "date_start": start.strftime("%Y-%m-%d") if start is not None else None,
        "date_end": end.strftime("%Y-%m-%d") if end is not None else None,
        "days": int((end - start).days + 1) if has_rows else 0,
        "metrics": per_metric,
        "missing_server_days_share": _number((expected - present) / expected) if expected else None,
        "servers_by_environment": counts_by("environment"),
        "servers_by_business_unit": counts_by("business_unit"),
        "warnings": [str(w) for w in warnings],
    }
