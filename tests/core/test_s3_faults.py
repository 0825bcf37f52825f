"""S3 faults through a fault-injecting proxy on 127.0.0.1: transient errors are retried with
back-off and the write succeeds whole; permanent errors fail fast with one clear line."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from capacity_forecaster.core.errors import StorageError
from capacity_forecaster.core.params import parse_params
from capacity_forecaster.core.storage import RunStorage, open_run_storage
from tests.s3_fault_proxy import FaultProxy, start_proxy

pytestmark = pytest.mark.s3


@pytest.fixture
def proxy(
    s3_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FaultProxy]:
    fault_proxy, server = start_proxy(s3_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", fault_proxy.url)
    try:
        yield fault_proxy
    finally:
        server.shutdown()
        server.server_close()


def _storage(tmp_path: Path, bucket: str, run_id: str = "faults") -> RunStorage:
    params = parse_params(
        {
            "run": {"output_root": str(tmp_path)},
            "storage": {"backend": "s3", "s3": {"bucket": bucket, "prefix": "cf"}},
        }
    )
    return open_run_storage(params, run_id)


def _object(s3_endpoint: str, bucket: str, key: str) -> bytes:
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


@pytest.mark.parametrize(
    "status",
    [pytest.param(503, id="throttled-503"), pytest.param(500, id="server-500"),
     pytest.param(0, id="dropped-connection")],
)  # fmt: skip
def test_transient_write_errors_are_retried_and_the_object_is_whole(
    tmp_path: Path, s3_endpoint: str, s3_bucket: str, proxy: FaultProxy, status: int
) -> None:
    storage = _storage(tmp_path, s3_bucket)
    payload = b"x" * 200_000
    rule = proxy.fail("PUT", "/raw/blob.bin", status, times=2)
    storage.write_bytes("raw/blob.bin", payload)
    assert rule.hits == 2
    puts = [r for r in proxy.requests if r[0] == "PUT" and "/raw/blob.bin" in r[1]]
    assert [code for _, _, code in puts] == [status, status, 200]
    assert _object(s3_endpoint, s3_bucket, "cf/faults/raw/blob.bin") == payload


def test_transient_read_errors_are_retried(
    tmp_path: Path, s3_bucket: str, proxy: FaultProxy
) -> None:
    storage = _storage(tmp_path, s3_bucket)
    storage.write_json("risk/summary.json", {"servers": 3})
    proxy.fail("GET", "/risk/summary.json", 503, times=2)
    assert storage.read_json("risk/summary.json") == {"servers": 3}


def test_access_denied_fails_fast_without_retrying(
    tmp_path: Path, s3_bucket: str, proxy: FaultProxy
) -> None:
    storage = _storage(tmp_path, s3_bucket)
    proxy.fail("PUT", "/reports/", 403, times=100)
    started = time.perf_counter()
    with pytest.raises(StorageError) as caught:
        storage.write_bytes("reports/summary.pdf", b"%PDF-1.4")
    seconds = time.perf_counter() - started
    message = str(caught.value)
    assert message.startswith("S3: access denied (AccessDenied) while trying to write s3://")
    assert "reports/summary.pdf" in message and "\n" not in message
    assert len([r for r in proxy.requests if r[0] == "PUT"]) == 1  # no retry of a 403
    assert seconds < 30  # not a timing target: a hang here means it retried or waited


def test_a_persistent_server_error_gives_up_after_the_retry_budget(
    tmp_path: Path, s3_endpoint: str, s3_bucket: str, proxy: FaultProxy
) -> None:
    storage = _storage(tmp_path, s3_bucket)
    proxy.fail("PUT", "/models/metrics.json", 500, times=100)
    with pytest.raises(StorageError, match=r"S3: InternalError while trying to write s3://"):
        storage.write_json("models/metrics.json", {"a": 1})
    puts = [r for r in proxy.requests if r[0] == "PUT" and "/models/metrics.json" in r[1]]
    assert len(puts) == 7  # standard retry mode: the first try and max_attempts (6) retries
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    listed = client.list_objects_v2(Bucket=s3_bucket, Prefix="cf/faults/models/")
    assert "Contents" not in listed  # whole or absent: nothing half-written on S3
