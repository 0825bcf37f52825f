"""The params reference (docs/params.md), rendered from the pydantic schema in ``core.params``.

Every key of a params file, by its dotted path, with its type, default, allowed range and
description, so the reference cannot drift from what a run validates. Regenerate it with::

    .venv/bin/python -m capacity_forecaster.core.params_reference > docs/params.md

``tests/core/test_params_reference.py`` fails when docs/params.md is not what this renders.
"""

from __future__ import annotations

import datetime as dt
import enum
import types
from collections.abc import Iterator
from pathlib import PurePath
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from capacity_forecaster.core.params import Params

REGENERATE = ".venv/bin/python -m capacity_forecaster.core.params_reference > docs/params.md"

_INTRO = f"""\
# Params reference

<!-- Generated from lib/capacity_forecaster/core/params.py; do not edit by hand. Regenerate:
     {REGENERATE} -->

One YAML file describes a run. It is validated once, before any notebook starts: an unknown key
or an out-of-range value stops the run with exit code 2 and a message naming the dotted key
(`forecast.horizon_dayz: unknown key …; did you mean 'horizon_days'?`). A key left out takes
the default below. Relative paths (`run.output_root`, `data.metrics_path`, `data.servers_path`)
resolve against the params file's own directory, never the working directory.
`run_all.py --set dotted.key=value` overrides one key for one run (the value is read as YAML).

The files in `params/`: `local.yaml`, the default run, commented key by key; `aws.yaml`, the
scheduled run mirrored to S3; `ci.yaml`, the tiny fleet the tests use. How the keys are used:
[methods](methods.md).

Rules that span several keys are checked as well (`data.source: file` needs both data paths,
`storage.backend: s3` needs the `storage.s3` section, and so on); their messages name the keys.
"""

_LOWER = (("ge", "≤"), ("gt", "<"))  # written before the x: 90 ≤ x
_UPPER = (("le", "≤"), ("lt", "<"))  # written after it: x ≤ 180


def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The params section a field holds (also through ``X | None``), else None."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _walk(
    model: type[BaseModel], prefix: str = ""
) -> Iterator[tuple[str, FieldInfo, type[BaseModel] | None]]:
    """Every field, depth first in schema order: (dotted key, field, its section or None)."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        section = _submodel(field.annotation)
        yield key, field, section
        if section is not None:
            # A mapping of named sections (calendar.windows): its keys are the user's names.
            named = get_origin(field.annotation) is dict
            yield from _walk(section, f"{key}.<name>." if named else f"{key}.")


def leaf_keys() -> list[str]:
    """The dotted key of every field that holds a value rather than a section."""
    return [key for key, _, section in _walk(Params) if section is None]


def _type_name(annotation: Any) -> str:
    """A reader's name for a field's type: ``int``, ``one of `a`, `b` ``, ``list of int``."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:  # a constrained alias (e.g. a tag key): name the type it constrains
        return _type_name(args[0])
    if origin is Literal:
        return "one of " + ", ".join(f"`{_value(a)}`" for a in args)
    if origin is dict and _submodel(args[1]) is not None:
        return "mapping of name to section"
    if _submodel(annotation) is not None:
        return "section" + (", optional" if type(None) in args else "")
    if origin in (Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        optional = " or null" if type(None) in args else ""
        return " or ".join(names) + optional
    if origin in (tuple, list):
        return "list of " + _type_name(args[0])
    if origin is dict:
        return f"mapping of {_type_name(args[0])} to {_type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return "path"
    if annotation is dt.date:
        return "date"
    return getattr(annotation, "__name__", str(annotation))


def _value(value: Any) -> str:
    """A value as it would be written in the YAML file."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return _value(value.value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, str):
        return value or '""'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_value(k)}: {_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _default(field: FieldInfo, section: type[BaseModel] | None) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True, validated_data={})
    if section is not None:
        return "none" if value is None else "see below"
    return f"`{_value(value)}`"


def _allowed(field: FieldInfo) -> str:
    """The range and pattern the schema enforces on a field, from its metadata: ``90 ≤ x ≤ 180``."""
    lower = upper = ""
    patterns: list[str] = []
    for meta in field.metadata:
        for attribute, sign in _LOWER:
            if getattr(meta, attribute, None) is not None:
                lower = f"{_value(getattr(meta, attribute))} {sign} "
        for attribute, sign in _UPPER:
            if getattr(meta, attribute, None) is not None:
                upper = f" {sign} {_value(getattr(meta, attribute))}"
        if getattr(meta, "pattern", None) is not None:
            patterns.append(f"matches `{meta.pattern}`")
    bounds = f"{lower}x{upper}" if lower or upper else ""
    return ", ".join(p for p in (bounds, *patterns) if p)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or "—"


def _table(model: type[BaseModel], prefix: str) -> list[str]:
    lines = [
        "| key | type | default | allowed | description |",
        "|---|---|---|---|---|",
    ]
    for name, field in model.model_fields.items():
        section = _submodel(field.annotation)
        cells = (
            f"`{prefix}{name}`",
            _type_name(field.annotation),
            _default(field, section),
            _allowed(field),
            field.description or "",
        )
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def render_params_reference() -> str:
    """The params reference as Markdown: one table per section, every key by its dotted path."""
    lines = [_INTRO]
    # The top level holds only sections; each section, nested ones too, gets its own table.
    sections = [
        (f"{key}.<name>." if get_origin(field.annotation) is dict else f"{key}.", section)
        for key, field, section in _walk(Params)
        if section is not None
    ]
    for prefix, model in sections:
        lines.append(f"## `{prefix[:-1]}`\n")
        doc = (model.__doc__ or "").strip()
        if doc:
            lines.append(doc + "\n")
        lines.extend(_table(model, prefix))
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    """Print the reference: ``python -m capacity_forecaster.core.params_reference``."""
    print(render_params_reference(), end="")


if __name__ == "__main__":
    main()
