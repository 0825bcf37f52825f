"""Worker processes that end with the process that started them.

Per-series fitting runs in joblib's loky worker processes, started by the stage's kernel.
When a run is killed (a scheduler's timeout, ``kill -9``), the kernel goes, but loky's idle
workers do not: they were seen alive minutes later, holding ~180 MB each, with no one left to
send them work. ``watched(task)`` wraps a worker task so that the first call in each worker
starts a daemon thread that ends the worker as soon as its parent is gone (the worker is
re-parented, so ``os.getppid()`` changes). A task run in the calling process itself
(``n_jobs=1``), or anywhere but in a child of it, starts nothing.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, ParamSpec, TypeVar

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
ORPHANED_EXIT_CODE = 70  # EX_SOFTWARE: the worker ended itself, its parent being gone

P = ParamSpec("P")
R = TypeVar("R")

# Per process, the parents being watched: one thread per worker, however many tasks it runs.
# Process-local by nature (each worker has its own copy), so not shared state between runs.
_watched_parents: set[int] = set()
_watch_lock = threading.Lock()


@dataclass(frozen=True)
class _Watched(Generic[P, R]):
    task: Callable[P, R]
    parent_pid: int

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        exit_with_parent(self.parent_pid)
        return self.task(*args, **kwargs)


def watched(task: Callable[P, R]) -> Callable[P, R]:
    """``task``, made to end its worker process when the calling process goes away."""
    return _Watched(task, os.getpid())


def exit_with_parent(parent_pid: int) -> None:
    """In a child of ``parent_pid``: end this process once ``parent_pid`` is no longer its
    parent. Does nothing anywhere else (``parent_pid`` itself, or a process that is not its
    child, such as another executor's worker, which is not ours to end) or if already
    watching."""
    if os.getppid() != parent_pid:
        return
    with _watch_lock:
        if parent_pid in _watched_parents:
            return
        _watched_parents.add(parent_pid)
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
