"""Worker process pools whose workers end with the process that started them.

Per-series fitting runs in joblib's loky worker processes, started by the stage's kernel.
When a run is killed (a scheduler's timeout, ``kill -9``), the kernel goes, but loky's workers
do not: they were seen alive minutes later, holding ~180 MB each, with no one left to send
them work. ``process_pool`` gives every worker an initializer that starts a daemon thread,
which ends the worker as soon as its parent is gone (the worker is re-parented, so
``os.getppid()`` changes).

A pool never has more workers than this process may use cores: ``compute.n_jobs: 64`` on a
2-core machine started 32 workers for 10 servers and took 5.7 GB, for no speed.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from typing import Any

import joblib

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
ORPHANED_EXIT_CODE = 70  # EX_SOFTWARE: the worker ended itself, its parent being gone


def available_cores() -> int:
    """Cores this process may use: ``os.cpu_count()`` narrowed by the CPU affinity, a
    container's CPU quota and ``LOKY_MAX_CPU_COUNT`` (joblib's count, the one ``-1`` means)."""
    return int(joblib.cpu_count())


def worker_count(n_jobs: int) -> int:
    """Workers for ``n_jobs``: -1 means all available cores (-2 all but one, as in joblib),
    and a larger number than the available cores is capped at them."""
    if n_jobs == 0:
        raise ValueError("n_jobs must be -1 (all cores) or a positive number of workers")
    cores = available_cores()
    if n_jobs < 0:
        return max(1, cores + 1 + n_jobs)
    if n_jobs > cores:
        _log_capped(cores)
        return cores
    return n_jobs


@functools.cache
def _log_capped(cores: int) -> None:
    # Once per process: a stage makes a pool per model and backtest origin.
    logger.info(
        "compute.n_jobs asks for more workers than the %d cores available: using %d "
        "(workers beyond the cores only take memory)",
        cores,
        cores,
    )


def process_pool(n_jobs: int, **parallel_kwargs: Any) -> joblib.Parallel:
    """``joblib.Parallel`` on loky worker processes that exit when this process is gone.

    ``n_jobs`` is capped at the available cores (``worker_count``). ``parallel_kwargs`` go
    to ``joblib.Parallel`` (``return_as`` ...). Every pool made here has
    the same initializer, so loky reuses one set of workers across calls, as it does for
    plain ``Parallel(backend="loky")``.
    """
    with joblib.parallel_config(
        backend="loky", initializer=exit_with_parent, initargs=(os.getpid(),)
    ):
        # Parallel takes its backend from the configuration when it is made.
        return joblib.Parallel(n_jobs=worker_count(n_jobs), **parallel_kwargs)


def exit_with_parent(parent_pid: int) -> None:
    """In a child of ``parent_pid``: end this process once ``parent_pid`` is no longer its
    parent. Does nothing anywhere else (a process that is not its child, such as another
    executor's worker, is not ours to end)."""
    if os.getppid() != parent_pid:
        return
    logger.debug("worker %d: will exit with its parent %d", os.getpid(), parent_pid)
    threading.Thread(
        target=_watch, args=(parent_pid,), name="exit-with-parent", daemon=True
    ).start()


def _watch(parent_pid: int) -> None:
    while True:
        time.sleep(POLL_SECONDS)
        if os.getppid() != parent_pid:
            # Nobody is left to read a result; os._exit skips the interpreter's cleanup, which
            # could block on the dead parent's queues.
            os._exit(ORPHANED_EXIT_CODE)
