"""One invocation at a time per run: run.lock in the run folder.

The lock is an exclusive ``flock`` on ``<run root>/run.lock``, so the operating system releases
it whenever the holder ends, killed or not; the file names the holder (pid, host, start time)
for the message a second invocation gets. A lock file left by a run that ended without
removing it is taken over with a warning when it names this host; one naming another host
is refused, since that run cannot be checked from here (a network file system may not share
locks between hosts), with the file to delete once that run is known to be over.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from capacity_forecaster.core.errors import CapacityForecasterError

logger = logging.getLogger(__name__)

LOCK_KEY = "run.lock"


class RunLockedError(CapacityForecasterError):
    """Another invocation holds the run's lock (the message names it)."""


def _holder_text(holder: dict[str, Any]) -> str:
    return (
        f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} "
        f"since {holder.get('started_at', '?')}"
    )


def _read_holder(fd: int) -> dict[str, Any]:
    """What the lock file says about its holder ({} if empty or unreadable)."""
    try:
        data = os.pread(fd, 4096, 0)
        holder = json.loads(data) if data.strip() else {}
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _open_locked(path: Path, run_id: str) -> int:
    """A descriptor of ``path`` holding its exclusive flock; raises RunLockedError if held."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            held_by = f" ({_holder_text(holder)})" if holder else ""
            raise RunLockedError(
                f"run {run_id} is already running{held_by}: wait for it to finish, "
                "or use another --run-id"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass
        # The holder released and removed the file between our open and flock: lock anew.
        os.close(fd)


def _take_over(fd: int, path: Path, run_id: str) -> None:
    """Check a holder the file still names (its run ended without removing it)."""
    holder = _read_holder(fd)
    if not holder:
        return
    if holder.get("host") != socket.gethostname():
        raise RunLockedError(
            f"run {run_id} is locked by {_holder_text(holder)}, which cannot be checked from "
            f"this host: once that run is over, delete {path}"
        )
    logger.warning(
        "run %s: taking over the lock left by %s (that run ended without releasing it)",
        run_id,
        _holder_text(holder),
    )


@contextmanager
def run_lock(run_root: Path, run_id: str) -> Iterator[dict[str, Any]]:
    """Hold the run's lock for the block; yields what the lock file says about this holder."""
    run_root.mkdir(parents=True, exist_ok=True)
    path = run_root / LOCK_KEY
    fd = _open_locked(path, run_id)
    try:
        _take_over(fd, path, run_id)
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode("utf-8"), 0)
        try:
            yield holder
        finally:
            # Removed while still locked: an invocation that opened the old file finds it
            # gone once it gets the lock, and locks a new one (_open_locked).
            path.unlink(missing_ok=True)
    finally:
        os.close(fd)
