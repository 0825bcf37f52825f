"""Format vm_trace on real Bitbrains traces (tests/fixtures/real/bitbrains): VMs 1 and 54."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.core.errors import DataValidationError
from capacity_forecaster.core.params_formats import FormatOptions
from capacity_forecaster.ingest.formats import read_export
from tests.ingest.formats.builders import as_date, day_of, local_dates, p95, real_file, real_files

NAMES = ["time", "cores", "cpu_mhz_cap", "cpu_mhz", "cpu_pct", "mem_cap_kb", "mem_kb"]


def _raw(*names: str) -> pd.DataFrame:
    """The trace files as pandas reads them, for hand computations."""
    frames = [
        pd.read_csv(io.BytesIO(real_file("bitbrains", n)[1]), sep=";\t", engine="python")
        for n in names
    ]
    raw = pd.concat(frames, ignore_index=True).iloc[:, : len(NAMES)]
    raw.columns = NAMES
    return raw


def test_daily_p95_capacity_and_counts_of_two_vms() -> None:
    result = read_export("vm_trace", real_files("bitbrains"))

    days = {
        vm: result.metrics.loc[result.metrics["server_id"] == vm, "date"]
        .dt.strftime("%m-%d")
        .tolist()
        for vm in ("1", "54")
    }
    # VM 1: 07-31 is the gap between the month files; VM 54: zero capacity from 09-23 14:42.
    assert days == {"1": ["07-29", "07-30", "08-01"], "54": ["09-20", "09-21", "09-22"]}
    assert result.metrics["disk_p95"].isna().all()
    assert any("no disk-space metric" in w for w in result.warnings)
    assert result.counts["files_read"] == 3
    assert json.loads(json.dumps(result.counts)) == result.counts
    raw = _raw("2013-9/54.csv")
    no_cpu = (raw["cores"] == 0) | (raw["cpu_mhz_cap"] == 0)
    no_memory = raw["mem_cap_kb"] == 0
    # A CPU and a memory sample per row of VM 1 (864 rows); VM 54 loses the zero-capacity ones.
    cpu_and_memory_54 = int((~no_cpu).sum() + (~no_memory).sum())
    assert result.counts["samples_read"] == 2 * 864 + cpu_and_memory_54 == 3811
    zero = int((no_cpu | no_memory).sum())
    assert result.counts["zero_capacity_samples_by_server"] == {"54": zero}
    assert result.counts["zero_capacity_samples"] == zero == 335
    # Cores 8 -> 4 once; provisioned memory changes three times.
    assert result.counts["capacity_changes_by_server"] == {"54": 4}

    servers = result.servers.set_index("server_id")
    assert servers.loc["1", "cpu_cores"] == 2
    assert servers.loc["1", "memory_gb"] == pytest.approx(8.0)
    assert servers.loc["54", "cpu_cores"] == 4
    assert servers.loc["54", "memory_gb"] == pytest.approx(16324608 / 1024**2, rel=1e-6)


def test_memory_is_usage_over_the_capacity_of_each_sample() -> None:
    result = read_export("vm_trace", real_files("bitbrains"))
    raw = _raw("2013-9/54.csv")
    on_day = raw[local_dates(raw["time"], "UTC") == as_date("2013-09-21")]
    assert on_day["cores"].nunique() == 2  # the day the VM went from 8 to 4 cores
    row = day_of(result.metrics, "54", "2013-09-21")
    assert row["cpu_p95"] == pytest.approx(p95(on_day["cpu_pct"]))
    assert row["mem_p95"] == pytest.approx(p95(100 * on_day["mem_kb"] / on_day["mem_cap_kb"]))


def test_days_follow_the_time_zone() -> None:
    result = read_export(
        "vm_trace", real_files("bitbrains"), FormatOptions(timezone="Europe/Amsterdam")
    )
    raw = _raw("2013-7/1.csv", "2013-8/1.csv")
    on_day = raw[local_dates(raw["time"], "Europe/Amsterdam") == as_date("2013-08-01")]
    utc_day = raw[local_dates(raw["time"], "UTC") == as_date("2013-08-01")]
    assert len(on_day) != len(utc_day) or not np.array_equal(on_day.index, utc_day.index)
    row = day_of(result.metrics, "1", "2013-08-01")
    assert row["cpu_p95"] == pytest.approx(p95(on_day["cpu_pct"]))
    assert row["mem_p95"] == pytest.approx(p95(100 * on_day["mem_kb"] / on_day["mem_cap_kb"]))


def test_a_bad_cell_names_file_column_and_row() -> None:
    name, data = real_file("bitbrains", "2013-8/1.csv")
    lines = data.decode().splitlines()
    cells = lines[20].split(";\t")
    cells[4] = "busy"
    lines[20] = ";\t".join(cells)
    with pytest.raises(DataValidationError) as caught:
        read_export("vm_trace", [(name, "\n".join(lines).encode())])
    message = str(caught.value)
    assert message.startswith(f"{name}: column 'CPU usage [%]'")
    assert "at line 21 ('busy')" in message  # lines[20]: the header is line 1


def test_a_missing_column_is_named() -> None:
    name, data = real_file("bitbrains", "2013-8/1.csv")
    data = data.replace(b"Memory capacity provisioned [KB]", b"Memory [KB]")
    with pytest.raises(DataValidationError, match="no column 'memory capacity provisioned"):
        read_export("vm_trace", [(name, data)])
