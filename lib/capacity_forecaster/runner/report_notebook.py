"""The shareable copy of an executed notebook: outputs a reader wants, not the run's chatter.

A stage's notebook shows its log lines and progress bars while it runs (a person exploring in
JupyterLab wants them), and the full HTML keeps them. The report HTML is what gets shared: log
records (which Jupyter styles as errors, red, because they go to stderr), tqdm's bars and
warnings, and widget placeholders do not belong in it.
"""

from __future__ import annotations

import copy
from typing import Any

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"  # a tqdm bar's output, for one


def shareable(notebook: Any) -> Any:
    """A copy of ``notebook`` (nbformat) without stderr streams and widget outputs; a widget
    output's plain-text stand-in ("HBox(...)") goes with it."""
    clean = copy.deepcopy(notebook)
    for cell in clean.cells:
        if cell.get("cell_type") != "code":
            continue
        cell["outputs"] = [output for output in cell.get("outputs", []) if _kept(output)]
    return clean


def _kept(output: Any) -> bool:
    if output.get("output_type") == "stream":
        return output.get("name") != "stderr"
    return WIDGET_VIEW not in output.get("data", {})
