"""Stage 02's inputs from every source: a folder or S3 prefix of export files, the inventory laid
under the export's capacity, and the listing rules (hidden files, the inventory in the folder)."""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import boto3
import pandas as pd
import pytest

from capacity_forecaster.core.errors import DataValidationError
from capacity_forecaster.core.params import Params
from capacity_forecaster.core.storage import ArtifactNotFoundError, list_source, open_run_storage
from capacity_forecaster.ingest.formats import FormatResult
from capacity_forecaster.ingest.sources import overlay_export_capacity, read_fleet
from capacity_forecaster.ingest.validate import validate_metrics
from tests.conftest import PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / "examples" / "bitbrains"
TRACE = EXAMPLE / "trace"
SERVERS_CSV = EXAMPLE / "servers.csv"


def _params(tmp_path: Path, metrics_path: str, servers_path: str, **data: object) -> Params:
    return Params.model_validate(
        {
            "run": {"output_root": str(tmp_path / "out")},
            "data": {
                "source": "file",
                "format": "vm_trace",
                "metrics_path": metrics_path,
                "servers_path": servers_path,
                **data,
            },
        }
    )


def _samples_csv(rows: list[tuple[str, str, str, float]]) -> bytes:
    lines = ["timestamp,server_id,metric,value"] + [",".join(map(str, r)) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def test_a_folder_lists_every_file_below_it_but_hidden_ones(tmp_path: Path) -> None:
    (tmp_path / "2024-01").mkdir()
    (tmp_path / "2024-01" / "a.csv").write_text("x")
    (tmp_path / "b.csv.gz").write_bytes(gzip.compress(b"x"))
    (tmp_path / ".DS_Store").write_text("x")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "a-checkpoint.csv").write_text("x")
    assert list_source(str(tmp_path)) == [
        str(tmp_path / "2024-01" / "a.csv"),
        str(tmp_path / "b.csv.gz"),
    ]
    assert list_source(str(tmp_path / "b.csv.gz")) == [str(tmp_path / "b.csv.gz")]


def test_an_empty_or_absent_folder_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFoundError, match=re.escape(f"{tmp_path} holds no files")):
        list_source(str(tmp_path))
    with pytest.raises(ArtifactNotFoundError, match=r"input not found: .*nowhere"):
        list_source(str(tmp_path / "nowhere"))


def test_the_inventory_in_the_export_folder_is_not_read_as_export(tmp_path: Path) -> None:
    # The inventory is put beside the trace, as users do.
    shutil.copytree(TRACE, tmp_path / "export")
    shutil.copy(SERVERS_CSV, tmp_path / "export" / "servers.csv")
    params = _params(tmp_path, str(tmp_path / "export"), str(tmp_path / "export" / "servers.csv"))
    raw = read_fleet(params, open_run_storage(params, "t"), "02_load")
    assert raw.summary["export_files"] == 3
    assert sorted(raw.metrics["server_id"].unique()) == ["1", "407", "412"]
    assert raw.summary["counts"]["samples_read"] == 51_778
    # The trace's provisioned capacity replaces the inventory's: 407 has 2.998 GB, not 3.
    servers = raw.servers.set_index("server_id")
    assert servers.loc["407", "memory_gb"] == pytest.approx(2.998047, abs=1e-6)
    assert servers.loc["407", "business_unit"] == "research"
    assert not any("provisioned differently" in w for w in raw.warnings)  # within 2 %


def test_capacity_the_export_reports_differently_is_named(tmp_path: Path) -> None:
    inventory = pd.DataFrame(
        {"server_id": ["a", "b", "c"], "cpu_cores": [8, 2, 4], "memory_gb": [16, 4, 8]}
    )
    exported = pd.DataFrame({"server_id": ["a", "b"], "cpu_cores": [4.0, 2.0]})
    result = FormatResult(metrics=pd.DataFrame(), servers=exported)
    warnings: list[str] = []
    merged = overlay_export_capacity(inventory, result, "servers.csv", warnings)
    assert merged["cpu_cores"].tolist() == [4.0, 2.0, 4.0]  # c: not in the export, kept
    assert merged["memory_gb"].tolist() == [16, 4, 8]
    assert len(warnings) == 1 and "1 server provisioned differently" in warnings[0]
    assert "'a'" in warnings[0]


def test_an_export_under_an_s3_prefix_is_read_like_a_folder(
    tmp_path: Path, s3_bucket: str, s3_endpoint: str
) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    day = pd.Timestamp("2026-01-01")
    rows = [
        (str(day + pd.Timedelta(hours=h)), f"srv-{s}", "cpu", float(10 * s + h % 3))
        for s in (1, 2)
        for h in range(24 * 30)
    ]
    client.put_object(Bucket=s3_bucket, Key="export/part-0.csv", Body=_samples_csv(rows[:720]))
    client.put_object(Bucket=s3_bucket, Key="export/part-1.csv", Body=_samples_csv(rows[720:]))
    client.put_object(Bucket=s3_bucket, Key="exports-old/ignored.csv", Body=b"junk")
    shutil.copy(SERVERS_CSV, tmp_path / "servers.csv")
    inventory = pd.read_csv(SERVERS_CSV, dtype={"server_id": str}).head(2)
    inventory.assign(server_id=["srv-1", "srv-2"]).to_csv(tmp_path / "servers.csv", index=False)
    params = _params(
        tmp_path,
        f"s3://{s3_bucket}/export",
        str(tmp_path / "servers.csv"),
        format="samples",
    )
    raw = read_fleet(params, open_run_storage(params, "t"), "02_load")
    assert raw.summary["export_files"] == 2  # exports-old/ is another prefix, not a subfolder
    assert raw.metrics.groupby("server_id")["date"].nunique().to_dict() == {
        "srv-1": 30,
        "srv-2": 30,
    }
    # P95 of the day's hourly values 10*s + (0, 1, 2 repeating): 10*s + 2.
    assert raw.metrics.groupby("server_id")["cpu_p95"].max().to_dict() == {
        "srv-1": 12.0,
        "srv-2": 22.0,
    }
    assert raw.metrics["mem_p95"].isna().all()  # the export has no memory: not monitored


def test_a_stray_day_in_an_export_names_the_server_and_day_but_no_line(tmp_path: Path) -> None:
    # The daily table of an export is built from its samples: its rows are no lines of the
    # file metrics_path names, even when that is a single file.
    start = pd.Timestamp("2026-01-01")
    rows = [
        (str(start + pd.Timedelta(hours=h)), f"srv-{s}", "cpu", float(h % 7))
        for s in (1, 2)
        for h in range(24 * 40)
    ]
    for h in range(24):  # srv-1's first day with a mistyped year
        rows[h] = (str(start - pd.DateOffset(years=1) + pd.Timedelta(hours=h)), *rows[h][1:])
    (tmp_path / "samples.csv").write_bytes(_samples_csv(rows))
    pd.DataFrame({"server_id": ["srv-1", "srv-2"]}).to_csv(tmp_path / "servers.csv", index=False)
    params = _params(
        tmp_path, str(tmp_path / "samples.csv"), str(tmp_path / "servers.csv"), format="samples"
    )
    raw = read_fleet(params, open_run_storage(params, "t"), "02_load")
    with pytest.raises(DataValidationError) as caught:
        validate_metrics(
            raw.metrics, raw.metrics_source, max_missing_share=0.1, min_history_days=28
        )
    message = str(caught.value)
    assert "column 'date': 2025-01-01 (server 'srv-1') lies 366 days before the rest" in message
    assert "line" not in message and "data row" not in message
