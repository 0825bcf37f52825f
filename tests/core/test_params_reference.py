"""docs/params.md is what the schema renders, and names every key a params file can hold."""

from __future__ import annotations

from collections.abc import Iterator
from typing import get_args, get_origin

from pydantic import BaseModel

from capacity_forecaster.core.params import Params
from capacity_forecaster.core.params_reference import REGENERATE, render_params_reference
from tests.conftest import PROJECT_ROOT

REFERENCE = PROJECT_ROOT / "docs" / "params.md"


def _leaves(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Every value-holding key of the schema, walked here apart from the generator's own walk."""
    for name, field in model.model_fields.items():
        candidates = (field.annotation, *get_args(field.annotation))
        sections = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if sections:
            # A mapping of named sections (calendar.windows) is keyed by the user's names.
            named = get_origin(field.annotation) is dict
            yield from _leaves(sections[0], f"{prefix}{name}.{'<name>.' if named else ''}")
        else:
            yield f"{prefix}{name}"


def test_docs_params_md_is_what_the_schema_renders() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == render_params_reference(), (
        f"docs/params.md is out of date with core/params.py; regenerate it: {REGENERATE}"
    )


def test_every_leaf_key_of_params_has_a_row() -> None:
    rendered = render_params_reference()
    rows = {line.split("|")[1].strip() for line in rendered.splitlines() if line.startswith("| `")}
    leaves = list(_leaves(Params))
    # The walk went into nested and optional sections.
    assert {"cluster.right_sizing.percentile", "storage.s3.bucket"} <= set(leaves)
    missing = [key for key in leaves if f"`{key}`" not in rows]
    assert not missing, f"keys missing from the params reference: {missing}"


def test_a_row_shows_type_default_and_range() -> None:
    row = next(
        line
        for line in render_params_reference().splitlines()
        if line.startswith("| `forecast.horizon_days` |")
    )
    assert row.split(" | ")[1:4] == ["int", "`120`", "7 ≤ x ≤ 365"]
