"""read_table: unreadable files fail with one line; CSV and parquet round trips validate unchanged."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.core.errors import DataValidationError
from capacity_forecaster.ingest.read import read_table, row_name, row_names
from capacity_forecaster.ingest.validate import validate_metrics
from tests.ingest.builders import M_SRC, MAX_MISSING, MIN_DAYS, check_metrics, make_metrics


@pytest.mark.parametrize(
    ("data", "source", "fragment"),
    [
        pytest.param(b"", "metrics.csv", "empty", id="empty bytes"),
        pytest.param(b"  \n\n", "metrics.csv", "empty", id="whitespace only"),
        pytest.param(b"a,b\n1,2\n", "metrics.xlsx", "unknown file type", id="unknown extension"),
        pytest.param(b"a,b\n1,2\n", "metrics", "unknown file type", id="no extension"),
        pytest.param(
            b"not parquet at all",
            "metrics.parquet",
            "cannot be read as parquet",
            id="corrupt parquet",
        ),
        pytest.param(
            b"PAR1garbagePAR1", "metrics.pq", "cannot be read as parquet", id="truncated parquet"
        ),
        pytest.param(b"a,b\n1,2\n", "metrics.csv.gz", "cannot be read as CSV", id="not gzip"),
        pytest.param(
            gzip.compress(b"a,b\n1,2\n")[:-12],
            "metrics.csv.gz",
            "cannot be read as CSV",
            id="truncated gzip",
        ),
        pytest.param(
            b"a,b\n1,2\n3,4,5,6\n", "metrics.csv", "cannot be read as CSV", id="ragged rows"
        ),
        pytest.param(
            "a,b\nCaf\u00e9,2\n".encode("latin-1"), "metrics.csv", "not UTF-8", id="latin-1 text"
        ),
    ],
)
def test_read_table_rejects_unreadable_files(data: bytes, source: str, fragment: str) -> None:
    with pytest.raises(DataValidationError) as caught:
        read_table(data, source)
    message = str(caught.value)
    assert message.startswith(f"{source}: ")
    assert fragment in message
    assert "\n" not in message


def test_csv_round_trip_validates_to_the_same_frame() -> None:
    good = make_metrics()
    data = good.assign(date=good["date"].dt.strftime("%Y-%m-%d")).to_csv(index=False).encode()
    for source, payload in (("m.csv", data), ("m.CSV.GZ", gzip.compress(data))):
        loaded = read_table(payload, source)
        validated = validate_metrics(
            loaded, source, max_missing_share=MAX_MISSING, min_history_days=MIN_DAYS
        )
        clean, warnings = validated.frame, validated.warnings
        assert warnings == []
        pd.testing.assert_frame_equal(clean, good)


def test_parquet_round_trip_validates_to_the_same_frame() -> None:
    good = make_metrics()
    buffer = io.BytesIO()
    good.to_parquet(buffer, index=False)
    for source in ("m.parquet", "m.pq"):
        clean, warnings = check_metrics(read_table(buffer.getvalue(), source))
        assert warnings == []
        pd.testing.assert_frame_equal(clean, good)


def test_csv_keeps_text_as_written() -> None:
    data = b"server_id,region,cost\n007,NA,\n42,null,3\n"
    frame = read_table(data, "servers.csv")
    assert frame["server_id"].tolist() == ["007", "42"]
    assert frame["region"].tolist() == ["NA", "null"]
    assert frame["cost"].isna().tolist() == [True, False]


def test_csv_empty_metric_cells_are_missing_not_errors() -> None:
    good = make_metrics()
    text = good.to_csv(index=False)
    lines = text.splitlines()
    date, server, *_, disk = lines[1].split(",")
    lines[1] = ",".join([date, server, "", "nan", disk])
    clean, _ = check_metrics(read_table("\n".join(lines).encode(), M_SRC))
    assert clean[["cpu_p95", "mem_p95"]].iloc[0].isna().all()
    assert clean["disk_p95"].notna().all()


def _csv(frame: pd.DataFrame, **to_csv: object) -> bytes:
    """``frame`` as a user's CSV export: ISO dates, no index."""
    dated = frame.assign(date=frame["date"].dt.strftime("%Y-%m-%d"))
    return dated.to_csv(index=False, **to_csv).encode()  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        pytest.param(
            "date,server_id,cpu_p95,mem_p95,disk_p95,cpu_p95",
            "duplicate column name 'cpu_p95' (columns 3 and 6): keep one, or rename the other",
            id="twice",
        ),
        pytest.param(
            'date,server_id,cpu_p95,mem_p95,disk_p95, "cpu_p95 "',
            "duplicate column name 'cpu_p95' (columns 3 and 6)",
            id="twice with spaces",
        ),
        pytest.param(
            "date,server_id,cpu_p95,cpu_p95,disk_p95,cpu_p95,disk_p95",
            "(columns 3, 4 and 6): keep one, or rename the others; 1 more name repeated: "
            "'disk_p95'",
            id="two names",
        ),
    ],
)
def test_a_column_name_written_twice_is_refused_naming_both_positions(
    header: str, fragment: str
) -> None:
    # pandas would read the second as 'cpu_p95.1' and the first would be used silently.
    lines = _csv(make_metrics()).decode().splitlines()
    width = header.count(",") + 1
    rows = [",".join((line.split(",") * 2)[:width]) for line in lines[1:]]
    data = "\n".join([header, *rows]).encode()
    for source, payload in (("metrics.csv", data), ("metrics.csv.gz", gzip.compress(data))):
        with pytest.raises(DataValidationError) as caught:
            read_table(payload, source)
        assert str(caught.value).startswith(f"{source}: ")
        assert fragment in str(caught.value)


