"""What a running stage is doing, in the terminal, at least every ``PROGRESS_SECONDS``.

A notebook's own output reaches nobody until papermill saves it, so stage 04 used to be two
minutes of silence. Each stage also writes its log lines to a progress file
(``core.stage.PROGRESS_KEY``); while the stage runs, a thread here reads the newest line and
logs it with the seconds so far, and, when the line counts work done ("prophet: 320/600
series fitted"), an estimate of the time left for that step.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)

PROGRESS_SECONDS = 10.0
_COUNT = re.compile(r"^(?P<what>.*?)(?P<done>\d+)/(?P<total>\d+)")


def last_line(path: Path) -> str:
    """The newest non-empty line of ``path`` ("" when there is none yet)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 4096))
            lines = handle.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")


class _Rates:
    """When each counted step was first seen, to estimate its time left."""

    def __init__(self) -> None:
        self.first: dict[str, tuple[float, int]] = {}  # per step: when and at what count seen
        self.last: dict[str, int] = {}  # per step: the count last seen

    def time_left(self, line: str, now: float) -> float | None:
        """Seconds left for the step ``line`` counts, from its pace since first seen."""
        found = _COUNT.match(line)
        if found is None:
            return None
        what, done, total = found["what"], int(found["done"]), int(found["total"])
        step = f"{what}/{total}"  # the same words counting to another total: another step
        seen_at, seen_done = self.first.setdefault(step, (now, done))
        last, self.last[step] = self.last.get(step, done), done
        if done < last:  # the step began again (the next backtest origin, say)
            self.first[step] = (now, done)
            return None
        if done == seen_done or done > total:
            return None
        return (now - seen_at) / (done - seen_done) * (total - done)


def describe(stage: str, seconds: float, line: str, left: float | None) -> str:
    """``04_train: 40 s, prophet: 320/600 series fitted (about 35 s left for this step)``."""
    text = f"{stage}: {seconds:.0f} s"
    if line:
        text += f", {line}"
    if left is not None:
        text += f" (about {left:.0f} s left for this step)"
    return text


@contextmanager
def _to_this_terminal() -> Iterator[None]:
    """Send this module's records to the stderr the run started with: while a stage runs,
    the runner's own stderr (file descriptor 2) goes to the kernel's log, which the kernel
    inherits. Formatted as the root logger's first handler formats them."""
    stream = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1, encoding="utf-8")
    handler = logging.StreamHandler(stream)
    root_handlers = logging.getLogger().handlers
    if root_handlers and root_handlers[0].formatter is not None:
        handler.setFormatter(root_handlers[0].formatter)
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield
    finally:
        logger.propagate = propagate
        logger.removeHandler(handler)
        stream.close()


@contextmanager
def reporting(stage: str, path: Path, every: float = PROGRESS_SECONDS) -> Iterator[None]:
    """While the block runs, log the stage's newest progress line every ``every`` seconds
    (enter it before stderr is redirected, so the lines reach the terminal)."""
    path.unlink(missing_ok=True)
    stop = threading.Event()
    started = time.monotonic()
    rates = _Rates()

    def report() -> None:
        while not stop.wait(every):
            now = time.monotonic()
            line = last_line(path)
            logger.info("%s", describe(stage, now - started, line, rates.time_left(line, now)))

    with _to_this_terminal():
        thread = threading.Thread(target=report, name=f"progress-{stage}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            path.unlink(missing_ok=True)
