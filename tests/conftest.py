"""Shared fixtures: the project's paths, and a real S3-compatible server on 127.0.0.1."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PARAMS_DIR = PROJECT_ROOT / "params"

# Recognisable fake credentials: no test may reach real AWS, and a later test can grep
# artifacts for them to prove no secret leaks.
FAKE_ACCESS_KEY = "AKIAFAKETESTKEY00001"
FAKE_SECRET_KEY = "fake-secret-key-never-leak-0123456789"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (a free port), stopped when the session ends."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """An AWS environment with fake credentials and no config files or instance metadata."""
    env = {
        "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        # Never ask an instance-metadata endpoint for credentials: tests stay on loopback.
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def s3_bucket(s3_endpoint: str, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty bucket on the local S3 server; AWS_ENDPOINT_URL_S3 points boto3 at it."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    bucket = f"cf-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    return bucket


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No params or run id picked up from the caller's environment."""
    for key in ("CAPACITY_FORECASTER_PARAMS", "CAPACITY_FORECASTER_RUN_ID"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
