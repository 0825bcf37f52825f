"""The shareable report notebook: results kept, log records, warnings and progress bars gone."""

from __future__ import annotations

import nbformat
from nbconvert import HTMLExporter

from capacity_forecaster.runner.report_notebook import WIDGET_VIEW, shareable


def _executed() -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("run()")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text="12:00:01 INFO 04_train: fitted\n"),
        nbformat.v4.new_output("stream", name="stderr", text="TqdmWarning: IProgress not found\n"),
        nbformat.v4.new_output(
            "display_data", data={WIDGET_VIEW: {"model_id": "x"}, "text/plain": "HBox(...)"}
        ),
        nbformat.v4.new_output("stream", name="stdout", text="3 clusters, silhouette 0.41\n"),
        nbformat.v4.new_output("execute_result", data={"text/plain": "champion MASE 0.68"}),
    ]
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Train"), cell])


def test_the_report_keeps_results_and_drops_logs_warnings_and_bars() -> None:
    notebook = _executed()
    body, _ = HTMLExporter(exclude_input=True).from_notebook_node(shareable(notebook))
    assert "silhouette 0.41" in body and "champion MASE 0.68" in body
    for chatter in ("INFO 04_train", "TqdmWarning", "HBox(...)", "output_stderr"):
        assert chatter not in body
    # The full notebook is untouched: it keeps the log for whoever debugs the run.
    assert len(notebook.cells[1].outputs) == 5
