"""What every notebook does first: resolve its parameters, load params, open the run's storage.

Notebooks receive ``params_path`` and ``run_id`` from the runner. Opened by hand in JupyterLab
they fall back to the environment variables below, then to ``params/local.yaml`` of this
checkout and a fixed scratch run id, so a person can run the notebooks top to bottom in order
without the runner and without building any path from the working directory.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capacity_forecaster.core import catalog
from capacity_forecaster.core.params import Params, load_params
from capacity_forecaster.core.storage import RunStorage, open_run_storage

PARAMS_ENV = "CAPACITY_FORECASTER_PARAMS"
RUN_ID_ENV = "CAPACITY_FORECASTER_RUN_ID"
# lib/capacity_forecaster/core/stage.py -> the checkout (for the editable install this project uses).
PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_PARAMS = PROJECT_ROOT / "params" / "local.yaml"

logger = logging.getLogger(__name__)

# The stage's log lines, for the runner to show in the terminal while the notebook runs (its
# cell output reaches nobody until the notebook is saved). A dot-file: never an artifact.
PROGRESS_KEY = "notebooks/.{stage}.progress"


@dataclass(frozen=True)
class StageContext:
    """The validated params, run id and storage a notebook works with."""

    name: str
    params: Params
    run_id: str
    storage: RunStorage
    params_path: Path

    def read(
        self, product: catalog.Product, columns: Sequence[str] | None = None, name: str = ""
    ) -> Any:
        """A product this stage reads, checked against its catalog schema."""
        return catalog.read(self.storage, self.name, product, columns, name)

    def read_inputs(self) -> dict[str, tuple[str, bytes]]:
        """The fleet's inputs: the user's own files, or the raw products of stage 01."""
        return catalog.read_inputs(self.storage, self.name, self.params)

    def write(self, product: catalog.Product, value: Any, name: str = "") -> str:
        """Check a product this stage writes against its catalog schema, then write it."""
        return catalog.write(self.storage, self.name, product, value, name)


def resolve_params_path(params_path: str = "") -> Path:
    """The explicit path, else $CAPACITY_FORECASTER_PARAMS, else params/local.yaml."""
    return Path(params_path or os.environ.get(PARAMS_ENV) or DEFAULT_PARAMS).expanduser().resolve()


def resolve_run_id(run_id: str, params: Params) -> str:
    """The explicit run id, else $CAPACITY_FORECASTER_RUN_ID, else '<run.name>-lab' for exploring."""
    return run_id or os.environ.get(RUN_ID_ENV) or f"{params.run.name}-lab"


def _log_progress_to(path: Path) -> None:
    """Also write the package's log lines to ``path`` (one handler per process: a notebook
    opened again replaces it)."""
    package_logger = logging.getLogger("capacity_forecaster")
    for handler in list(package_logger.handlers):
        if getattr(handler, "_capacity_forecaster_progress", False):
            package_logger.removeHandler(handler)
            handler.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(logging.INFO)
    handler._capacity_forecaster_progress = True  # type: ignore[attr-defined]
    package_logger.addHandler(handler)


def configure_logging(level: int = logging.INFO) -> None:
    """Show this package's log lines (stage, counts, seconds) in the notebook's output."""
    package_logger = logging.getLogger("capacity_forecaster")
    if not any(getattr(h, "_capacity_forecaster", False) for h in package_logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        )
        handler._capacity_forecaster = True  # type: ignore[attr-defined]
        package_logger.addHandler(handler)
    package_logger.setLevel(level)
    package_logger.propagate = False


def open_stage(stage: str, params_path: str = "", run_id: str = "") -> StageContext:
    """Load and validate params, resolve the run id and open its storage for ``stage``."""
    configure_logging()
    path = resolve_params_path(params_path)
    params = load_params(path)
    resolved_run_id = resolve_run_id(run_id, params)
    storage = open_run_storage(params, resolved_run_id)
    _log_progress_to(storage.local.path(PROGRESS_KEY.format(stage=stage)))
    logger.info("%s: params %s, %s", stage, path, storage.describe())
    return StageContext(
        name=stage, params=params, run_id=resolved_run_id, storage=storage, params_path=path
    )
