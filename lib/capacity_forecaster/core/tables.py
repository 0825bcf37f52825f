"""Table schemas: the columns, kinds, nulls and ranges a parquet product promises.

A schema is checked on both sides of a product: by the stage that writes it and by every
stage that reads it, so a wrong column is caught where it is made and where it is used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from capacity_forecaster.core.errors import StageCheckError

ColumnKind = Literal["string", "float", "int", "bool", "datetime"]

# The dtype an empty column of each kind gets (``TableSchema.typed_if_empty``).
_EMPTY_DTYPES: dict[str, str] = {
    "string": "object",
    "float": "float64",
    "int": "int64",
    "bool": "bool",
    "datetime": "datetime64[ns]",
}

_KIND_CHECKS: dict[str, Callable[[pd.Series], bool]] = {
    "string": lambda s: pd.api.types.is_string_dtype(s) or bool(s.isna().all()),
    "float": lambda s: pd.api.types.is_float_dtype(s) or pd.api.types.is_integer_dtype(s),
    "int": lambda s: pd.api.types.is_integer_dtype(s) and not pd.api.types.is_bool_dtype(s),
    "bool": pd.api.types.is_bool_dtype,
    "datetime": pd.api.types.is_datetime64_any_dtype,
}


@dataclass(frozen=True)
class Column:
    """One column: its name, kind, whether it may hold nulls and its allowed range."""

    name: str
    kind: ColumnKind
    nullable: bool = False
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class TableSchema:
    """The columns a table promises, in order; ``open`` tables may carry more (a user's own)."""

    columns: tuple[Column, ...]
    open: bool = False

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def empty(self) -> pd.DataFrame:
        """A frame with the schema's columns, typed by kind, and no rows."""
        return pd.DataFrame({c.name: pd.Series(dtype=_EMPTY_DTYPES[c.kind]) for c in self.columns})

    def typed_if_empty(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame``, with its schema columns cast to their kinds when it has no rows.

        An empty frame built from a column list has object columns; casting it loses nothing
        (there are no values) and lets readers use ``.dt`` and arithmetic on it.
        """
        if len(frame) or not len(frame.columns):
            return frame
        kinds = {c.name: _EMPTY_DTYPES[c.kind] for c in self.columns if c.name in frame.columns}
        return frame.astype(kinds)

    def problems(self, frame: pd.DataFrame, columns: Sequence[str] | None = None) -> list[str]:
        """Every way ``frame`` breaks the schema (only ``columns`` when given), empty if none."""
        wanted = self.columns if columns is None else tuple(self.column(c) for c in columns)
        missing = [c.name for c in wanted if c.name not in frame.columns]
        if missing:
            return [
                f"missing column(s) {', '.join(missing)} (has {', '.join(map(str, frame.columns))})"
            ]
        found: list[str] = []
        if columns is None and not self.open:
            extra = [str(c) for c in frame.columns if c not in self.names]
            if extra:
                found.append(f"unexpected column(s) {', '.join(extra)}")
        for column in wanted:
            found.extend(_column_problems(frame, column))
        return found

    def check(self, frame: pd.DataFrame, where: str, columns: Sequence[str] | None = None) -> None:
        """Raise one clear line naming ``where`` (the product and stage) and what is wrong."""
        found = self.problems(frame, columns)
        if found:
            raise StageCheckError(f"{where}: {'; '.join(found)}")


def _first_row(frame: pd.DataFrame, mask: np.ndarray) -> str:
    position = int(np.flatnonzero(mask)[0])
    keys = [k for k in ("server_id", "metric", "date", "model") if k in frame.columns]
    described = ", ".join(f"{k} {frame[k].iloc[position]}" for k in keys)
    return f"row {position}" + (f" ({described})" if described else "")


def _column_problems(frame: pd.DataFrame, column: Column) -> list[str]:
    series = frame[column.name]
    if not _KIND_CHECKS[column.kind](series):
        return [f"column {column.name} should hold {column.kind} values, not {series.dtype}"]
    found = []
    nulls = series.isna().to_numpy()
    if not column.nullable and nulls.any():
        found.append(
            f"column {column.name} has {int(nulls.sum())} empty value(s), first at "
            f"{_first_row(frame, nulls)}"
        )
    if column.kind in ("float", "int") and (column.min is not None or column.max is not None):
        values = series.to_numpy(dtype=float, na_value=np.nan)
        found.extend(_range_problems(frame, column, values))
    return found


def _range_problems(frame: pd.DataFrame, column: Column, values: np.ndarray) -> list[str]:
    found = []
    with np.errstate(invalid="ignore"):
        infinite = np.isinf(values)
        below = values < column.min if column.min is not None else np.zeros(len(values), bool)
        above = values > column.max if column.max is not None else np.zeros(len(values), bool)
    for mask, what in (
        (infinite, "infinite"),
        (below & ~infinite, f"below {column.min:g}" if column.min is not None else ""),
        (above & ~infinite, f"above {column.max:g}" if column.max is not None else ""),
    ):
        if mask.any():
            found.append(
                f"column {column.name} has {int(mask.sum())} value(s) {what}, first at "
                f"{_first_row(frame, mask)}"
            )
    return found
