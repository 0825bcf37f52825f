"""read_table: unreadable files fail with one line; CSV and parquet round trips validate unchanged."""

from __future__ import annotations

import gzip
import io

import pandas as pd
import pytest

from capacity_forecaster.core.errors import DataValidationError
from capacity_forecaster.ingest.read import read_table
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
