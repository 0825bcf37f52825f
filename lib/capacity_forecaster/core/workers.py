"""Worker process pools whose workers end with the process that started them.

Per-series fitting runs in joblib's loky worker processes, started by the stage's kernel.
When a run is killed (a scheduler's timeout, ``kill -9``), the kernel goes, but loky's workers
do not: they were seen alive minutes later, holding ~180 MB each, with no one left to send
them work. ``process_pool`` gives every worker an initializer that starts a daemon thread,
which ends the worker as soon as its parent is gone (the worker is re-parented, so
``os.getppid()`` changes).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import joblib

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
ORPHANED_EXIT_CODE = 70  # EX_SOFTWARE: the worker ended itself, its parent being gone


def process_pool(n_jobs: int, **parallel_kwargs: Any) -> joblib.Parallel:
    """``joblib.Parallel`` on loky worker processes that exit when this process is gone.

    ``parallel_kwargs`` go to ``joblib.Parallel`` (``return_as`` ...). Every pool made here has
    the same initializer, so loky reuses one set of workers across calls, as it does for
    plain ``Parallel(backend="loky")``.
    """
    with joblib.parallel_config(
        backend="loky", initializer=exit_with_parent, initargs=(os.getpid(),)
    ):
        # Parallel takes its backend from the configuration when it is made.
        return joblib.Parallel(n_jobs=n_jobs, **parallel_kwargs)


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
