"""Run the real run_all.py in a subprocess, as a user or a scheduler would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.conftest import PARAMS_DIR, PROJECT_ROOT

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


def own_data_params(folder: Path, metrics: pd.DataFrame | bytes, servers: pd.DataFrame) -> Path:
    """A user's own files, as exported: ``folder``/metrics.csv (a frame, or raw bytes) and
    servers.csv, and a params.yaml with the ci fleet's settings that reads them and writes its
    runs under ``folder``/out."""
    data = metrics if isinstance(metrics, bytes) else metrics.to_csv(index=False).encode()
    (folder / "metrics.csv").write_bytes(data)
    servers.to_csv(folder / "servers.csv", index=False)
    params = folder / "params.yaml"
    params.write_text(
        (PARAMS_DIR / "ci.yaml").read_text()
        .replace("source: synthetic", "source: file\n  metrics_path: metrics.csv\n  servers_path: servers.csv")
        .replace("output_root: ../outputs", "output_root: out")
    )  # fmt: skip
    return params
