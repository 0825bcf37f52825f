"""Refresh the outputs nbval compares: run the notebooks in order on params/ci.yaml and store
the outputs of the '# NBVAL_CHECK_OUTPUT' cells (and nothing else) in the committed notebooks.

    .venv/bin/python -m tests.refresh_nbval

Run it after a change that is meant to move those figures, then review the notebook diffs.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from capacity_forecaster.core.stage import PARAMS_ENV, RUN_ID_ENV
from capacity_forecaster.runner.pipeline import NOTEBOOKS_DIR, discover_stages
from tests.nbval_env import NBVAL_RUN_ID, nbval_params

CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
logger = logging.getLogger("refresh_nbval")


# nbval ignores the stored outputs of a cell without an execution count ("unrun"), so check
# cells carry this fixed count; every other cell carries none.
CHECK_EXECUTION_COUNT = 1


def checked_outputs(executed: dict) -> dict[str, list[dict]]:
    """Outputs of the check cells by cell id, with the fixed execution count."""
    outputs = {}
    for cell in executed["cells"]:
        if cell["cell_type"] == "code" and "".join(cell["source"]).startswith(CHECK_MARK):
            kept = []
            for output in cell["outputs"]:
                output = dict(output)
                if "execution_count" in output:
                    output["execution_count"] = CHECK_EXECUTION_COUNT
                kept.append(output)
            outputs[cell["id"]] = kept
    return outputs


def store(notebook: Path, outputs: dict[str, list[dict]]) -> None:
    committed = json.loads(notebook.read_text())
    for cell in committed["cells"]:
        if cell["cell_type"] == "code":
            checked = cell["id"] in outputs
            cell["execution_count"] = CHECK_EXECUTION_COUNT if checked else None
            cell["outputs"] = outputs.get(cell["id"], [])
    notebook.write_text(json.dumps(committed, indent=1, ensure_ascii=False) + "\n")


def main() -> int:
    import papermill

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    folder = Path(tempfile.mkdtemp(prefix="cf-nbval-refresh-"))
    try:
        os.environ[PARAMS_ENV] = str(nbval_params(folder))
        os.environ[RUN_ID_ENV] = NBVAL_RUN_ID
        for stage in discover_stages(NOTEBOOKS_DIR):
            executed_path = folder / stage.path.name
            papermill.execute_notebook(
                str(stage.path), str(executed_path), cwd=str(NOTEBOOKS_DIR), progress_bar=False
            )
            outputs = checked_outputs(json.loads(executed_path.read_text()))
            store(stage.path, outputs)
            logger.info("%s: stored the outputs of %d check cell(s)", stage.name, len(outputs))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
