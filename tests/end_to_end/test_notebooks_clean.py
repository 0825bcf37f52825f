"""The committed notebooks: no execution counts, outputs only where nbval checks them, a
parameters cell first, and nothing of a particular machine or run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.refresh_nbval import CHECK_EXECUTION_COUNT

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


def _code_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def test_all_nine_stages_are_there() -> None:
    assert [p.stem[:2] for p in NOTEBOOKS] == [f"{n:02d}" for n in range(1, 10)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_clean(path: Path) -> None:
    notebook = json.loads(path.read_text())
    cells = _code_cells(path)
    assert "parameters" in cells[0]["metadata"].get("tags", []), "first code cell lost its tag"
    assert cells[0]["outputs"] == []
    checked = [c for c in cells if "".join(c["source"]).startswith(CHECK_MARK)]
    assert checked, "no '# NBVAL_CHECK_OUTPUT' cell: nbval would check nothing here"
    for cell in cells:
        if cell in checked:
            # nbval skips a cell without an execution count: check cells carry a fixed one.
            assert cell["execution_count"] == CHECK_EXECUTION_COUNT, cell["id"]
            assert cell["outputs"], f"{cell['id']}: check cell without a stored output"
            for output in cell["outputs"]:
                assert output.get("execution_count") in (None, CHECK_EXECUTION_COUNT), cell["id"]
                assert output["output_type"] in ("execute_result", "stream"), cell["id"]
                assert "image/png" not in output.get("data", {}), cell["id"]
        else:
            assert cell["execution_count"] is None, f"{cell['id']}: execution count committed"
            assert cell["outputs"] == [], f"{cell['id']}: unchecked output committed"
    text = path.read_text()
    for trace in ("/work/", "/tmp/", "/home/", "papermill", "nbval-"):
        assert trace not in text, trace
    assert set(notebook["metadata"]) <= {"kernelspec", "language_info"}
    assert not [c["id"] for c in notebook["cells"] if c["metadata"].keys() - {"tags"}]
