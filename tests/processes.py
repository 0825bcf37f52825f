"""Find the processes a test started, however deep, by a marker in their environment (Linux
``/proc``): environments are inherited by kernels and worker pools, process groups are not."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

MARKER = "CAPACITY_FORECASTER_TEST_MARKER"


def new_marker() -> dict[str, str]:
    """An environment entry to start processes with."""
    return {MARKER: uuid.uuid4().hex}


def marked(marker: dict[str, str]) -> list[tuple[int, str]]:
    """(pid, command line) of live processes carrying ``marker``."""
    needle = "".join(f"{key}={value}" for key, value in marker.items()).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                command = (
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
                found.append((int(entry.name), command.strip()))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def wait_for_none(marker: dict[str, str], seconds: float) -> list[tuple[int, str]]:
    """Wait up to ``seconds`` for every marked process to end; returns those still alive."""
    deadline = time.monotonic() + seconds
    while (alive := marked(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


def wait_for_workers(
    process: subprocess.Popen, partial: Path, marker: dict[str, str], seconds: float = 600
) -> bool:
    """Wait until the stage whose notebook is ``partial`` runs with loky workers of this
    ``marker`` (or ``process`` ends, or ``seconds`` pass); whether the workers started."""
    deadline = time.monotonic() + seconds

    def working() -> bool:
        return partial.exists() and any("loky" in command for _, command in marked(marker))

    while process.poll() is None and time.monotonic() < deadline and not working():
        time.sleep(0.2)
    return working()
