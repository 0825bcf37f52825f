"""Table schemas: each way a frame can break its schema is named with the row it happens at."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.tables import Column, TableSchema

SCHEMA = TableSchema(
    (
        Column("server_id", "string"),
        Column("date", "datetime"),
        Column("value", "float", min=0.0, max=100.0),
        Column("lower", "float", nullable=True),
        Column("n", "int", min=1),
        Column("flag", "bool"),
    )
)


def _frame(**changes: object) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "server_id": ["a", "b", "c"],
            "date": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"]),
            "value": [1.0, 50.0, 100.0],
            "lower": [np.nan, 1.0, 2.0],
            "n": [1, 2, 3],
            "flag": [True, False, True],
        }
    )
    for column, values in changes.items():
        frame[column] = values
    return frame


def test_a_frame_that_keeps_the_schema_has_no_problems() -> None:
    assert SCHEMA.problems(_frame()) == []
    SCHEMA.check(_frame(), "x.parquet")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"value": [1.0, 101.0, 102.0]}, "column value has 2 value(s) above 100, first at row 1"),
        ({"value": [-1.0, 1.0, 1.0]}, "column value has 1 value(s) below 0, first at row 0"),
        ({"value": [1.0, np.inf, 1.0]}, "column value has 1 value(s) infinite, first at row 1"),
        ({"value": [1.0, np.nan, 1.0]}, "column value has 1 empty value(s), first at row 1"),
        ({"n": [1.5, 2.0, 3.0]}, "column n should hold int values, not float64"),
        ({"date": ["2026-01-01"] * 3}, "column date should hold datetime values"),
        ({"flag": [1, 0, 1]}, "column flag should hold bool values, not int64"),
        ({"extra": [1, 2, 3]}, "unexpected column(s) extra"),
    ],
)
def test_each_problem_is_named(changes: dict[str, object], expected: str) -> None:
    problems = SCHEMA.problems(_frame(**changes))
    assert any(expected in problem for problem in problems), problems


def test_the_row_is_described_by_its_series_keys() -> None:
    problems = SCHEMA.problems(_frame(value=[1.0, 1.0, 200.0]))
    assert problems == [
        "column value has 1 value(s) above 100, first at row 2 (server_id c, date 2026-01-03 00:00:00)"
    ]


def test_a_missing_column_is_reported_with_what_the_frame_has() -> None:
    with pytest.raises(StageCheckError, match=r"^x.parquet: missing column\(s\) n \(has "):
        SCHEMA.check(_frame().drop(columns="n"), "x.parquet")


def test_only_the_columns_asked_for_are_checked() -> None:
    frame = _frame(value=[500.0, 1.0, 1.0], extra=[1, 2, 3])[["server_id", "n", "value", "extra"]]
    assert SCHEMA.problems(frame, ["server_id", "n"]) == []
    assert SCHEMA.problems(frame, ["value"])


def test_an_open_schema_accepts_more_columns() -> None:
    open_schema = TableSchema(SCHEMA.columns, open=True)
    assert open_schema.problems(_frame(hostname=["h1", "h2", "h3"])) == []


def test_an_empty_frame_is_typed_by_the_schema() -> None:
    assert SCHEMA.problems(SCHEMA.empty()) == []
    untyped = pd.DataFrame(columns=SCHEMA.names)  # every column object, as pandas builds it
    assert SCHEMA.problems(untyped)
    assert SCHEMA.problems(SCHEMA.typed_if_empty(untyped)) == []


def test_a_frame_with_rows_is_not_cast() -> None:
    wrong = _frame(n=["1", "2", "3"])
    assert SCHEMA.typed_if_empty(wrong) is wrong
    assert SCHEMA.problems(wrong)
