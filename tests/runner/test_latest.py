"""latest.json: beside the run folders, naming the newest run that succeeded (disk and moto S3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from capacity_forecaster.core.errors import StageFailedError
from capacity_forecaster.core.params import Params, parse_params
from capacity_forecaster.core.storage import open_run_storage
from capacity_forecaster.runner.latest import LATEST_KEY, write_latest
from capacity_forecaster.runner.pipeline import run_pipeline
from tests.runner.standins import file_data_params


def _params(output_root: Path, bucket: str | None = None) -> Params:
    raw: dict[str, Any] = {"run": {"output_root": str(output_root)}}
    if bucket:
        raw["storage"] = {"backend": "s3", "s3": {"bucket": bucket, "prefix": "team/cf"}}
    return parse_params(raw)


def _manifest(run_id: str, status: str) -> dict[str, Any]:
    """The fields of a manifest that latest.json reads."""
    return {"run_id": run_id, "status": status, "finished_at": "2026-07-01T06:00:00+00:00"}


def test_a_succeeded_run_is_named_on_local_disk(tmp_path: Path) -> None:
    storage = open_run_storage(_params(tmp_path), "nightly-20260701T000000Z")
    location = write_latest(storage, _manifest("nightly-20260701T000000Z", "succeeded"))
    assert location == str(tmp_path / LATEST_KEY)
    run_root = tmp_path / "nightly-20260701T000000Z"
    assert json.loads((tmp_path / LATEST_KEY).read_text()) == {
        "run_id": "nightly-20260701T000000Z",
        "finished_at": "2026-07-01T06:00:00+00:00",
        "manifest": str(run_root / "manifest.json"),
        "index": str(run_root / "index.html"),
    }
    assert [p.name for p in tmp_path.iterdir()] == [LATEST_KEY]  # no temp file left behind


@pytest.mark.parametrize("status", ["failed", "incomplete"])
def test_a_run_that_did_not_succeed_never_moves_it(tmp_path: Path, status: str) -> None:
    params = _params(tmp_path)
    write_latest(open_run_storage(params, "good"), _manifest("good", "succeeded"))
    before = (tmp_path / LATEST_KEY).read_bytes()
    assert write_latest(open_run_storage(params, "bad"), _manifest("bad", status)) is None
    assert (tmp_path / LATEST_KEY).read_bytes() == before


def test_nothing_is_written_before_any_run_succeeded(tmp_path: Path) -> None:
    assert (
        write_latest(open_run_storage(_params(tmp_path), "bad"), _manifest("bad", "failed")) is None
    )
    assert not (tmp_path / LATEST_KEY).exists()


@pytest.mark.s3
def test_on_s3_it_sits_at_the_prefix_as_json(tmp_path: Path, s3_bucket: str) -> None:
    params = _params(tmp_path, s3_bucket)
    location = write_latest(open_run_storage(params, "good"), _manifest("good", "succeeded"))
    assert location == f"s3://{s3_bucket}/team/cf/latest.json"
    write_latest(open_run_storage(params, "bad"), _manifest("bad", "failed"))
    client = boto3.client("s3")
    obj = client.get_object(Bucket=s3_bucket, Key="team/cf/latest.json")
    assert obj["ContentType"] == "application/json"
    expected = {
        "run_id": "good",
        "finished_at": "2026-07-01T06:00:00+00:00",
        "manifest": f"s3://{s3_bucket}/team/cf/good/manifest.json",
        "index": f"s3://{s3_bucket}/team/cf/good/index.html",
    }
    assert json.loads(obj["Body"].read()) == expected
    assert json.loads((tmp_path / LATEST_KEY).read_text()) == expected  # the local copy too


# run_pipeline itself, without starting a kernel: with data.source 'file' stage 01 has nothing
# to do (a succeeded run), leaving out the one stage a synthetic run needs leaves the run
# incomplete, and a notebook that is not a notebook fails its stage.


@pytest.fixture
def notebooks_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "01_generate.ipynb").write_text("not a notebook")
    return folder


@pytest.fixture
def params_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return file_data_params(tmp_path, monkeypatch)


def test_run_pipeline_moves_it_only_for_a_succeeded_run(
    tmp_path: Path, params_file: Path, notebooks_dir: Path
) -> None:
    latest = tmp_path / "out" / LATEST_KEY
    manifest = run_pipeline(params_file, run_id="first", notebooks_dir=notebooks_dir)
    assert manifest["status"] == "succeeded"
    assert json.loads(latest.read_text())["run_id"] == "first"
    assert json.loads(latest.read_text())["finished_at"] == manifest["finished_at"]

    skipped = run_pipeline(
        params_file,
        overrides=["data.source=synthetic"],
        run_id="partial",
        skip=["01"],
        notebooks_dir=notebooks_dir,
    )
    assert skipped["status"] == "incomplete"
    with pytest.raises(StageFailedError):
        run_pipeline(
            params_file,
            overrides=["data.source=synthetic"],
            run_id="broken",
            notebooks_dir=notebooks_dir,
        )
    assert json.loads((tmp_path / "out" / "broken" / "manifest.json").read_text())["status"] == (
        "failed"
    )
    assert json.loads(latest.read_text())["run_id"] == "first"

    run_pipeline(params_file, run_id="second", notebooks_dir=notebooks_dir)
    assert json.loads(latest.read_text())["manifest"] == str(
        tmp_path / "out" / "second" / "manifest.json"
    )
