"""Dates in a user's table as naive ``datetime64[ns]`` days, whatever form they came in.

Text (ISO 8601 first, then pandas' inferred format), datetime columns with or without a time
zone, mixed offsets. Time-zone-aware values lose their zone, in the frame where they are whole
days (``_day_frame``); problems are one-line errors (``messages``).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from capacity_forecaster.ingest.messages import (
    col,
    examples,
    fail,
    plural,
    show,
    warn,
)
from capacity_forecaster.ingest.read import row_name, row_names

# A day-first date as Excel writes it in most of the world (31/01/2026, 31.01.2026, 31-01-26),
# optionally with a time: day, month and year.
_DAY_FIRST = re.compile(r"(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})(?:[ T].*)?")


def parse_dates(
    series: pd.Series,
    source: str,
    column: str,
    warnings: list[str],
    *,
    allow_empty: bool,
    named_in: str | None = None,
) -> pd.Series:
    """Dates as naive ``datetime64[ns]``; time-zone-aware values lose their zone (``_day_frame``).

    Errors name rows in ``named_in`` (``row_name``; default ``source``, '' for a table whose
    rows are no file's)."""
    dtype = series.dtype
    empty = series.isna().to_numpy()
    if pd.api.types.is_bool_dtype(dtype) or (
        pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_datetime64_any_dtype(dtype)
    ):
        parsed = _no_numbers(series, source, column)
    elif isinstance(dtype, pd.DatetimeTZDtype):
        aware = pd.DatetimeIndex(series)
        days, handled = _day_frame(aware.tz_localize(None), aware)
        warn(warnings, source, f"{col(column)}: time-zone-aware dates ({dtype.tz}): {handled}")
        parsed = pd.Series(days, index=series.index)
    elif pd.api.types.is_datetime64_dtype(dtype):
        parsed = series
    else:
        parsed, empty = _parse_text(series, source, column, warnings)
    rows_of = source if named_in is None else named_in
    return _checked(parsed, series, empty, source, column, rows_of, allow_empty=allow_empty)


def _no_numbers(series: pd.Series, source: str, column: str) -> pd.Series:
    """All missing (a numeric column with no values), else an error: numbers are not dates."""
    present = series.dropna()
    if len(present):
        raise fail(
            source,
            f"{col(column)}: {plural(len(present), 'numeric value')}, expected dates "
            f"like '2024-01-31'{examples(present.iloc[:50])}",
        )
    return pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns]")


def _parse_text(
    series: pd.Series, source: str, column: str, warnings: list[str]
) -> tuple[pd.Series, np.ndarray]:
    """(parsed dates, which values are empty) for text or mixed values, parsed once per value."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    # One flag per distinct value, plus a trailing True that code -1 (missing) picks up.
    blank = np.array([isinstance(u, str) and not u.strip() for u in uniques] + [True])
    parsed_uniques, handled = _parse_uniques(pd.Index(uniques))
    if handled:
        warn(warnings, source, f"{col(column)}: time-zone-aware dates: {handled}")
    taken = parsed_uniques.as_unit("ns").take(
        codes,
        allow_fill=True,
        fill_value=pd.NaT,  # type: ignore[arg-type]  # pandas-stubs: take's fill_value omits NaT
    )
    return pd.Series(taken, index=series.index), blank[codes]


def _checked(
    parsed: pd.Series,
    series: pd.Series,
    empty: np.ndarray,
    source: str,
    column: str,
    named_in: str,
    *,
    allow_empty: bool,
) -> pd.Series:
    """``parsed`` as datetime64[ns] once every value of ``series`` is in range, parsed and
    (unless ``allow_empty``) present; problems name rows in ``named_in`` (``row_name``)."""
    in_range = _ns_range_mask(pd.DatetimeIndex(parsed))
    if not in_range.all():
        raise fail(
            source,
            f"{col(column)}: {plural(int((~in_range).sum()), 'date')} outside the years 1677..2262"
            f"{examples(series[~in_range].iloc[:50])}",
        )
    parsed = parsed.astype("datetime64[ns]")
    unparseable = parsed.isna().to_numpy() & ~empty
    if unparseable.any():
        count = int(unparseable.sum())
        place = row_name(named_in, int(np.flatnonzero(unparseable)[0]))
        where = "" if not place else f" at {place}" if count == 1 else f", the first at {place}"
        hint = _day_first_hint(series[unparseable]) or "expected dates like '2024-01-31'"
        raise fail(
            source,
            f"{col(column)}: {plural(count, 'unparseable or out-of-range date')}"
            f"{examples(series[unparseable].iloc[:200])}{where}; {hint}",
        )
    if not allow_empty and empty.any():
        places = row_names(named_in, empty)
        raise fail(
            source,
            f"{col(column)}: {plural(int(empty.sum()), 'empty value')}"
            f"{f' ({places})' if places else ''}",
        )
    return parsed


def _day_first_hint(values: pd.Series) -> str | None:
    """What to do when an unparseable value is a day-first date (its day above 12), else None.

    pandas reads 01/02/2026 as 2 January, so a day-first file fails only on its days above 12:
    every value needs rewriting, not just the ones named.
    """
    for value in values.iloc[:1000]:
        found = _DAY_FIRST.fullmatch(str(value).strip())
        if found and int(found[1]) > 12 and 1 <= int(found[3]) <= 12:
            day, month, year = found[1], found[3], found[4]
            meant = f": {show(str(value).strip())} is {year}-{int(month):02d}-{int(day):02d}"
            return (
                f"the dates look day-first (day/month/year{meant if len(year) == 4 else ''}), "
                "which is ambiguous (01/02 could be 2 January): write every date as YYYY-MM-DD"
            )
    return None


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
        if _count_missing(parsed) < _count_missing(best):
            best = parsed
        if not _count_missing(best):
            break
    handled = None
    if best.tz is not None:
        best, handled = _day_frame(_wall_clock(uniques, best), best)
    return pd.DatetimeIndex(best.where(_ns_range_mask(best))), handled


def _count_missing(values: pd.DatetimeIndex) -> int:
    return int(np.asarray(values.isna()).sum())


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
    present = local.dropna()
    if len(present) and (present == present.normalize()).all():
        return local, "local calendar day kept, time zone dropped"
    return aware.tz_convert("UTC").tz_localize(None), "converted to UTC, time zone dropped"


def _ns_range_mask(values: pd.DatetimeIndex) -> np.ndarray:
    """True where a value is missing or fits datetime64[ns] (years 1677..2262)."""
    low, high = pd.Timestamp.min.ceil("D"), pd.Timestamp.max.floor("D")
    return np.asarray(values.isna() | ((values >= low) & (values <= high)))