def test_a_repeated_name_in_a_parquet_file_is_refused_naming_both_positions() -> None:
    frame = make_metrics()
    frame.insert(5, "mem_p95 ", frame["mem_p95"])  # the same name once stripped
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    with pytest.raises(DataValidationError) as caught:
        check_metrics(read_table(buffer.getvalue(), "metrics.parquet"))
    assert "duplicate column name 'mem_p95' (columns 4 and 6)" in str(caught.value)


@pytest.mark.parametrize("decimal", [",", "."], ids=["decimal commas", "decimal points"])
def test_a_semicolon_separated_export_is_read_as_one_with_a_warning(decimal: str) -> None:
    # What Excel saves as "CSV" where the decimal mark is a comma (most of Europe).
    good = make_metrics()
    data = _csv(good, sep=";", decimal=decimal)
    assert b"," not in data.splitlines()[0]
    warnings: list[str] = []
    clean, validation_warnings = check_metrics(read_table(data, M_SRC, warnings))
    pd.testing.assert_frame_equal(clean, good)
    assert validation_warnings == []
    assert warnings == [
        f"{M_SRC}: semicolon-separated (the header has ';' and no ','): read with ';' between "
        "columns and ',' as the decimal mark"
    ]


def test_decimal_commas_in_a_comma_separated_file_get_a_hint() -> None:
    good = make_metrics()
    frame = good.assign(mem_p95=good["mem_p95"].map(lambda v: f"{v:.2f}".replace(".", ",")))
    with pytest.raises(DataValidationError) as caught:
        check_metrics(read_table(_csv(frame), M_SRC))
    message = str(caught.value)
    assert "column 'mem_p95': 120 non-numeric values" in message
    assert "has a comma: write numbers with a decimal point and no thousands separator" in message


def test_row_name_names_a_csv_line_and_else_a_data_row() -> None:
    assert row_name("metrics.csv", 0) == "line 2"  # the header is line 1
    assert row_name("s3://b/metrics.CSV.GZ", 9) == "line 11"
    assert row_name("raw/metrics.parquet", 0) == "data row 1"
    assert row_name("m.pq", 100) == "data row 101"
    assert row_name("mapping.txt", 0) == "data row 1"  # a table without a known file type
    assert row_name("", 0) == ""  # rows that are no file's (read.DERIVED_ROWS)


def test_row_names_name_the_first_flagged_rows_alike() -> None:
    flagged = np.zeros(20, dtype=bool)
    flagged[[0, 9, 11, 15]] = True
    assert row_names("m.CSV", flagged) == "lines 2, 11, 13"  # the first three
    assert row_names("m.parquet", flagged) == "data rows 1, 10, 12"
    assert row_names("m.csv.gz", flagged & (np.arange(20) == 9)) == "line 11"
    assert row_names("", flagged) == ""
