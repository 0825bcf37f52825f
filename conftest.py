"""nbval: the committed notebooks run in order on params/ci.yaml, in this environment.

`make test` runs pytest with ``--nbval-lax``: every notebook under notebooks/ executes top to
bottom and only cells marked ``# NBVAL_CHECK_OUTPUT`` have their outputs compared with the
ones stored in git. The notebooks' parameters cells are empty, so they read
``CAPACITY_FORECASTER_PARAMS`` (documented in the README): here a copy of params/ci.yaml whose
outputs go to a temporary folder, under the run id ``nbval``. Refresh the stored outputs with
``.venv/bin/python -m tests.refresh_nbval`` after a change that is meant to move them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from capacity_forecaster.core.stage import PARAMS_ENV, RUN_ID_ENV
from tests.nbval_env import NBVAL_RUN_ID, nbval_params


def pytest_configure(config: pytest.Config) -> None:
    if not (config.getoption("nbval_lax", False) or config.getoption("nbval", False)):
        return
    folder = Path(tempfile.mkdtemp(prefix="cf-nbval-"))
    config.stash[_FOLDER] = folder
    os.environ[PARAMS_ENV] = str(nbval_params(folder))
    os.environ[RUN_ID_ENV] = NBVAL_RUN_ID


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(_FOLDER, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Notebook cells run real stages: they belong with the end-to-end tests (-m "not e2e").
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.e2e)


_FOLDER = pytest.StashKey[Path]()
