"""Cells to the tables' types: stripped text, float64 numbers, server ids; anything that does
not convert is a one-line error naming the column, the count and a few examples."""

from __future__ import annotations

import numpy as np
import pandas as pd

from capacity_forecaster.ingest.messages import col, data_rows, examples, fail, plural


def as_text(series: pd.Series) -> pd.Series:
    """Values as stripped ``str`` (missing stays missing; 7.0 from a float column becomes '7')."""
    values = series
    if pd.api.types.is_float_dtype(values.dtype):
        finite = values.dropna()
        if len(finite) and np.all(np.isfinite(finite)) and np.all(finite == np.round(finite)):
            values = values.astype("Int64")
    return values.astype("str").str.strip()


def server_ids(series: pd.Series, source: str) -> pd.Series:
    """``server_id`` values as stripped text; an empty one is an error."""
    ids = as_text(series)
    empty = ids.isna() | ids.eq("")
    if empty.any():
        raise fail(
            source,
            f"{col('server_id')}: {plural(int(empty.sum()), 'empty value')} ({data_rows(empty)})",
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
        raise fail(
            source,
            f"{col(column)}: {plural(int(bad_rows.sum()), 'non-numeric value')}"
            f"{examples(series[bad_rows].iloc[:200])}",
        )
    values = numbers.to_numpy().take(codes)
    values[codes < 0] = np.nan
    return pd.Series(values, index=series.index, dtype="float64")
