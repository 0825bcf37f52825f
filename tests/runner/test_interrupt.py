"""Ctrl-C: one line naming where the run stopped and how to complete it, exit 130, an
'interrupted' manifest, and no kernel or worker left behind.

The real thing once (run_all.py on the ci fleet, Ctrl-C while 04_train's workers fit), and the
runner's two paths (in a stage, between stages) on stand-in notebooks that send the runner its
Ctrl-C themselves.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from capacity_forecaster.runner import interrupt
from capacity_forecaster.runner.interrupt import InterruptWatch, RunInterrupted
from capacity_forecaster.runner.pipeline import run_pipeline
from tests.cli import RUN_TIMEOUT, run_all
from tests.conftest import PARAMS_DIR, PROJECT_ROOT
from tests.processes import new_marker, wait_for_none, wait_for_workers
from tests.runner.standins import file_data_params, standin_notebooks

CI = str(PARAMS_DIR / "ci.yaml")


def _manifest(run_root: Path) -> dict[str, Any]:
    return json.loads((run_root / "manifest.json").read_text())


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """run_all.py on the ci fleet, stages 01-04, sent Ctrl-C (SIGINT to its process group, as
    a terminal does) while 04_train's loky workers fit."""
    output_root = tmp_path_factory.mktemp("outputs")
    marker = new_marker()
    process = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "run_all.py"), "--params", CI,
         "--set", f"run.output_root={output_root}", "--run-id", "ctrl-c", "--only", "01,02,03,04"],
        cwd=str(PROJECT_ROOT / "tests"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, env={**os.environ, **marker},
    )  # fmt: skip
    root = output_root / "ctrl-c"
    partial = root / "notebooks" / ".04_train.tmp.ipynb"
    workers_started = wait_for_workers(process, partial, marker)
    time.sleep(1)  # the workers are fitting
    sent = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=RUN_TIMEOUT)
    yield {
        "root": root,
        "output_root": output_root,
        "returncode": process.returncode,
        "stderr": stderr,
        "seconds": time.monotonic() - sent,
        "workers_started": workers_started,
        "left": wait_for_none(marker, 15),
    }


@pytest.mark.e2e
def test_ctrl_c_in_a_stage_ends_with_one_line_and_exit_130(interrupted: dict[str, Any]) -> None:
    assert interrupted["workers_started"], "04_train's workers never started"
    stderr = interrupted["stderr"]
    assert "Traceback" not in stderr and "asyncio" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: interrupted in stage 04_train; the run can be completed with "
        "--run-id ctrl-c --from 04"
    ]
    assert stderr.endswith(errors[0] + "\n")
    assert interrupted["returncode"] == 130
    assert interrupted["seconds"] < 60
    assert interrupted["left"] == []  # the kernel, its loky workers and their helpers


@pytest.mark.e2e
def test_ctrl_c_leaves_an_interrupted_manifest_and_no_lock(interrupted: dict[str, Any]) -> None:
    root = interrupted["root"]
    manifest = _manifest(root)
    assert manifest["status"] == "interrupted" and manifest["interrupted_stage"] == "04_train"
    stages = {s["stage"]: s for s in manifest["stages"]}
    assert [stages[n]["status"] for n in ("01_generate", "02_load", "03_etl")] == ["succeeded"] * 3
    assert stages["04_train"]["status"] == "interrupted"
    assert stages["04_train"]["error"].startswith("04_train interrupted in cell ")
    assert (root / "notebooks" / "04_train.ipynb").is_file()  # where it stopped, for a reader
    assert not (root / "notebooks" / ".04_train.tmp.ipynb").exists()
    assert not (root / "run.lock").exists()
    assert not (interrupted["output_root"] / "latest.json").exists()


@pytest.mark.e2e
def test_a_partial_rerun_with_other_params_is_refused_in_one_line(
    interrupted: dict[str, Any],
) -> None:
    before = (interrupted["root"] / "manifest.json").read_bytes()
    result = run_all("--params", CI, "--set", f"run.output_root={interrupted['output_root']}",
                     "--run-id", "ctrl-c", "--only", "02", "--set", "data.max_missing_share=0.2")  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == (
        "error: run ctrl-c was built with other params (data.max_missing_share 0.1 -> 0.2): "
        "03_etl would keep products built with the earlier values; run --run-id ctrl-c "
        "--from 02 to rebuild them, or keep the earlier values\n"
    )
    assert (interrupted["root"] / "manifest.json").read_bytes() == before


# The runner's own paths, in this process, on stand-in notebooks: the kernel sends its parent
# (the runner) SIGINT, as a terminal's Ctrl-C would.

_CTRL_C = "import os, signal, time\nos.kill(os.getppid(), signal.SIGINT)\n"


