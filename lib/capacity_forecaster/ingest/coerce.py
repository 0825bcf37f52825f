"""Cells to the tables' types: stripped text, float64 numbers, server ids; anything that does
not convert is a one-line error naming the column, the count and a few examples."""

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
    unprintable,
)
from capacity_forecaster.ingest.read import row_name, row_names

# A number written with a comma: a decimal comma (12,5 or 1.234,5, as Excel writes it in most
# of Europe) or a thousands separator (1,234).
_NUMBER_WITH_COMMA = re.compile(r"[-+]?\d+(?:[.,]\d+)*,\d+")


def as_text(series: pd.Series) -> pd.Series:
    """Values as stripped ``str`` (missing stays missing; 7.0 from a float column becomes '7')."""
    values = series
    if pd.api.types.is_float_dtype(values.dtype):
        finite = values.dropna()
        if len(finite) and np.all(np.isfinite(finite)) and np.all(finite == np.round(finite)):
            values = values.astype("Int64")
    return values.astype("str").str.strip()


def server_ids(series: pd.Series, source: str, named_in: str | None = None) -> pd.Series:
    """``server_id`` values as stripped text; an empty one, or one holding a control or
    text-direction character, is an error naming its rows in ``named_in`` (``row_name``;
    default ``source``, '' for a table whose rows are no file's)."""
    rows_of = source if named_in is None else named_in
    ids = as_text(series)
    empty = ids.isna() | ids.eq("")
    if empty.any():
        places = row_names(rows_of, empty)
        raise fail(
            source,
            f"{col('server_id')}: {plural(int(empty.sum()), 'empty value')}"
            f"{f' ({places})' if places else ''}",
        )
    # Refused rather than cleaned: an id is matched between the files and printed in every
    # report, and a cleaned id would no longer be the one the user's other tools know.
    distinct = pd.Series(ids.unique())
    unsafe = distinct[distinct.map(lambda text: unprintable(text) is not None)]
    if len(unsafe):
        flagged = ids.isin(unsafe).to_numpy()
        first = int(np.flatnonzero(flagged)[0])
        place = row_name(rows_of, first)
        raise fail(
            source,
            f"{col('server_id')}: {plural(int(flagged.sum()), 'value')} with a control or "
            f"text-direction character, the first {show(ids.iloc[first])} "
            f"({unprintable(ids.iloc[first])}){f' at {place}' if place else ''}: a server id "
            "must be printable text; remove the character from the file",
        )
    return ids


def as_number(series: pd.Series, source: str, column: str) -> pd.Series:
    """Values as float64: empty strings and NaN are missing, any other text is an error."""
    if pd.api.types.is_bool_dtype(series.dtype):
        raise fail(
            source,
            f"{col(column)}: {plural(int(series.notna().sum()), 'true/false value')}, expected numbers",
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
        bad_text = text[bad_unique]
        comma = bad_text[bad_text.map(lambda cell: bool(_NUMBER_WITH_COMMA.fullmatch(cell)))]
        hint = (
            f"; {show(comma.iloc[0])} has a comma: write numbers with a decimal point and no "
            "thousands separator (12.5, 1234.5)"
            if len(comma)
            else ""
        )
        raise fail(
            source,
            f"{col(column)}: {plural(int(bad_rows.sum()), 'non-numeric value')}"
            f"{examples(series[bad_rows].iloc[:200])}{hint}",
        )
    values = numbers.to_numpy().take(codes)
    values[codes < 0] = np.nan
    return pd.Series(values, index=series.index, dtype="float64")
