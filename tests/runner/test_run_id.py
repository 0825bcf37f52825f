"""A run id is a name: one folder under run.output_root and one S3 key segment, never a path.

Through the real ``run_all.main``: a bad ``--run-id`` ends as one ``error:`` line and exit 2,
before any storage is opened, so nothing is written at all.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest

import run_all
from capacity_forecaster.core.errors import ParamsError
from capacity_forecaster.core.params import check_run_id, parse_params
from capacity_forecaster.core.storage import open_run_storage
from capacity_forecaster.runner import pipeline

BAD_RUN_IDS = ["../escaped", "..", ".", "", "a/b", "a\\b", "bad\nid", "nul\x00id", "ok\n", "_x"]


@pytest.fixture
def no_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stages recorded as run without starting a kernel: should a run get past the run-id
    check (as it did before the check existed), it stays fast and only writes its records."""

    def execute_stage(stage: pipeline.Stage, *_: Any) -> dict[str, Any]:
        return {"stage": stage.name, "status": "succeeded", "seconds": 0.0}

    monkeypatch.setattr(pipeline, "execute_stage", execute_stage)
    monkeypatch.setenv("PATH", os.environ.get("PATH", ""))  # run_pipeline prepends to it


def _files_under(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


def _tiny_params(folder: Path, storage: str = "") -> Path:
    project = folder / "project"
    project.mkdir()
    params = project / "params.yaml"
    params.write_text(f"run: {{name: tiny, output_root: out}}\n{storage}")
    return params


def _one_error_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("error: "), err
    return err


@pytest.mark.usefixtures("no_kernels")
@pytest.mark.parametrize("run_id", [*BAD_RUN_IDS, "ABSOLUTE"])
def test_a_bad_run_id_is_refused_and_nothing_is_written(
    run_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = _tiny_params(tmp_path)
    if run_id == "ABSOLUTE":
        run_id = str(tmp_path / "elsewhere")
    before = _files_under(tmp_path)

    code = run_all.main(["--params", str(params), "--run-id", run_id])

    err = _one_error_line(capsys.readouterr().err)
    assert code == 2, err
    assert "is not allowed" in err and "-YYYYmmddTHHMMSSZ" in err
    if len(run_id) < 20:
        assert f"run id {run_id!r}" in err
    assert _files_under(tmp_path) == before, "a refused run wrote files"
    assert not (params.parent / "out").exists()


@pytest.mark.s3
@pytest.mark.usefixtures("no_kernels")
def test_a_bad_run_id_writes_no_s3_keys(
    tmp_path: Path, s3_bucket: str, s3_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import boto3

    params = _tiny_params(
        tmp_path, f"storage: {{backend: s3, s3: {{bucket: {s3_bucket}, prefix: runs}}}}\n"
    )
    code = run_all.main(["--params", str(params), "--run-id", "../escaped"])

    _one_error_line(capsys.readouterr().err)
    assert code == 2
    listed = boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket=s3_bucket)
    assert listed.get("KeyCount", 0) == 0, [o["Key"] for o in listed.get("Contents", [])]


@pytest.mark.usefixtures("no_kernels")
def test_a_good_run_id_runs_in_its_folder(tmp_path: Path) -> None:
    params = _tiny_params(tmp_path)
    code = run_all.main(["--params", str(params), "--run-id", "tiny-20260630T120000Z"])
    assert code == 0
    assert (params.parent / "out" / "tiny-20260630T120000Z" / "manifest.json").is_file()


@pytest.mark.parametrize("run_id", ["local", "nightly.v2", "a_b-c", "x" * 64])
def test_run_names_are_run_ids(run_id: str) -> None:
    assert check_run_id(run_id) == run_id


def test_the_runners_own_run_ids_pass_the_check() -> None:
    # The longest name run.name allows, with the suffix new_run_id appends.
    params = parse_params({"run": {"name": "n" * 64}})
    run_id = pipeline.new_run_id(params, dt.datetime(2026, 6, 30, 12, tzinfo=dt.UTC))
    assert check_run_id(run_id) == run_id


@pytest.mark.parametrize("run_id", [*BAD_RUN_IDS, "/abs/path", "x" * 65, "a-2026063T1200Z/"])
def test_check_run_id_refuses_paths_and_odd_names(run_id: str) -> None:
    with pytest.raises(ParamsError, match="is not allowed") as info:
        check_run_id(run_id)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("run_id", ["../escaped", "/tmp/abs", "."])
def test_a_notebook_opened_with_a_path_for_a_run_id_is_refused(tmp_path: Path, run_id: str) -> None:
    """A notebook takes its run id from $CAPACITY_FORECASTER_RUN_ID or its parameter, not
    from run_all.py: the storage it opens checks the id too."""
    params = parse_params({"run": {"output_root": str(tmp_path / "outputs")}})
    with pytest.raises(ParamsError, match="is not allowed"):
        open_run_storage(params, run_id)
    assert _files_under(tmp_path) == set()