@pytest.fixture
def no_stray_ctrl_c() -> Iterator[list[int]]:
    """Should the runner not take the Ctrl-C (a regression), it lands here, not in pytest."""
    caught: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    previous = signal.signal(signal.SIGINT, note)
    try:
        yield caught
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_in_a_stage_stops_its_kernel_and_records_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_stray_ctrl_c: list[int]
) -> None:
    marker = new_marker()
    for key, value in marker.items():
        monkeypatch.setenv(key, value)  # the kernels inherit it
    params = file_data_params(tmp_path, monkeypatch)
    notebooks = standin_notebooks(tmp_path / "nb", {"02_load": _CTRL_C + "time.sleep(120)"})
    started = time.monotonic()
    with pytest.raises(RunInterrupted) as info:
        run_pipeline(params, run_id="r", notebooks_dir=notebooks)
    assert str(info.value) == (
        "interrupted in stage 02_load; the run can be completed with --run-id r --from 02"
    )
    assert time.monotonic() - started < 60 and no_stray_ctrl_c == []
    manifest = _manifest(tmp_path / "out" / "r")
    assert manifest["status"] == "interrupted" and manifest["interrupted_stage"] == "02_load"
    assert {s["stage"]: s["status"] for s in manifest["stages"]} == {
        "01_generate": "skipped",
        "02_load": "interrupted",
        "03_etl": "not_run",
    }
    assert not (tmp_path / "out" / "r" / "run.lock").exists()
    assert [p for p in wait_for_none(marker, 10) if p[0] != os.getpid()] == []


def test_a_kernel_that_ignores_the_interrupt_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_stray_ctrl_c: list[int]
) -> None:
    monkeypatch.setattr(interrupt, "GRACE_SECONDS", 1.0)
    marker = new_marker()
    for key, value in marker.items():
        monkeypatch.setenv(key, value)
    deaf = "signal.signal(signal.SIGINT, signal.SIG_IGN)\n" + _CTRL_C + "time.sleep(120)"
    params = file_data_params(tmp_path, monkeypatch)
    notebooks = standin_notebooks(tmp_path / "nb", {"02_load": "import signal\n" + deaf})
    started = time.monotonic()
    with pytest.raises(RunInterrupted, match=r"^interrupted in stage 02_load;"):
        run_pipeline(params, run_id="r", notebooks_dir=notebooks)
    assert time.monotonic() - started < 60
    stages = {s["stage"]: s for s in _manifest(tmp_path / "out" / "r")["stages"]}
    assert stages["02_load"]["status"] == "interrupted"
    assert [p for p in wait_for_none(marker, 10) if p[0] != os.getpid()] == []


def test_ctrl_c_between_stages_stops_before_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_stray_ctrl_c: list[int]
) -> None:
    # 02 sends Ctrl-C, then takes the interrupt the runner passes on to its kernel and ends
    # well: the run stops before 03.
    code = (
        "import os, signal, time\ntry:\n    os.kill(os.getppid(), signal.SIGINT)\n"
        "    time.sleep(120)\nexcept KeyboardInterrupt:\n    pass"
    )
    params = file_data_params(tmp_path, monkeypatch)
    notebooks = standin_notebooks(tmp_path / "nb", {"02_load": code})
    with pytest.raises(RunInterrupted) as info:
        run_pipeline(params, run_id="r", notebooks_dir=notebooks)
    assert str(info.value) == (
        "interrupted before stage 03_etl; the run can be completed with --run-id r --from 03"
    )
    stages = {s["stage"]: s["status"] for s in _manifest(tmp_path / "out" / "r")["stages"]}
    assert stages == {"01_generate": "skipped", "02_load": "succeeded", "03_etl": "interrupted"}
    assert no_stray_ctrl_c == []


def test_a_second_ctrl_c_outside_a_stage_stops_at_once(no_stray_ctrl_c: list[int]) -> None:
    before = signal.getsignal(signal.SIGINT)
    with InterruptWatch() as interrupts:
        os.kill(os.getpid(), signal.SIGINT)
        assert interrupts.requested  # the first only asks the run to stop before its next stage
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs here, between bytecodes
    assert signal.getsignal(signal.SIGINT) is before and no_stray_ctrl_c == []


@pytest.fixture
def no_stray_sigterm() -> Iterator[list[int]]:
    """Should the runner not take the SIGTERM (a regression), it lands here: pytest lives on."""
    caught: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: caught.append(signum))
    try:
        yield caught
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_sigterm_from_a_scheduler_stops_the_run_like_ctrl_c_with_exit_143(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_stray_sigterm: list[int]
) -> None:
    marker = new_marker()
    for key, value in marker.items():
        monkeypatch.setenv(key, value)
    term = "import os, signal, time\nos.kill(os.getppid(), signal.SIGTERM)\ntime.sleep(120)"
    params = file_data_params(tmp_path, monkeypatch)
    notebooks = standin_notebooks(tmp_path / "nb", {"02_load": term})
    with pytest.raises(RunInterrupted) as info:
        run_pipeline(params, run_id="r", notebooks_dir=notebooks)
    assert str(info.value).startswith("interrupted in stage 02_load;")
    assert info.value.exit_code == 143 and no_stray_sigterm == []
    manifest = _manifest(tmp_path / "out" / "r")
    stage = {s["stage"]: s for s in manifest["stages"]}["02_load"]
    assert manifest["status"] == "interrupted" and stage["status"] == "interrupted"
    assert stage["error"].endswith("(SIGTERM)")
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # the fixture's, given back
    assert [p for p in wait_for_none(marker, 10) if p[0] != os.getpid()] == []
