"""Format samples: the shared daily-P95 core and its rules, on small exports made here."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.core.contract import METRIC_COLUMNS
from capacity_forecaster.core.errors import DataValidationError
from capacity_forecaster.core.params_formats import FormatOptions
from capacity_forecaster.ingest.formats import read_export
from capacity_forecaster.ingest.formats.samples import read_samples
from tests.ingest.formats.builders import day_of, five_minute_rows, p95, real_file, samples_csv

UTC = FormatOptions()


def _read(rows: list[tuple[object, ...]], options: FormatOptions = UTC, name: str = "s.csv"):
    return read_samples([(name, samples_csv(rows))], options)


def _error(data: bytes, name: str = "samples.csv", options: FormatOptions = UTC) -> str:
    with pytest.raises(DataValidationError) as caught:
        read_samples([(name, data)], options)
    message = str(caught.value)
    assert message.startswith(f"{name}: ") and "\n" not in message
    return message


def test_daily_p95_per_server_and_metric_matches_numpy() -> None:
    cpu = five_minute_rows("web-1", "cpu", "2024-03-01", 288, seed=1)
    mem = five_minute_rows("web-1", "memory", "2024-03-01", 288, seed=2)
    disk = five_minute_rows("db-1", "disk_p95", "2024-03-01", 288, seed=3)
    result = _read(cpu + mem + disk)

    assert list(result.metrics.columns) == list(METRIC_COLUMNS)
    assert result.metrics["date"].dtype == "datetime64[ns]"
    assert result.metrics["server_id"].tolist() == ["db-1", "web-1"]
    web = day_of(result.metrics, "web-1", "2024-03-01")
    assert web["cpu_p95"] == pytest.approx(p95(r[3] for r in cpu), abs=1e-9)
    assert web["mem_p95"] == pytest.approx(p95(r[3] for r in mem), abs=1e-9)
    assert np.isnan(web["disk_p95"])
    assert day_of(result.metrics, "db-1", "2024-03-01")["disk_p95"] == pytest.approx(
        p95(r[3] for r in disk)
    )
    assert result.servers["server_id"].tolist() == ["db-1", "web-1"]
    assert result.counts["samples_read"] == 3 * 288
    assert result.counts["days_out"] == 2
    assert result.counts["servers_out"] == 2


def test_csv_gzip_and_parquet_give_the_same_table() -> None:
    rows = five_minute_rows("web-1", "cpu", "2024-03-01", 2 * 288)
    data = samples_csv(rows)
    frame = pd.read_csv(io.BytesIO(data))
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    parquet = io.BytesIO()
    frame.to_parquet(parquet)
    results = [
        read_samples([(name, payload)], UTC).metrics
        for name, payload in (
            ("s.csv", data),
            ("s.CSV.GZ", gzip.compress(data)),
            ("s.parquet", parquet.getvalue()),
        )
    ]
    assert len(results[0]) == 2
    for other in results[1:]:
        pd.testing.assert_frame_equal(results[0], other)


def test_exact_duplicates_are_dropped_and_counted() -> None:
    rows = five_minute_rows("web-1", "cpu", "2024-03-01", 288)
    result = _read(rows + rows[:10] + rows[5:7])
    assert result.counts["duplicate_rows"] == 12
    assert result.counts["duplicate_rows_by_server"] == {"web-1": 12}
    assert result.counts["repeated_timestamps"] == 0
    row = day_of(result.metrics, "web-1", "2024-03-01")
    assert row["cpu_p95"] == pytest.approx(p95(r[3] for r in rows))


def test_days_below_the_coverage_are_dropped_and_counted_per_server() -> None:
    # web-1: a full day, then 60 % of a day; db-1: 30 % of a day.
    rows = five_minute_rows("web-1", "cpu", "2024-03-01", 288 + 173) + five_minute_rows(
        "db-1", "cpu", "2024-03-01", 86
    )
    strict = _read(rows)
    assert strict.metrics["date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-03-01"]
    assert strict.counts["partial_days"] == 2
    assert strict.counts["partial_days_by_server"] == {"web-1": 1, "db-1": 1}

    lenient = _read(rows, FormatOptions(min_day_coverage=0.5))
    assert len(lenient.metrics) == 2
    assert lenient.counts["partial_days_by_server"] == {"db-1": 1}


def test_coverage_follows_each_series_own_interval() -> None:
    # A 15-minute series: 96 samples are a full day. A 1-minute series: 1,000 of 1,440 are not.
    quarter = [
        (t.strftime("%Y-%m-%d %H:%M:%S"), "slow", "cpu", 10.0)
        for t in pd.date_range("2024-03-01", periods=96, freq="15min")
    ]
    minute = [
        (t.strftime("%Y-%m-%d %H:%M:%S"), "fast", "cpu", 10.0)
        for t in pd.date_range("2024-03-01", periods=1000, freq="1min")
    ]
    result = _read(quarter + minute)
    assert result.metrics["server_id"].tolist() == ["slow"]
    assert result.counts["partial_days_by_server"] == {"fast": 1}


def test_repeated_autumn_hour_keeps_both_samples_and_counts_them() -> None:
    # Naive New York wall-clock times on 2014-11-02: 01:00-01:55 happens twice (25-hour day).
    wall = list(pd.date_range("2014-11-02 00:00", "2014-11-02 01:55", freq="5min"))
    wall += list(pd.date_range("2014-11-02 01:00", "2014-11-02 23:55", freq="5min"))
    values = np.random.default_rng(5).uniform(0, 100, len(wall)).round(2)
    rows = [
        (t.strftime("%Y-%m-%d %H:%M:%S"), "ny-1", "cpu", v)
        for t, v in zip(wall, values, strict=True)
    ]
    assert len(rows) == 300

    result = _read(rows, FormatOptions(timezone="America/New_York", min_day_coverage=1.0))
    assert result.counts["repeated_timestamps"] == 12
    assert result.counts["duplicate_rows"] == 0
    assert day_of(result.metrics, "ny-1", "2014-11-02")["cpu_p95"] == pytest.approx(p95(values))


def test_a_23_hour_spring_day_is_complete_in_its_time_zone() -> None:
    # 2014-03-09 in New York has no 02:00-02:59: a full day of 5-minute samples is 276.
    wall = [t for t in pd.date_range("2014-03-09", periods=288, freq="5min") if t.hour != 2]
    rows = [(t.strftime("%Y-%m-%d %H:%M:%S"), "ny-1", "cpu", 50.0) for t in wall]
    assert len(rows) == 276
    new_york = _read(rows, FormatOptions(timezone="America/New_York", min_day_coverage=1.0))
    assert len(new_york.metrics) == 1
    utc = _read(rows, FormatOptions(min_day_coverage=1.0))
    assert len(utc.metrics) == 0
    assert utc.counts["partial_days"] == 1


def test_instants_are_split_at_local_midnight() -> None:
    # Instants every 5 minutes from 2024-01-01 22:00Z; in Paris (UTC+1) 2024-01-02 runs
    # from 2024-01-01 23:00Z to 2024-01-02 23:00Z.
    instants = pd.date_range("2024-01-01 22:00", periods=3 * 288, freq="5min", tz="UTC")
    values = np.random.default_rng(9).uniform(0, 100, len(instants)).round(2)
    iso = [(t.isoformat(), "eu-1", "cpu", v) for t, v in zip(instants, values, strict=True)]
    epoch = [(int(t.timestamp()), "eu-1", "cpu", v) for t, v in zip(instants, values, strict=True)]
    paris = FormatOptions(timezone="Europe/Paris")

    local_day = instants.tz_convert("Europe/Paris").strftime("%Y-%m-%d") == "2024-01-02"
    expected = p95(values[local_day])
    for rows in (iso, epoch):
        result = _read(rows, paris)
        assert day_of(result.metrics, "eu-1", "2024-01-02")["cpu_p95"] == pytest.approx(expected)
    in_utc = _read(iso)
    utc_day = instants.strftime("%Y-%m-%d") == "2024-01-02"
    assert day_of(in_utc.metrics, "eu-1", "2024-01-02")["cpu_p95"] == pytest.approx(
        p95(values[utc_day])
    )


def test_naive_times_keep_their_date_in_any_time_zone() -> None:
    rows = five_minute_rows("jp-1", "cpu", "2024-03-01", 288)
    result = _read(rows, FormatOptions(timezone="Asia/Tokyo"))
    assert day_of(result.metrics, "jp-1", "2024-03-01")["cpu_p95"] == pytest.approx(
        p95(r[3] for r in rows)
    )


def test_missing_values_are_dropped_and_counted() -> None:
    rows = five_minute_rows("web-1", "cpu", "2024-03-01", 288)
    holes = [(*rows[0][:3], ""), (*rows[1][:3], "NaN")]
    result = _read(holes + rows[2:])
    assert result.counts["missing_values"] == 2
    assert result.counts["samples_read"] == 288
    assert day_of(result.metrics, "web-1", "2024-03-01")["cpu_p95"] == pytest.approx(
        p95(r[3] for r in rows[2:])
    )


def test_read_export_routes_to_the_samples_reader() -> None:
    data = samples_csv(five_minute_rows("web-1", "cpu", "2024-03-01", 288))
    assert len(read_export("samples", [("s.csv", data)]).metrics) == 1


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        pytest.param(
            samples_csv([("2024-03-01 00:00:00", "web-1", "cpu", 1)], "timestamp,server_id,value"),
            ["no column 'metric'", "timestamp, server_id, metric, value"],
            id="missing column",
        ),
        pytest.param(
            samples_csv(
                [
                    ("2024-03-01 00:00:00", "web-1", "cpu", 1),
                    ("2024-03-01 00:05:00", "web-1", "network", 2),
                ]
            ),
            ["unknown metric 'network' at line 3", "cpu_p95"],
            id="unknown metric",
        ),
        pytest.param(
            samples_csv(
                [("2024-03-01 00:00:00", "web-1", "cpu", 1), ("yesterday", "web-1", "cpu", 2)]
            ),
            ["column 'timestamp'", "at line 3 ('yesterday')", "ISO 8601"],
            id="unreadable timestamp",
        ),
        pytest.param(
            samples_csv(
                [
                    ("2024-03-01 00:00:00", "web-1", "cpu", 1),
                    ("2024-03-01 00:05:00", "web-1", "cpu", "12%"),
                ]
            ),
            ["column 'value'", "at line 3 ('12%')", "plain numbers"],
            id="non-numeric value",
        ),
        pytest.param(
            samples_csv(
                [("2024-03-01 00:00:00", "web-1", "cpu", 1), ("2024-03-01 00:05:00", "", "cpu", 2)]
            ),
            ["column 'server_id'", "empty at line 3"],
            id="empty server",
        ),
        pytest.param(
            samples_csv([(1709251200000, "web-1", "cpu", 1)]),
            ["at line 2, too large for epoch seconds"],
            id="epoch milliseconds",
        ),
    ],
)
def test_bad_input_is_one_line_naming_file_column_and_row(
    data: bytes, fragments: list[str]
) -> None:
    message = _error(data)
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("character", ["\t", "\x00", "\u202e", "\u2067"])
@pytest.mark.parametrize("name", ["samples.csv", "samples.parquet"])
def test_a_server_id_with_a_control_or_direction_character_is_refused(
    character: str, name: str
) -> None:
    rows = [*five_minute_rows("web-1", "cpu", "2024-03-01", 3), ("2024-03-01", "web-1", "cpu", 1)]
    rows[2] = (rows[2][0], f"web{character}-2", "cpu", 5.0)
    frame = pd.DataFrame(rows, columns=["timestamp", "server_id", "metric", "value"])
    if name.endswith(".csv"):
        data = frame.to_csv(index=False).encode()
    else:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        data = buffer.getvalue()
    message = _error(data, name=name)
    assert message.startswith(f"{name}: column 'server_id' 'web")
    place = "line 4" if name.endswith(".csv") else "data row 3"  # the third sample
    assert f"at {place} has a control or text-direction character (U+{ord(character):04X})" in (
        message
    )
    assert character not in message


def test_a_bad_cell_far_down_a_large_file_is_found() -> None:
    # Past pyarrow's first block (1 MiB), where the column types were already inferred.
    rows = five_minute_rows("web-1", "cpu", "2024-01-01", 40_000)
    rows[39_000] = (*rows[39_000][:3], "n/a")
    message = _error(samples_csv(rows))
    assert "column 'value'" in message and "line 39002" in message and "'n/a'" in message


@pytest.mark.parametrize(
    ("name", "place"),
    [("s.csv", "line 102"), ("s.csv.gz", "line 102"), ("s.parquet", "data row 101")],
)
def test_the_same_bad_cell_is_a_line_of_a_csv_and_a_data_row_of_parquet(
    name: str, place: str
) -> None:
    # What the user opens decides the name: a CSV (in an editor, the header is line 1) shows
    # lines, parquet only its data rows.
    rows = five_minute_rows("web-1", "cpu", "2024-03-01", 200)
    rows[100] = (*rows[100][:3], "twelve")  # the 101st data row
    data = samples_csv(rows)
    if name.endswith(".gz"):
        data = gzip.compress(data)
    elif name.endswith(".parquet"):
        buffer = io.BytesIO()
        pd.read_csv(io.BytesIO(data), dtype=str).to_parquet(buffer, index=False)
        data = buffer.getvalue()
    assert _error(data, name=name).startswith(
        f"{name}: column 'value' is not a number at {place} ('twelve'): "
    )


def test_unknown_file_type_fails() -> None:
    assert "unknown file type" in _error(b"a,b\n1,2\n", name="samples.xlsx")


def test_a_real_export_as_long_samples_matches_the_cloudwatch_reader() -> None:
    name, data = real_file("nab_cloudwatch", "ec2_cpu_utilization_5f5533.csv")
    raw = pd.read_csv(io.BytesIO(data))
    long = raw.assign(server_id="5f5533", metric="CPU")[
        ["timestamp", "server_id", "metric", "value"]
    ]
    as_samples = read_samples([("long.csv", long.to_csv(index=False).encode())], UTC)
    as_cloudwatch = read_export("cloudwatch_csv", [(name, data)])
    pd.testing.assert_frame_equal(as_samples.metrics, as_cloudwatch.metrics)
    assert as_samples.counts["days_out"] == 13
