"""Stage 02: validate a fleet's metrics and servers tables against their contracts (``schema``).

Input is ours (stage 01) or a user's own tables, already read (``read``). Every problem becomes
one :class:`DataValidationError` line that names the file, the column and the count, with up to
three example values (``messages``). Softer problems (extra columns, time zones, short-history
servers) come back as warnings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from capacity_forecaster.core.contract import (
    METRIC_COLUMNS,
    SERVER_CAPACITY_COLUMNS,
    SERVER_COST_COLUMNS,
    SERVER_REQUIRED_COLUMNS,
    SERVER_TEXT_COLUMNS,
)
from capacity_forecaster.core.errors import DataValidationError
from capacity_forecaster.core.params import MIN_HISTORY_FLOOR
from capacity_forecaster.core.vocabulary import METRICS, MetricName
from capacity_forecaster.ingest.coerce import as_number, as_text, server_ids
from capacity_forecaster.ingest.dates import parse_dates
from capacity_forecaster.ingest.messages import (
    MAX_EXAMPLES,
    col,
    examples,
    fail,
    for_servers,
    names,
    plural,
    repeated_name,
    show,
    warn,
)
from capacity_forecaster.ingest.quality import coverage
from capacity_forecaster.ingest.read import DERIVED_ROWS, row_name
from capacity_forecaster.ingest.retired import (
    SET_ASIDE_COLUMNS,
    OffAndStale,
    set_aside_off_and_stale,
)

logger = logging.getLogger(__name__)

# Percent values this far above 100 are float noise from upstream tools: clipped silently.
PERCENT_TOLERANCE = 1e-6

# A stray date: at most this many rows at one end of a server's history, cut off from the rest
# by a gap of more than this many days (a mistyped year, Excel's 1900-01-01, epoch 1970-01-01).
MAX_STRAY_ROWS = 3
STRAY_GAP_DAYS = 31


# Clipped values above 100 %, per server and metric: {"srv-1": {"cpu_p95": 3}}.
ClippedCounts = dict[str, dict[str, int]]


@dataclass(frozen=True)
class ValidatedMetrics:
    """The clean metrics table and what validation found on the way."""

    frame: pd.DataFrame
    warnings: list[str]
    clipped: ClippedCounts  # values above 100 % read as 100, per server and metric
    # Servers left out as powered off or stale (retired.SET_ASIDE_COLUMNS), and all-zero
    # days per server (left out of the table).
    set_aside: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(SET_ASIDE_COLUMNS))
    )
    all_zero_days: dict[str, int] = field(default_factory=dict)


class _SortedRows(NamedTuple):
    """Metric rows in (server_id, date) order: the order, and per sorted row its day and the
    code of its server in ``server_names``."""

    order: np.ndarray
    days: np.ndarray
    server_codes: np.ndarray
    server_names: pd.Index
    named_in: str = ""  # where rows are named (row_name): the file, '' for an export's table


class _Stray(NamedTuple):
    """A row cut off from the rest of its server's history: its sorted position, and the
    nearest day of the rest (after it when ``before_rest``)."""

    position: int
    nearest: np.datetime64
    before_rest: bool


class _Sparse(NamedTuple):
    """A metric missing more than data.max_missing_share of its server-days."""

    metric: str
    share: float
    missing: int
    expected: int


# --------------------------------------------------------------------------- metrics


def validate_metrics(
    df: pd.DataFrame,
    source: str,
    *,
    max_missing_share: float,
    min_history_days: int,
    over_100: Literal["clip", "fail"] = "fail",
    stale_after_days: int | None = None,
) -> ValidatedMetrics:
    """Check a metrics table against its contract: the clean frame sorted by server_id, date,
    the warnings, and the values clipped to 100 % per server and metric.

    The clean frame has exactly ``METRIC_COLUMNS``: ``date`` naive datetime64[ns] (daily),
    ``server_id`` str, metrics float64 in 0..100. A metric column that is absent or empty
    throughout is "not monitored": kept as NaN with one warning, and later stages leave it
    out. Values above 100 % fail, or are clipped with ``over_100='clip'``. Servers with less
    than ``min_history_days`` of history are dropped with a warning. With
    ``stale_after_days``, all-zero days are left out and powered-off and stale servers set
    aside (``retired``).
    """
    started = time.perf_counter()
    warnings: list[str] = []
    # Where rows are named (row_name): the file's, unless the table was built from an export.
    rows_source = "" if df.attrs.get(DERIVED_ROWS) else source
    frame = _prepare(df, source, METRIC_COLUMNS[:2], index_keys=METRIC_COLUMNS)
    frame = _not_monitored(frame, source, warnings)
    extra = [c for c in frame.columns if c not in METRIC_COLUMNS]
    if extra:
        warn(warnings, source, f"{plural(len(extra), 'extra column')} dropped: {names(extra)}")

    dates = _daily_dates(frame["date"], source, rows_source, warnings)
    ids = server_ids(frame["server_id"], source, rows_source)
    clipped: ClippedCounts = {}
    values = {
        metric: _percent(frame[metric], ids, source, metric, over_100, clipped, warnings)
        for metric in METRICS
    }
    rows = _sort_rows(ids, dates, source, values, rows_source)
    columns: dict[str, np.ndarray | pd.Series] = {
        "date": rows.days,
        "server_id": pd.Series(
            np.asarray(rows.server_names, dtype=object)[rows.server_codes], dtype="str"
        ),
    }
    columns.update({m: values[m][rows.order] for m in METRICS})
    clean = pd.DataFrame(columns)
    clean["date"] = clean["date"].astype("datetime64[ns]")

    span_days = _history_span(rows.days, source, min_history_days)
    clean = _drop_short_histories(clean, rows, source, min_history_days, warnings)
    off = OffAndStale(clean, pd.DataFrame(columns=list(SET_ASIDE_COLUMNS)), {})
    if stale_after_days is not None:
        off = set_aside_off_and_stale(clean, source, stale_after_days, warnings)
        if off.metrics.empty:
            raise fail(
                source,
                f"every server is powered off or stale ({len(off.set_aside)} set aside); "
                "nothing left to forecast",
            )
    clean = off.metrics
    _check_missing_shares(clean, source, max_missing_share, warnings, off.all_zero_days, rows)
    logger.info(
        "%s: %d rows, %d servers, %d days valid in %.2fs",
        source,
        len(clean),
        clean["server_id"].nunique(),
        span_days,
        time.perf_counter() - started,
    )
    return ValidatedMetrics(clean, warnings, clipped, off.set_aside, off.all_zero_days)


def _not_monitored(frame: pd.DataFrame, source: str, warnings: list[str]) -> pd.DataFrame:
    """Add each absent metric column as NaN; warn once naming every metric nobody reports."""
    metric_columns = [m for m in METRICS if m in frame.columns]
    if not metric_columns:
        raise fail(
            source,
            f"no metric column: expected at least one of {names(list(METRICS))} "
            f"(found {names(list(frame.columns))})",
        )
    frame = frame.assign(**{m: np.nan for m in METRICS if m not in frame.columns})
    absent = [m for m in METRICS if m not in metric_columns]
    empty = [m for m in metric_columns if as_number(frame[m], source, m).isna().all()]
    if absent or empty:
        parts = [f"{names(absent)} absent"] if absent else []
        parts += [f"{names(empty)} empty"] if empty else []
        warn(
            warnings,
            source,
            f"not monitored ({'; '.join(parts)}): left out of every stage; the reports say so",
        )
    return frame


def _daily_dates(
    series: pd.Series, source: str, rows_source: str, warnings: list[str]
) -> pd.Series:
    """The ``date`` column parsed (rows named in ``rows_source``); times of day are dropped
    with a warning."""
    dates = parse_dates(series, source, "date", warnings, allow_empty=False, named_in=rows_source)
    with_time = dates.ne(dates.dt.normalize())
    if with_time.any():
        warn(
            warnings,
            source,
            f"{col('date')}: {plural(int(with_time.sum()), 'value')} with a time of day"
            f"{examples(dates[with_time].iloc[:50])}; only the day is kept",
        )
        dates = dates.dt.normalize()
    return dates


def _percent(
    series: pd.Series,
    ids: pd.Series,
    source: str,
    metric: str,
    over_100: Literal["clip", "fail"],
    clipped: ClippedCounts,
    warnings: list[str],
) -> np.ndarray:
    """A metric as float64 percent in 0..100; above 100 fails or is clipped and counted per
    server in ``clipped`` (a hair above 100 is float noise, clipped silently); fractions warn."""
    array = as_number(series, source, metric).to_numpy(dtype="float64", copy=True)
    for wrong, what in ((np.isinf(array), "infinite"), (array < 0, "below 0 percent")):
        if wrong.any():
            raise fail(
                source,
                f"{col(metric)}: {plural(int(wrong.sum()), 'value')} {what}"
                f"{examples(array[wrong][:50])}",
            )
    over = array > 100 + PERCENT_TOLERANCE  # inf was refused above
    if over.any():
        if over_100 == "fail":
            raise fail(
                source,
                f"{col(metric)}: {plural(int(over.sum()), 'value')} above 100 percent"
                f"{examples(array[over][:50])}; set data.over_100: clip to read them as 100",
            )
        per_server = pd.Series(ids.to_numpy()[over]).value_counts().sort_index()
        for server, count in per_server.items():
            clipped.setdefault(str(server), {})[metric] = int(count)
        warn(
            warnings,
            source,
            f"{col(metric)}: {plural(int(over.sum()), 'value')} above 100 percent clipped to 100 "
            f"(max {float(array[over].max()):.1f}) on {plural(len(per_server), 'server')}"
            f"{examples(list(per_server.index[:50]))}",
        )
    np.minimum(array, 100.0, out=array, where=~np.isnan(array))
    present = array[~np.isnan(array)]
    if len(present) and present.max() <= 1.0:
        warn(
            warnings,
            source,
            f"{col(metric)}: every value is within 0..1; expected percent (0..100), not fractions",
        )
    return array


def _sort_rows(
    ids: pd.Series,
    dates: pd.Series,
    source: str,
    values: Mapping[MetricName, np.ndarray],
    rows_source: str,
) -> _SortedRows:
    """Sort by (server_id, date) once; duplicates are then neighbours, and an error naming
    their rows in ``rows_source`` (``row_name``)."""
    server_codes, server_names = pd.factorize(ids, sort=True)
    day_values = dates.to_numpy()
    order = np.lexsort((day_values, server_codes))
    if not np.array_equal(order, np.arange(len(order))):
        logger.info("%s: rows were not sorted by server_id, date; sorted", source)
    rows = _SortedRows(
        order, day_values[order], server_codes[order], pd.Index(server_names), rows_source
    )
    repeat = np.zeros(len(order), dtype=bool)
    repeat[1:] = (rows.server_codes[1:] == rows.server_codes[:-1]) & (
        rows.days[1:] == rows.days[:-1]
    )
    if repeat.any():
        raise _duplicate_days(rows, repeat, source, values)
    return rows


def _duplicate_days(
    rows: _SortedRows, repeat: np.ndarray, source: str, values: Mapping[MetricName, np.ndarray]
) -> DataValidationError:
    """The error for rows repeating a server-day (``repeat`` flags each sorted row that repeats
    the one before): the first server-day and its row count, and what the rows look like."""
    second = int(np.flatnonzero(repeat)[0])
    last = second
    while last + 1 < len(repeat) and repeat[last + 1]:
        last += 1
    server_days = int((repeat[1:] & ~repeat[:-1]).sum())
    places = [row_name(rows.named_in, int(rows.order[i])) for i in (second - 1, second)]
    at = f" ({' and '.join(places)})" if all(places) else ""
    sorted_values = [values[m][rows.order] for m in METRICS]
    copies = all(
        np.array_equal(v[1:][repeat[1:]], v[:-1][repeat[1:]], equal_nan=True) for v in sorted_values
    )
    # Identical rows are an export written twice; rows that differ are several samples a day,
    # which the samples format reads and reduces to each day's P95.
    hint = (
        "the repeated rows hold the same values: remove the copies"
        if copies
        else "for several samples a day, write rows of timestamp, server_id, metric, value and "
        "set data.format: samples (it takes each day's P95)"
    )
    server = rows.server_names[int(rows.server_codes[second])]
    return fail(
        source,
        f"columns 'server_id', 'date': {plural(int(repeat.sum()), 'duplicate row')} on "
        f"{plural(server_days, 'server-day')}, the first {show(server)} with "
        f"{last - second + 2} rows on {show(pd.Timestamp(rows.days[second]))}{at}; expected "
        f"one row per server per day; {hint}",
    )


def _history_span(days: np.ndarray, source: str, min_history_days: int) -> int:
    """Days from the first to the last date; fewer than ``min_history_days`` is an error."""
    first, last = days.min(), days.max()
    span_days = int((last - first) // np.timedelta64(1, "D")) + 1
    if first == last:
        raise fail(source, f"{col('date')}: only 1 day of data ({show(pd.Timestamp(first))})")
    if span_days < min_history_days:
        raise fail(
            source,
            f"{col('date')}: {span_days} days of history "
            f"({show(pd.Timestamp(first))} to {show(pd.Timestamp(last))}), "
            f"data.min_history_days is {min_history_days}{_floor_hint(span_days, min_history_days)}",
        )
    return span_days


def _floor_hint(have_days: int, min_history_days: int) -> str:
    """What the user can do: lower data.min_history_days, or, at its floor, supply more days."""
    if have_days >= MIN_HISTORY_FLOOR and min_history_days > MIN_HISTORY_FLOOR:
        return f"; lower it (to {have_days} or less, at least {MIN_HISTORY_FLOOR})"
    return f"; the shortest history the pipeline forecasts from is {MIN_HISTORY_FLOOR} days: supply more"


def _drop_short_histories(
    clean: pd.DataFrame,
    rows: _SortedRows,
    source: str,
    min_history_days: int,
    warnings: list[str],
) -> pd.DataFrame:
    """Drop servers with under ``min_history_days`` of history (a warning); none left is an error."""
    # Rows are sorted, so each server's first and last day sit at its block's ends.
    boundaries = np.flatnonzero(np.diff(rows.server_codes)) + 1
    starts = rows.days[np.r_[0, boundaries]]
    ends = rows.days[np.r_[boundaries - 1, len(rows.days) - 1]]
    history = (ends - starts) // np.timedelta64(1, "D") + 1
    short = history < min_history_days
    if short.all():
        raise fail(
            source,
            f"{col('date')}: no server has {min_history_days} days of history "
            f"(longest {int(history.max())} days, data.min_history_days is {min_history_days}"
            f"{_floor_hint(int(history.max()), min_history_days)})",
        )
    if short.any():
        dropped = [str(rows.server_names[int(i)]) for i in np.flatnonzero(short)]
        warn(
            warnings,
            source,
            f"{col('server_id')}: {plural(len(dropped), 'server')} with under {min_history_days} "
            f"days of history dropped{examples(dropped)}",
        )
        clean = clean[~short[rows.server_codes]].reset_index(drop=True)
    return clean


def _check_missing_shares(
    clean: pd.DataFrame,
    source: str,
    max_missing_share: float,
    warnings: list[str],
    off_days: dict[str, int] | None = None,
    rows: _SortedRows | None = None,
) -> None:
    """Each metric's missing share (empty values plus absent days within each server's
    first..last date, less its all-zero ``off_days``, which are known rather than missing) at
    most ``max_missing_share``, over the servers that report it at all; the servers that never
    report a metric the rest of the fleet reports are named instead. When a few stray dates
    (``rows``, ``_stray_rows``) are what pushes a share over, the first is named by its row;
    when they push no share over, they are kept and named in a warning."""
    too_sparse = _too_sparse(clean, max_missing_share, off_days or {}, source, warnings)
    if not too_sparse:
        if rows is not None:
            _warn_on_stray_dates(clean, rows, source, warnings)
        return
    if rows is not None:
        _fail_on_stray_dates(clean, rows, source, max_missing_share, off_days or {}, too_sparse)
    shares = ", ".join(
        f"{col(s.metric)} missing share {s.share:.3f} ({s.missing} of {s.expected} server-days)"
        for s in too_sparse
    )
    raise fail(
        source,
        f"{shares}: above data.max_missing_share {max_missing_share:g} "
        "(empty values plus absent days within each server's first..last date)",
    )


def _too_sparse(
    clean: pd.DataFrame,
    max_missing_share: float,
    off_days: dict[str, int],
    source: str,
    warnings: list[str] | None,
) -> list[_Sparse]:
    """The metrics whose missing share is above ``max_missing_share`` (``_check_missing_shares``);
    the servers never reporting a metric are warned about when ``warnings`` is given."""
    too_sparse = []
    for metric in METRICS:
        reporting = clean.groupby("server_id", sort=True)[metric].count()
        silent = reporting.index[reporting.eq(0)]
        if len(silent) == len(reporting):
            continue  # not monitored at all: warned once by _not_monitored
        if len(silent) and warnings is not None:
            warn(
                warnings,
                source,
                f"{col(metric)}: never reported by {plural(len(silent), 'server')}"
                f"{examples(list(silent[:50]))}; their {metric} is not forecast "
                "(validated/quality.json lists them)",
            )
        reporters = clean[~clean["server_id"].isin(silent)]
        expected, _, counts = coverage(reporters)
        expected -= sum(off_days.get(s, 0) for s in reporters["server_id"].unique())
        missing = max(expected - counts[metric], 0)
        share = missing / expected if expected else 0.0
        if share > max_missing_share:
            too_sparse.append(_Sparse(metric, share, missing, expected))
    return too_sparse


def _fail_on_stray_dates(
    clean: pd.DataFrame,
    rows: _SortedRows,
    source: str,
    max_missing_share: float,
    off_days: dict[str, int],
    too_sparse: list[_Sparse],
) -> None:
    """Fail naming the first stray date by its row when, without the stray dates, no metric's
    missing share would be too high.

    A lone distant date is a valid date; it is only known to be wrong when it stretches its
    server's history so far that the days between make the share fail, and the user would
    otherwise be told about missing values on every column instead of one cell.
    """
    strays, is_stray = _kept_strays(clean, rows)
    if not strays or _too_sparse(clean[~is_stray], max_missing_share, off_days, source, None):
        return
    worst = max(too_sparse, key=lambda sparse: sparse.share)
    raise fail(
        source,
        f"{_stray_where(rows, strays)}, so the days between count as missing "
        f"({col(worst.metric)} missing share {worst.share:.3f}, data.max_missing_share "
        f"{max_missing_share:g}){_more_strays(strays)}: fix the date, or remove the row",
    )


def _warn_on_stray_dates(
    clean: pd.DataFrame, rows: _SortedRows, source: str, warnings: list[str]
) -> None:
    """Warn naming the first stray date by its row when stray dates pass the missing share.

    The rows are kept, not dropped: a lone distant date may be right (a server back after a
    long pause), and validation does not change data it cannot show to be wrong. The warning
    makes a wrong one visible, since the days between then count as missing days of the
    server's history.
    """
    strays, _ = _kept_strays(clean, rows)
    if strays:
        warn(
            warnings,
            source,
            f"{_stray_where(rows, strays)}; kept, so the days between count as missing"
            f"{_more_strays(strays)}: if the date is wrong, fix it or remove the row",
        )


def _kept_strays(clean: pd.DataFrame, rows: _SortedRows) -> tuple[list[_Stray], np.ndarray]:
    """The stray rows (``_stray_rows``) still in ``clean`` (not dropped with a short history,
    set aside or left out as all-zero), and which rows of ``clean`` they are."""
    strays = _stray_rows(rows)
    if not strays:
        return [], np.zeros(len(clean), dtype=bool)
    positions = np.array([stray.position for stray in strays])
    keys = pd.MultiIndex.from_arrays(
        [rows.server_names[rows.server_codes[positions]], pd.DatetimeIndex(rows.days[positions])]
    )
    clean_keys = pd.MultiIndex.from_arrays([clean["server_id"], clean["date"]])
    kept = keys.isin(clean_keys)
    return [s for s, k in zip(strays, kept, strict=True) if k], clean_keys.isin(keys)


def _stray_where(rows: _SortedRows, strays: list[_Stray]) -> str:
    """``column 'date': <day> at <row> (server 'x') lies N days before the rest of its
    history, which starts <day>``, for the first of ``strays`` in the file."""
    first = min(strays, key=lambda stray: int(rows.order[stray.position]))
    day = rows.days[first.position]
    server = rows.server_names[int(rows.server_codes[first.position])]
    place = row_name(rows.named_in, int(rows.order[first.position]))
    gap = abs(int((day - first.nearest) // np.timedelta64(1, "D")))
    return (
        f"{col('date')}: {show(pd.Timestamp(day))}{f' at {place}' if place else ''} (server "
        f"{show(server)}) lies {gap} days {'before' if first.before_rest else 'after'} the rest "
        f"of its history, which {'starts' if first.before_rest else 'ends'} "
        f"{show(pd.Timestamp(first.nearest))}"
    )


def _more_strays(strays: list[_Stray]) -> str:
    """``; 2 more dates like it`` (on any server), or '' for a single stray date."""
    return f"; {plural(len(strays) - 1, 'more date')} like it" if len(strays) > 1 else ""


def _stray_rows(rows: _SortedRows) -> list[_Stray]:
    """Rows cut off from the rest of their server's history: at most ``MAX_STRAY_ROWS`` at one
    end, beyond its widest gap, when that gap is over ``STRAY_GAP_DAYS``."""
    starts = np.r_[0, np.flatnonzero(np.diff(rows.server_codes)) + 1]
    ends = np.r_[starts[1:], len(rows.days)]
    gaps = np.diff(rows.days) // np.timedelta64(1, "D")
    strays: list[_Stray] = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        if end - start < 2:
            continue
        widest = int(np.argmax(gaps[start : end - 1]))
        if gaps[start + widest] <= STRAY_GAP_DAYS:
            continue
        head = widest + 1  # rows before the widest gap
        tail = end - start - head
        if head <= MAX_STRAY_ROWS and head < tail:
            nearest = rows.days[start + head]
            strays += [_Stray(p, nearest, True) for p in range(start, start + head)]
        elif tail <= MAX_STRAY_ROWS and tail < head:
            nearest = rows.days[start + head - 1]
            strays += [_Stray(p, nearest, False) for p in range(start + head, end)]
    return strays


# --------------------------------------------------------------------------- servers


def validate_servers(df: pd.DataFrame, source: str) -> tuple[pd.DataFrame, list[str]]:
    """Check server metadata: required columns present (extras kept), one row per server_id.

    Text columns are stripped and must not be empty; capacity columns are numeric (int64 when
    given as integers, else float64) and > 0, ``monthly_cost_usd`` >= 0; ``commissioned_date``
    (if present) becomes datetime64[ns].
    """
    warnings: list[str] = []
    frame = _prepare(df, source, SERVER_REQUIRED_COLUMNS, index_keys=("server_id",))
    ids = server_ids(frame["server_id"], source)
    repeated = ids.duplicated(keep="first")
    if repeated.any():
        raise fail(
            source,
            f"{col('server_id')}: {plural(int(repeated.sum()), 'duplicate value')}"
            f"{examples(ids[repeated].iloc[:50])}; expected one row per server",
        )
    frame["server_id"] = ids
    for column in SERVER_TEXT_COLUMNS:
        frame[column] = _server_text(frame[column], ids, source, column)
    for column in SERVER_CAPACITY_COLUMNS + SERVER_COST_COLUMNS:
        frame[column] = _server_number(
            frame[column], ids, source, column, positive=column in SERVER_CAPACITY_COLUMNS
        )
    if "commissioned_date" in frame.columns:
        frame["commissioned_date"] = parse_dates(
            frame["commissioned_date"], source, "commissioned_date", warnings, allow_empty=True
        )
    frame = frame.sort_values("server_id", kind="stable").reset_index(drop=True)
    logger.info("%s: %d servers valid", source, len(frame))
    return frame, warnings


def _server_text(series: pd.Series, ids: pd.Series, source: str, column: str) -> pd.Series:
    """A text column stripped; an empty value is an error naming its servers."""
    text = as_text(series)
    empty = text.isna() | text.eq("")
    if empty.any():
        raise fail(
            source,
            f"{col(column)}: {plural(int(empty.sum()), 'empty value')}{for_servers(ids[empty])}",
        )
    return text


def _server_number(
    series: pd.Series, ids: pd.Series, source: str, column: str, *, positive: bool
) -> pd.Series:
    """A number column, finite and > 0 (``positive``) or >= 0; integers stay int64."""
    number = as_number(series, source, column)
    if number.isna().any():
        raise fail(
            source,
            f"{col(column)}: {plural(int(number.isna().sum()), 'empty value')}"
            f"{for_servers(ids[number.isna()])}",
        )
    bad = ~np.isfinite(number) | (number <= 0 if positive else number < 0)
    if bad.any():
        rule = "> 0" if positive else ">= 0"
        raise fail(
            source,
            f"{col(column)}: {plural(int(bad.sum()), 'invalid value')} "
            f"(must be finite and {rule}){examples(number[bad].iloc[:50])}",
        )
    # Integer columns (ours: cores, GB) stay integer; anything else becomes float64.
    return number.astype("int64") if pd.api.types.is_integer_dtype(series.dtype) else number


# --------------------------------------------------------------------------- fleet


def validate_fleet(
    metrics: pd.DataFrame,
    servers: pd.DataFrame,
    *,
    metrics_source: str,
    servers_source: str,
    set_aside: Collection[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Cross-check validated metrics and servers: every measured server must be described.

    Servers described but never measured are dropped from ``servers`` with a warning; those
    ``set_aside`` by validation (powered off, stale: already warned about) without one.
    """
    warnings: list[str] = []
    measured = pd.Index(metrics["server_id"].unique())
    described = pd.Index(servers["server_id"])
    unknown = measured.difference(described, sort=True)
    if len(unknown):
        raise fail(
            metrics_source,
            f"{col('server_id')}: {plural(len(unknown), 'server')} not in {servers_source}"
            f"{examples(unknown[:MAX_EXAMPLES])}",
        )
    has_metrics = servers["server_id"].isin(measured)
    if not has_metrics.all():
        unmeasured = servers.loc[~has_metrics & ~servers["server_id"].isin(set_aside), "server_id"]
        if len(unmeasured):
            warn(
                warnings,
                servers_source,
                f"{col('server_id')}: {plural(len(unmeasured), 'server')} without metrics in "
                f"{metrics_source} dropped{examples(unmeasured.iloc[:50])}",
            )
        servers = servers[has_metrics].reset_index(drop=True)
    if len(servers) == 1:
        logger.info("fleet of a single server: %s", servers["server_id"].iloc[0])
    logger.info("fleet: %d servers, %d metric rows", len(servers), len(metrics))
    return metrics, servers, warnings


# --------------------------------------------------------------------------- tables


def _prepare(
    df: pd.DataFrame,
    source: str,
    required: Sequence[str],
    *,
    index_keys: Sequence[str] | None = None,
) -> pd.DataFrame:
    """A shallow copy with stripped text column names, ``index_keys`` (default: ``required``)
    moved out of the index, at least one row and every ``required`` column."""
    if not isinstance(df, pd.DataFrame):
        raise fail(source, f"expected a table, got {type(df).__name__}")
    keys = required if index_keys is None else index_keys
    frame = df.copy(deep=False)
    in_index = [n for n in frame.index.names if n is not None and str(n).strip() in keys]
    if in_index:
        logger.info("%s: moved index level(s) %s to columns", source, in_index)
        frame = frame.reset_index(level=in_index)
    problem = repeated_name([str(c) for c in frame.columns])
    if problem:
        raise fail(source, problem)
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame.reset_index(drop=True)
    if frame.empty:
        raise fail(source, f"0 rows (columns: {names(list(frame.columns)) or 'none'})")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        found = list(frame.columns)
        raise fail(
            source,
            f"{plural(len(missing), 'missing column')}: {names(missing)} "
            f"(found {names(found) if found else 'no columns'})",
        )
    return frame
