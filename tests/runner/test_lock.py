"""One invocation at a time per run id: run.lock in the run folder names its holder."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from capacity_forecaster.runner.lock import LOCK_KEY, RunLockedError, run_lock
from tests.cli import run_all
from tests.conftest import PARAMS_DIR, PROJECT_ROOT


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_lock_names_its_holder_and_is_gone_after(tmp_path: Path) -> None:
    with run_lock(tmp_path / "r", "r") as holder:
        written = json.loads((tmp_path / "r" / LOCK_KEY).read_text())
        assert written == holder
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    assert not (tmp_path / "r" / LOCK_KEY).exists()


def test_a_second_holder_is_refused_naming_the_first(tmp_path: Path) -> None:
    with run_lock(tmp_path, "r"), pytest.raises(RunLockedError) as info, run_lock(tmp_path, "r"):
        pass
    assert str(info.value).startswith(f"run r is already running (pid {os.getpid()} on host ")
    assert str(info.value).endswith(": wait for it to finish, or use another --run-id")


def test_the_lock_is_released_when_the_run_raises(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), run_lock(tmp_path, "r"):
        raise KeyboardInterrupt
    with run_lock(tmp_path, "r"):
        pass


def test_a_lock_left_by_a_dead_run_on_this_host_is_taken_over_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pid = _dead_pid()
    left = {"pid": pid, "host": socket.gethostname(), "started_at": "2026-07-01T06:00:00+00:00"}
    (tmp_path / LOCK_KEY).write_text(json.dumps(left))
    with caplog.at_level(logging.WARNING), run_lock(tmp_path, "r") as holder:
        assert holder["pid"] == os.getpid()
    assert f"taking over the lock left by pid {pid} on host" in caplog.text


def test_a_lock_left_on_another_host_is_refused_naming_the_file(tmp_path: Path) -> None:
    left = {"pid": 4242, "host": "elsewhere", "started_at": "2026-07-01T06:00:00+00:00"}
    (tmp_path / LOCK_KEY).write_text(json.dumps(left))
    refused = f"once that run is over, delete {re.escape(str(tmp_path / LOCK_KEY))}$"
    with pytest.raises(RunLockedError, match=refused), run_lock(tmp_path, "r"):
        pass
    assert json.loads((tmp_path / LOCK_KEY).read_text()) == left  # not ours to remove


def test_a_second_run_all_on_a_running_run_id_is_refused_and_writes_nothing(
    tmp_path: Path,
) -> None:
    """The first holds the lock (a process that holds it as run_pipeline does); the second,
    the real run_all.py, stops with one line before writing anything."""
    run_root = tmp_path / "busy"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys\nfrom pathlib import Path\nfrom capacity_forecaster.runner.lock import run_lock\n"
         f"with run_lock(Path({str(run_root)!r}), 'busy'):\n    print('held', flush=True)\n    sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(PROJECT_ROOT),
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        result = run_all("--params", str(PARAMS_DIR / "ci.yaml"), "--set", f"run.output_root={tmp_path}",
                         "--run-id", "busy")  # fmt: skip
    finally:
        holder.communicate("", timeout=30)
    assert result.returncode == 1
    assert result.stderr.endswith("\n") and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(
        f"error: run busy is already running (pid {holder.pid} on host {socket.gethostname()} since "
    )
    assert sorted(p.name for p in run_root.iterdir()) == []  # the holder's lock went with it
