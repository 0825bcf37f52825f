"""The notebooks read and write exactly what the catalog says, and name products only through it.

This keeps ``run_all.py --list`` (printed from the catalog) true to what the notebooks do.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from capacity_forecaster.core import catalog
from capacity_forecaster.runner.pipeline import Stage, discover_stages

_CALL = re.compile(r"stage\.(read|write)\(\s*catalog\.([A-Z_]+)")
# Stage 02 reads its inputs (the raw products, or the user's own files) through one helper.
# Stage 02 reads the raw inputs through ingest.sources.read_fleet (catalog.read_inputs).
_RAW_INPUTS = re.compile(r"\bstage\.read_inputs\(|\bread_fleet\(")
STAGES = discover_stages()


def _code(stage: Stage) -> str:
    notebook = nbformat.read(stage.path, as_version=4)
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")


def _names(products: list[catalog.Product]) -> set[str]:
    by_key = {
        product.key: name
        for name, product in vars(catalog).items()
        if isinstance(product, catalog.Product)
    }
    return {by_key[product.key] for product in products}


@pytest.mark.parametrize("stage", STAGES, ids=[s.name for s in STAGES])
def test_a_notebook_reads_and_writes_what_the_catalog_declares(stage: Stage) -> None:
    code = _code(stage)
    calls = _CALL.findall(code)
    reads = {name for verb, name in calls if verb == "read"}
    if _RAW_INPUTS.search(code):
        reads |= {"RAW_METRICS", "RAW_SERVERS"}
    writes = {name for verb, name in calls if verb == "write"}
    declared_reads, declared_writes = catalog.stage_products(stage.name)
    assert reads == _names(declared_reads)
    assert writes == _names(declared_writes)


@pytest.mark.parametrize("stage", STAGES, ids=[s.name for s in STAGES])
def test_a_notebook_names_no_product_key(stage: Stage) -> None:
    code = _code(stage)
    for product in catalog.PRODUCTS:
        literal = product.key.split("{", 1)[0]
        assert f'"{literal}' not in code and f"'{literal}" not in code, (
            f"{stage.name} spells out {product.key}: use catalog.{product.key} through stage.read/write"
        )
