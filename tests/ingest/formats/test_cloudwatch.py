"""Format cloudwatch_csv on real NAB CloudWatch exports (tests/fixtures/real/nab_cloudwatch)."""

from __future__ import annotations

import gzip
import io
import json
import re

import pandas as pd
import pytest

from capacity_forecaster.core.errors import DataValidationError
from capacity_forecaster.core.params_formats import CloudWatchCsvOptions, FormatOptions
from capacity_forecaster.ingest.formats import read_export
from capacity_forecaster.ingest.formats.cloudwatch import read_cloudwatch_csv
from capacity_forecaster.ingest.validate import validate_metrics
from tests.ingest.formats.builders import day_of, p95, real_file, real_files

CPU_FILE = "ec2_cpu_utilization_5f5533.csv"
LATENCY_FILE = "ec2_request_latency_system_failure.csv"  # CPU %, repeated 03:00 rows on 03-09
DISK_BYTES_FILE = "ec2_disk_write_bytes_1ef3de.csv"
MAPPING = (
    b"file,server_id,metric\n"
    b"ec2_request_latency_system_failure.csv,i-0latency,CPUUtilization\n"
    b"ec2_cpu_utilization_5f5533.csv,i-05f5533,cpu_utilization\n"
    b"ec2_disk_write_bytes_1ef3de.csv,i-01ef3de,DiskWriteBytes\n"
)


def _raw(name: str) -> pd.DataFrame:
    """The excerpt as pandas reads it, for hand computations."""
    frame = pd.read_csv(io.BytesIO(real_file("nab_cloudwatch", name)[1]))
    frame["day"] = frame["timestamp"].str[:10]
    return frame


def test_file_names_give_server_and_metric_and_other_metrics_are_named() -> None:
    result = read_export("cloudwatch_csv", real_files("nab_cloudwatch"))

    raw = _raw(CPU_FILE)
    assert result.counts["samples_read"] == len(raw) == 4032
    # 2014-02-14 14:27 to 2014-02-28 14:22: the first and last days are partial.
    assert result.counts["days_out"] == 13
    assert result.counts["partial_days_by_server"] == {"5f5533": 2}
    assert result.counts["files_skipped"] == 2
    assert json.loads(json.dumps(result.counts)) == result.counts
    expected = p95(raw.loc[raw["day"] == "2014-02-20", "value"])
    assert day_of(result.metrics, "5f5533", "2014-02-20")["cpu_p95"] == pytest.approx(expected)
    assert result.metrics[["mem_p95", "disk_p95"]].isna().all().all()

    skipped = " | ".join(result.warnings)
    assert f"{DISK_BYTES_FILE} (metric disk_write_bytes)" in skipped
    assert f"'{LATENCY_FILE}'" in skipped and "filename_patterns" in skipped


def test_the_result_passes_stage_02_validation() -> None:
    result = read_export("cloudwatch_csv", real_files("nab_cloudwatch"))
    clean = validate_metrics(
        result.metrics, "cloudwatch", max_missing_share=1.0, min_history_days=7
    ).frame
    assert len(clean) == result.counts["days_out"]


def test_a_mapping_file_names_servers_and_repeated_dst_stamps_are_kept() -> None:
    files = [*real_files("nab_cloudwatch"), ("mapping.csv", MAPPING)]
    options = FormatOptions(
        timezone="America/New_York",
        cloudwatch_csv=CloudWatchCsvOptions(mapping_file="mapping.csv"),
    )
    result = read_export("cloudwatch_csv", files, options)

    assert sorted(result.metrics["server_id"].unique()) == ["i-05f5533", "i-0latency"]
    # 12 samples stamped 2014-03-09 03:00:00 (the spring-forward hour), all different values:
    # all kept, 11 of them repeat the first one's time.
    assert result.counts["repeated_timestamps_by_server"] == {"i-0latency": 11}
    raw = _raw(LATENCY_FILE)
    dst_day = raw.loc[raw["day"] == "2014-03-09", "value"]
    assert len(dst_day) == 288
    row = day_of(result.metrics, "i-0latency", "2014-03-09")
    assert row["cpu_p95"] == pytest.approx(p95(dst_day))
    # 03-08 to 03-10 are three full local days.
    assert (result.metrics["server_id"] == "i-0latency").sum() == 3
    assert any("DiskWriteBytes" in w for w in result.warnings)


