"""The environment the notebooks run in under nbval and tests.refresh_nbval."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import PARAMS_DIR

NBVAL_RUN_ID = "nbval"


def nbval_params(folder: Path) -> Path:
    """A copy of params/ci.yaml that writes its runs under ``folder``."""
    source = PARAMS_DIR / "ci.yaml"
    text = source.read_text().replace("output_root: ../outputs", f"output_root: {folder}")
    if str(folder) not in text:
        raise RuntimeError(f"{source}: expected 'output_root: ../outputs' to redirect")
    path = folder / "ci.yaml"
    path.write_text(text)
    return path
