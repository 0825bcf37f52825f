"""Stand-in notebooks for the runner's own tests: named like the pipeline's first stages (so
the catalog's reads and writes apply), executed by the real papermill in a real kernel, in
seconds, each running the code a test gives it."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
import yaml

STANDIN_STAGES = ("01_generate", "02_load", "03_etl")


def standin_notebooks(folder: Path, code: dict[str, str] | None = None) -> Path:
    """``folder``/01_generate.ipynb ... 03_etl.ipynb: a parameters cell, then ``code[name]``
    (a cell that does nothing by default). ``run_root`` is the run's folder in that code."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in STANDIN_STAGES:
        parameters = nbformat.v4.new_code_cell('params_path = ""\nrun_id = ""')
        parameters.metadata["tags"] = ["parameters"]
        body = "from pathlib import Path\nrun_root = Path(params_path).parent\n"
        notebook = nbformat.v4.new_notebook(
            cells=[parameters, nbformat.v4.new_code_cell(body + (code or {}).get(name, ""))],
            metadata={
                "kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}
            },
        )
        nbformat.write(notebook, folder / f"{name}.ipynb")
    return folder


def file_data_params(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A params file for the user's own files (stage 01 has nothing to do), runs under
    ``folder``/out. run_pipeline puts the venv first on PATH: restored after the test."""
    monkeypatch.setenv("PATH", os.environ["PATH"])
    path = folder / "params.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "run": {"name": "t", "output_root": "out"},
                "data": {"source": "file", "metrics_path": "m.csv", "servers_path": "s.csv"},
            }
        )
    )
    return path
