"""Run the real run_all.py in a subprocess, as a user or a scheduler would."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import PROJECT_ROOT

RUN_TIMEOUT = 1800  # seconds; a hung kernel fails the test instead of CI's whole budget


def run_all(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python run_all.py ARGS`` from tests/ (anywhere but the project root: paths must not
    depend on the working directory), with ``env`` added to this process's environment."""
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "run_all.py"), *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env={**os.environ, **(env or {})},
        cwd=str(PROJECT_ROOT / "tests"),
    )