def test_the_mapping_can_be_passed_directly() -> None:
    files = [real_file("nab_cloudwatch", LATENCY_FILE)]
    result = read_cloudwatch_csv(files, FormatOptions(), mapping=("mapping.csv", MAPPING))
    assert result.metrics["server_id"].unique().tolist() == ["i-0latency"]


def test_instance_id_file_names_are_read() -> None:
    data = real_file("nab_cloudwatch", CPU_FILE)[1]
    result = read_export(
        "cloudwatch_csv",
        [("exports/i-0abc123_CPUUtilization.csv", data), ("i-0abc123_mem_used_percent.csv", data)],
    )
    row = day_of(result.metrics, "i-0abc123", "2014-02-20")
    assert row["cpu_p95"] == pytest.approx(row["mem_p95"])


def test_no_usable_file_is_an_error() -> None:
    with pytest.raises(DataValidationError, match="none of the 1 files"):
        read_export("cloudwatch_csv", [real_file("nab_cloudwatch", DISK_BYTES_FILE)])


def test_a_missing_mapping_file_is_an_error() -> None:
    options = FormatOptions(cloudwatch_csv=CloudWatchCsvOptions(mapping_file="map.csv"))
    with pytest.raises(
        DataValidationError, match=re.escape("map.csv: cloudwatch_csv.mapping_file")
    ):
        read_export("cloudwatch_csv", real_files("nab_cloudwatch"), options)


@pytest.mark.parametrize("gzipped", [False, True], ids=["csv", "csv.gz"])
def test_a_bad_cell_names_file_column_and_row(gzipped: bool) -> None:
    name, data = real_file("nab_cloudwatch", CPU_FILE)
    lines = data.decode().splitlines()
    lines[101] = "2014-02-14 22:47:00,twelve"  # the 101st data row
    data = "\n".join(lines).encode()
    if gzipped:
        name, data = f"{name}.gz", gzip.compress(data)
    with pytest.raises(DataValidationError) as caught:
        read_export("cloudwatch_csv", [(name, data)])
    message = str(caught.value)
    # A CSV file names the line an editor shows (the header is line 1), compressed or not.
    assert message.startswith(f"{name}: column 'value' is not a number at line 102 ('twelve'): ")


def test_an_empty_mapping_cell_names_its_column_and_line() -> None:
    mapping = MAPPING.replace(b"i-05f5533", b"")  # the second data row: line 3
    with pytest.raises(DataValidationError) as caught:
        read_cloudwatch_csv(real_files("nab_cloudwatch"), FormatOptions(), ("mapping.csv", mapping))
    assert str(caught.value) == (
        "mapping.csv: column 'server_id' is empty at line 3: give file, server_id and metric "
        "on every row"
    )


def test_identical_dst_rows_of_a_real_export_are_dropped_as_duplicates() -> None:
    # ec2_disk_write_bytes_1ef3de: 12 rows '2014-03-09 03:00:00,0.0' (a byte count, read here
    # as disk_p95 only to exercise the rule: values over 100 are stage 02's concern).
    settings = CloudWatchCsvOptions(metric_names={"disk_write_bytes": "disk_p95"})
    result = read_export(
        "cloudwatch_csv",
        [real_file("nab_cloudwatch", DISK_BYTES_FILE)],
        FormatOptions(cloudwatch_csv=settings),
    )
    assert result.counts["samples_read"] == 288
    assert result.counts["duplicate_rows_by_server"] == {"1ef3de": 11}
    raw = _raw(DISK_BYTES_FILE).drop_duplicates(["timestamp", "value"])
    assert day_of(result.metrics, "1ef3de", "2014-03-09")["disk_p95"] == pytest.approx(
        p95(raw["value"])
    )


def test_an_export_resaved_with_semicolons_and_decimal_commas_reads_the_same_with_a_warning() -> (
    None
):
    name, data = real_file("nab_cloudwatch", CPU_FILE)
    semicolons = b"\n".join(
        line.replace(b",", b";").replace(b".", b",") for line in data.splitlines()
    )
    expected = read_export("cloudwatch_csv", [(name, data)])
    result = read_export("cloudwatch_csv", [(name, semicolons)])
    pd.testing.assert_frame_equal(result.metrics, expected.metrics)
    warning = [w for w in result.warnings if "semicolon" in w]
    assert len(warning) == 1 and f"'{name}'" in warning[0] and "decimal mark" in warning[0]
    assert not any("semicolon" in w for w in expected.warnings)
