"""Storage: one interface on local disk and S3 (a real moto server on 127.0.0.1)."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pandas as pd
import pytest

from capacity_forecaster.core.errors import StorageError
from capacity_forecaster.core.params import parse_params
from capacity_forecaster.core.storage import (
    ArtifactNotFoundError,
    LocalStore,
    content_type,
    open_run_storage,
    read_source,
)


def _local_params(tmp_path: Path):
    return parse_params({"run": {"output_root": str(tmp_path)}})


def _s3_params(tmp_path: Path, bucket: str, **s3):
    return parse_params(
        {
            "run": {"output_root": str(tmp_path)},
            "storage": {"backend": "s3", "s3": {"bucket": bucket, "prefix": "team/cf", **s3}},
        }
    )


FRAME = pd.DataFrame(
    {
        "date": pd.date_range("2026-01-01", periods=3),
        "server_id": ["a", "b", "c"],
        "cpu_p95": [1.0, 2.5, 99.0],
    }
)


def test_local_roundtrip_parquet_json_text(tmp_path: Path) -> None:
    storage = open_run_storage(_local_params(tmp_path), "run-1")
    storage.write_parquet("raw/metrics.parquet", FRAME)
    storage.write_json(
        "raw/summary.json",
        {"rows": 3, "when": pd.Timestamp("2026-01-01"), "n": FRAME["cpu_p95"].max()},
    )
    storage.write_text("notes/readme.txt", "hello")
    pd.testing.assert_frame_equal(storage.read_parquet("raw/metrics.parquet"), FRAME)
    assert storage.read_json("raw/summary.json") == {
        "rows": 3,
        "when": "2026-01-01T00:00:00",
        "n": 99.0,
    }
    assert storage.list_keys() == ["notes/readme.txt", "raw/metrics.parquet", "raw/summary.json"]
    assert (tmp_path / "run-1" / "raw" / "metrics.parquet").is_file()


def test_local_write_is_atomic_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path)
    store.write_bytes("a/b.bin", b"old")

    def explode(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", explode)
    with pytest.raises(StorageError, match=r"a/b.bin: cannot write .*No space left"):
        store.write_bytes("a/b.bin", b"new and longer")
    monkeypatch.undo()
    assert store.read_bytes("a/b.bin") == b"old"
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.bin"]


def test_local_artifacts_get_the_usual_file_permissions(tmp_path: Path) -> None:
    # Not owner-only like the temp file they were written through: runs are shared.
    umask = os.umask(0o022)
    os.umask(umask)
    LocalStore(tmp_path).write_bytes("reports/x.html", b"<p>")
    assert (tmp_path / "reports" / "x.html").stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../escape.txt", "raw/../../x", "dir/"])
def test_bad_keys_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(StorageError, match="invalid artifact key"):
        LocalStore(tmp_path).write_bytes(key, b"x")


def test_missing_artifacts_and_corrupt_files_name_the_key(tmp_path: Path) -> None:
    storage = open_run_storage(_local_params(tmp_path), "run-1")
    with pytest.raises(ArtifactNotFoundError, match=r"validated/metrics\.parquet: not found"):
        storage.read_parquet("validated/metrics.parquet")
    storage.write_text("raw/metrics.parquet", "this is not parquet")
    with pytest.raises(StorageError, match=r"raw/metrics\.parquet: not a readable parquet file"):
        storage.read_parquet("raw/metrics.parquet")
    storage.write_text("a.json", "{not json")
    with pytest.raises(StorageError, match=r"a\.json: not valid JSON"):
        storage.read_json("a.json")


def test_json_refuses_nan(tmp_path: Path) -> None:
    storage = open_run_storage(_local_params(tmp_path), "run-1")
    with pytest.raises(ValueError):
        storage.write_json("x.json", {"v": float("nan")})
    assert not storage.exists("x.json")


@pytest.mark.s3
def test_s3_mirror_roundtrip_with_sse(tmp_path: Path, s3_bucket: str) -> None:
    storage = open_run_storage(_s3_params(tmp_path, s3_bucket, sse="AES256"), "run-1")
    assert storage.root_uri == f"s3://{s3_bucket}/team/cf/run-1"
    storage.write_parquet("raw/metrics.parquet", FRAME)
    client = boto3.client("s3")
    head = client.head_object(Bucket=s3_bucket, Key="team/cf/run-1/raw/metrics.parquet")
    assert head["ServerSideEncryption"] == "AES256"
    # The local copy exists too, and reads come from S3 first.
    assert (tmp_path / "run-1" / "raw" / "metrics.parquet").is_file()
    client.put_object(
        Bucket=s3_bucket, Key="team/cf/run-1/raw/metrics.parquet", Body=_parquet(FRAME.head(1))
    )
    assert len(storage.read_parquet("raw/metrics.parquet")) == 1
    assert storage.list_keys("raw") == ["raw/metrics.parquet"]
    assert storage.list_keys("raw/") == storage.s3.list_keys("raw/") == ["raw/metrics.parquet"]
    acl = client.get_object_acl(Bucket=s3_bucket, Key="team/cf/run-1/raw/metrics.parquet")
    assert not [g for g in acl["Grants"] if "AllUsers" in str(g.get("Grantee", {}))]


CONTENT_TYPES = {
    "reports/capacity.html": "text/html; charset=utf-8",
    "reports/capacity.pdf": "application/pdf",
    "reports/capacity.xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "reports/summary.json": "application/json",
    "reports/plots/fleet.png": "image/png",
    "reports/plots/plotly.min.js": "text/javascript",
    "reports/style.css": "text/css",
    "reports/servers.csv": "text/csv",
    "raw/metrics.parquet": "application/vnd.apache.parquet",
    "notebooks/01_generate.ipynb": "application/x-ipynb+json",
    "params.yaml": "application/yaml",
    "notebooks/01_generate.kernel.log": "application/octet-stream",
    "raw/no_suffix": "application/octet-stream",
}


@pytest.mark.s3
def test_s3_objects_carry_the_content_type_of_their_suffix(tmp_path: Path, s3_bucket: str) -> None:
    # Without it S3 serves binary/octet-stream and a browser downloads the pages.
    storage = open_run_storage(_s3_params(tmp_path, s3_bucket, sse="AES256"), "run-1")
    client = boto3.client("s3")
    for key, expected in CONTENT_TYPES.items():
        storage.write_bytes(key, b"x")  # put_object
        head = client.head_object(Bucket=s3_bucket, Key=f"team/cf/run-1/{key}")
        assert (head["ContentType"], head["ServerSideEncryption"]) == (expected, "AES256"), key
        storage.s3.delete(key)
        storage.mirror_file(key)  # upload_file, the path executed notebooks and HTML take
        head = client.head_object(Bucket=s3_bucket, Key=f"team/cf/run-1/{key}")
        assert (head["ContentType"], head["ServerSideEncryption"]) == (expected, "AES256"), key


@pytest.mark.s3
def test_s3_typed_helpers_set_the_content_type(tmp_path: Path, s3_bucket: str) -> None:
    storage = open_run_storage(_s3_params(tmp_path, s3_bucket), "run-1")
    storage.write_parquet("raw/metrics.parquet", FRAME)
    storage.write_json("risk/summary.json", {"servers": 3})
    storage.write_text("index.html", "<p>ok</p>")
    client = boto3.client("s3")
    types = {
        key: client.head_object(Bucket=s3_bucket, Key=f"team/cf/run-1/{key}")["ContentType"]
        for key in ("raw/metrics.parquet", "risk/summary.json", "index.html")
    }
    assert types == {
        "raw/metrics.parquet": "application/vnd.apache.parquet",
        "risk/summary.json": "application/json",
        "index.html": "text/html; charset=utf-8",
    }


def test_content_type_ignores_case_and_the_hosts_mime_table() -> None:
    # The built-in table only: /etc/mime.types must not make the type depend on the machine.
    assert content_type("reports/CAPACITY.PDF") == "application/pdf"
    assert content_type("a.tar.gz") == "application/octet-stream"
    assert {key: content_type(key) for key in CONTENT_TYPES} == CONTENT_TYPES


@pytest.mark.s3
def test_write_beside_runs_lands_at_the_output_prefix(tmp_path: Path, s3_bucket: str) -> None:
    storage = open_run_storage(_s3_params(tmp_path, s3_bucket), "run-1")
    location = storage.write_beside_runs("latest.json", b"{}\n")
    assert location == f"s3://{s3_bucket}/team/cf/latest.json"
    assert (tmp_path / "latest.json").read_bytes() == b"{}\n"
    head = boto3.client("s3").head_object(Bucket=s3_bucket, Key="team/cf/latest.json")
    assert head["ContentType"] == "application/json"
    assert storage.list_keys() == []  # not an artifact of the run
    no_prefix = open_run_storage(_s3_params(tmp_path, s3_bucket, prefix=""), "run-1")
    assert no_prefix.write_beside_runs("latest.json", b"{}\n") == f"s3://{s3_bucket}/latest.json"


@pytest.mark.s3
def test_s3_falls_back_to_the_local_copy(tmp_path: Path, s3_bucket: str) -> None:
    storage = open_run_storage(_s3_params(tmp_path, s3_bucket), "run-1")
    storage.write_json("raw/x.json", {"a": 1})
    boto3.client("s3").delete_object(Bucket=s3_bucket, Key="team/cf/run-1/raw/x.json")
    assert storage.read_json("raw/x.json") == {"a": 1}
    strict = open_run_storage(
        _s3_params(tmp_path, s3_bucket).model_copy(
            update={
                "storage": _s3_params(tmp_path, s3_bucket).storage.model_copy(
                    update={"local_fallback": False}
                )
            }
        ),
        "run-1",
    )
    with pytest.raises(
        ArtifactNotFoundError,
        match=rf"raw/x.json: not found at s3://{s3_bucket}/team/cf/run-1/raw/x.json$",
    ):
        strict.read_json("raw/x.json")


@pytest.mark.s3
def test_s3_missing_bucket_is_one_clear_line(tmp_path: Path, s3_bucket: str) -> None:
    storage = open_run_storage(_s3_params(tmp_path, "no-such-bucket-here"), "run-1")
    with pytest.raises(StorageError) as info:
        storage.write_text("raw/a.txt", "x")
    assert str(info.value) == (
        "S3: bucket 'no-such-bucket-here' does not exist (while trying to write s3://no-such-bucket-here/team/cf/run-1/raw/a.txt)"
    )


@pytest.mark.s3
def test_s3_without_credentials_is_one_clear_line(
    tmp_path: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    storage = open_run_storage(_s3_params(tmp_path, s3_bucket), "run-1")
    with pytest.raises(
        StorageError, match=r"^S3: no AWS credentials found while trying to write s3://"
    ):
        storage.write_text("raw/a.txt", "x")


@pytest.mark.s3
def test_s3_unreachable_endpoint_is_one_clear_line(
    tmp_path: Path, aws_env: dict, unused_port: int
) -> None:
    params = _s3_params(tmp_path, "some-bucket", endpoint_url=f"http://127.0.0.1:{unused_port}")
    storage = open_run_storage(params, "run-1")
    with pytest.raises(StorageError, match=r"^S3: cannot reach the endpoint while trying to read"):
        storage.read_bytes("raw/a.txt")


@pytest.mark.s3
def test_read_source_from_s3_and_disk(tmp_path: Path, s3_bucket: str) -> None:
    boto3.client("s3").put_object(Bucket=s3_bucket, Key="in/metrics.csv", Body=b"a,b\n1,2\n")
    assert read_source(f"s3://{s3_bucket}/in/metrics.csv") == b"a,b\n1,2\n"
    with pytest.raises(ArtifactNotFoundError, match=rf"S3: s3://{s3_bucket}/in/nope.csv not found"):
        read_source(f"s3://{s3_bucket}/in/nope.csv")
    with pytest.raises(ArtifactNotFoundError, match="input file not found"):
        read_source(str(tmp_path / "nope.csv"))


def _parquet(frame: pd.DataFrame) -> bytes:
    import io

    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()
