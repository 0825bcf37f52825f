"""Faults around a run: a run killed mid-stage, two runs at once, SSE-KMS on S3.

Interrupted work never leaves a file a later stage would take for finished (local writes go
through a temporary name; notebooks execute into a hidden temporary file; the manifest says
'running' until the run ends), other runs are untouched, and ``--from`` completes the run.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest

from capacity_forecaster.core.params import parse_params
from capacity_forecaster.core.storage import open_run_storage
from tests.cli import run_all
from tests.conftest import PARAMS_DIR, PROJECT_ROOT
from tests.processes import new_marker, wait_for_none, wait_for_workers

pytestmark = pytest.mark.e2e

CI = str(PARAMS_DIR / "ci.yaml")


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _data_digests(root: Path) -> dict[str, str]:
    """Digests of the stage products (not notebooks, params or manifest, which name the run)."""
    return {
        key: digest
        for key, digest in _digests(root).items()
        if key.split("/")[0] in {"raw", "validated", "processed"}
    }


def test_a_run_killed_mid_stage_leaves_nothing_that_looks_finished(tmp_path: Path) -> None:
    out = f"run.output_root={tmp_path}"
    finished = run_all("--params", CI, "--set", out, "--run-id", "earlier", "--only", "01,02,03")
    assert finished.returncode == 0, finished.stderr[-3000:]
    earlier = _digests(tmp_path / "earlier")

    # The killed run: SIGKILL to run_all's process group while 04_train's kernel has its
    # worker processes fitting (the kernel has a session of its own and goes when it finds
    # its parent gone; the workers must go with it, not linger holding memory).
    marker = new_marker()
    process = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "run_all.py"), "--params", CI, "--set", out,
         "--run-id", "killed", "--only", "01,02,03,04"],
        cwd=str(PROJECT_ROOT / "tests"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, env={**os.environ, **marker},
    )  # fmt: skip
    root = tmp_path / "killed"
    partial = root / "notebooks" / ".04_train.tmp.ipynb"
    workers_started = wait_for_workers(process, partial, marker)
    assert partial.exists(), "04_train never started"
    assert workers_started, "04_train's workers never started"
    time.sleep(1)  # the workers are fitting
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert wait_for_none(marker, 30) == []  # kernel, workers and their helpers all gone

    # The run did not finish, and says so: its manifest still says 'running', with what it did.
    killed = json.loads((root / "manifest.json").read_text())
    assert killed["status"] == "running" and killed["artifacts"] is None
    assert {s["stage"]: s["status"] for s in killed["stages"]} == {
        "01_generate": "succeeded", "02_load": "succeeded", "03_etl": "succeeded",
        "04_train": "running", "05_forecast": "not_run", "06_risk": "not_run",
        "07_cluster": "not_run", "08_report": "not_run", "09_visualize": "not_run",
    }  # fmt: skip
    assert (root / "run.lock").is_file()  # left by the killed process: the next run takes it
    assert not (root / "notebooks" / "04_train.ipynb").exists()  # only the hidden partial
    assert not (root / "models" / "metrics.json").exists()
    assert _digests(tmp_path / "earlier") == earlier  # another run is untouched

    completed = run_all("--params", CI, "--set", out, "--run-id", "killed", "--from", "04",
                        "--skip", "05,06,07,08,09")  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert f"taking over the lock left by pid {process.pid} on host" in completed.stderr
    assert "04_train: an earlier invocation of run killed ended while it ran" in completed.stderr
    manifest = json.loads((root / "manifest.json").read_text())
    stages = {s["stage"]: s["status"] for s in manifest["stages"]}
    assert stages["04_train"] == "succeeded" and manifest["status"] == "incomplete"
    assert (root / "models" / "metrics.json").is_file()
    assert not [p.name for p in root.rglob("*") if ".tmp" in p.name or p.name == "run.lock"]


def test_two_runs_at_once_do_not_interfere(tmp_path: Path) -> None:
    def run(run_id: str):
        return run_all("--params", CI, "--set", f"run.output_root={tmp_path}",
                       "--run-id", run_id, "--only", "01,02,03")  # fmt: skip

    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(run, ["left", "right"])
    assert first.returncode == 0, first.stderr[-3000:]
    assert second.returncode == 0, second.stderr[-3000:]
    for run_id in ("left", "right"):
        manifest = json.loads((tmp_path / run_id / "manifest.json").read_text())
        assert manifest["status"] == "incomplete" and manifest["run_id"] == run_id
        keys = {a["key"] for a in manifest["artifacts"]}
        assert "raw/metrics.parquet" in keys and not [
            k for k in keys if "left" in k or "right" in k
        ]
    # Same params and seed: the same products, byte for byte, each in its own folder.
    assert _data_digests(tmp_path / "left") == _data_digests(tmp_path / "right")
    assert len(_data_digests(tmp_path / "left")) == 8  # raw 2, validated 3, processed 3


@pytest.mark.s3
def test_sse_kms_writes_ask_for_the_key(tmp_path: Path, s3_bucket: str, s3_endpoint: str) -> None:
    key_id = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    params = parse_params(
        {
            "run": {"output_root": str(tmp_path)},
            "storage": {
                "backend": "s3",
                "s3": {
                    "bucket": s3_bucket,
                    "prefix": "kms",
                    "sse": "aws:kms",
                    "kms_key_id": key_id,
                },
            },
        }
    )
    storage = open_run_storage(params, "run-kms")
    storage.write_json("reports/summary.json", {"a": 1})
    head = boto3.client("s3", endpoint_url=s3_endpoint).head_object(
        Bucket=s3_bucket, Key="kms/run-kms/reports/summary.json"
    )
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == key_id
