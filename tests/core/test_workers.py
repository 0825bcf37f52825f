"""Worker processes end with the process that started them (capacity_forecaster.core.workers)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import joblib
import pytest

from capacity_forecaster.core import workers
from capacity_forecaster.core.workers import exit_with_parent, process_pool, worker_count
from tests.processes import marked, new_marker, wait_for_none

# A parent that runs tasks on two loky workers, writes their pids to a file and dies without
# any cleanup, as a killed kernel does. "watched": our process_pool; "plain": joblib's own.
PARENT = textwrap.dedent(
    """
    import os, sys, time
    import joblib
    from capacity_forecaster.core.workers import process_pool

    def pid_after(seconds):
        time.sleep(seconds)
        return os.getpid()

    if sys.argv[1] == "watched":
        pool = process_pool(2)
    else:
        pool = joblib.Parallel(n_jobs=2, backend="loky")
    pids = pool(joblib.delayed(pid_after)(0.5) for _ in range(4))
    with open(sys.argv[2], "w") as out:
        out.write(" ".join(map(str, sorted(set(pids)))))
    os._exit(0)
    """
)


def _orphans_after_parent_dies(
    mode: str, wait: float, folder: Path
) -> tuple[set[int], list[tuple[int, str]]]:
    marker, pids, log = new_marker(), folder / "pids.txt", folder / "stderr.txt"
    # Not pipes: orphaned workers would hold them open and the run would never end.
    with log.open("w") as stderr:
        result = subprocess.run(
            [sys.executable, "-c", PARENT, mode, str(pids)],
            stdout=subprocess.DEVNULL, stderr=stderr, timeout=120, env={**os.environ, **marker},
        )  # fmt: skip
    assert result.returncode == 0, log.read_text()[-2000:]
    workers = {int(pid) for pid in pids.read_text().split()}
    assert workers and os.getpid() not in workers
    alive = wait_for_none(marker, wait)
    for pid, _ in marked(marker):  # never leave a control's orphans behind
        os.kill(pid, 9)
    return workers, alive


def test_watched_workers_end_when_their_parent_dies(tmp_path: Path) -> None:
    _, alive = _orphans_after_parent_dies("watched", 15, tmp_path)  # a poll takes 1 s
    assert alive == [], f"still alive after their parent died: {alive}"


def test_unwatched_workers_outlive_their_parent_which_is_why_tasks_are_watched(
    tmp_path: Path,
) -> None:
    workers, alive = _orphans_after_parent_dies("plain", 5, tmp_path)
    assert workers & {pid for pid, _ in alive}, "loky's workers no longer outlive a killed parent"


def test_a_process_that_is_not_the_parents_child_starts_no_watcher() -> None:
    exit_with_parent(os.getpid())  # this process is not its own child
    exit_with_parent(os.getppid() + 1_000_000)  # nor anyone else's but its parent's
    assert not [t for t in threading.enumerate() if t.name == "exit-with-parent"]


def test_pools_share_their_workers_across_calls() -> None:
    first = set(process_pool(2)(joblib.delayed(os.getpid)() for _ in range(4)))
    second = set(process_pool(2)(joblib.delayed(os.getpid)() for _ in range(4)))
    assert os.getpid() not in first and first & second


def test_more_workers_than_cores_are_capped_with_one_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # n_jobs 64 for 10 servers on 2 cores started 32 workers and took 5.7 GB.
    monkeypatch.setattr(workers, "available_cores", lambda: 2)
    workers._log_capped.cache_clear()
    with caplog.at_level(logging.INFO, logger=workers.__name__):
        assert process_pool(64).n_jobs == 2
        assert process_pool(30).n_jobs == 2
        assert worker_count(-1) == 2  # all cores
        assert worker_count(1) == 1
    capped = [r.getMessage() for r in caplog.records if "cores available" in r.getMessage()]
    assert capped == [
        "compute.n_jobs asks for more workers than the 2 cores available: using 2 "
        "(workers beyond the cores only take memory)"
    ]
    with pytest.raises(ValueError, match="n_jobs must be -1"):
        worker_count(0)


def test_available_cores_are_the_ones_this_process_may_use() -> None:
    cores = workers.available_cores()
    assert 1 <= cores <= (os.cpu_count() or 1)
    if hasattr(os, "sched_getaffinity"):
        assert cores <= len(os.sched_getaffinity(0))
    assert worker_count(-1) == cores and worker_count(cores + 100) == cores
