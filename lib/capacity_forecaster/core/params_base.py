"""The base of every params section, shared by the schema and the options it embeds."""

from __future__ import annotations

import reprlib
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

ECHO_LIMIT = 40  # characters of a given value an error message repeats

# Bounded at every level, so even a deeply nested or huge value is never rendered whole.
_ECHO = reprlib.Repr()
_ECHO.maxlevel = 2
_ECHO.maxstring = _ECHO.maxother = _ECHO.maxlong = ECHO_LIMIT
_ECHO.maxlist = _ECHO.maxtuple = _ECHO.maxdict = _ECHO.maxset = 4


def shorten(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, the last an ellipsis when it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_repr(value: object, limit: int = ECHO_LIMIT) -> str:
    """``repr(value)`` cut to ``limit`` characters, built without ever making the whole repr."""
    try:
        return shorten(_ECHO.repr(value), limit)
    except ValueError:  # an int past Python's 4300-digit limit for str(int)
        return f"<{type(value).__name__}>"


class ParamsSection(BaseModel):
    """A params section: unknown keys are errors, values cannot change, and true/false is
    never taken for a number."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # pydantic reads true as 1 and false as 0 for int and float fields, so `n_jobs: true`
    # would run one worker. One check here covers every number field of every section.
    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field_name = info.field_name
        if field_name is not None and _bool_where_number(
            cls.model_fields[field_name].annotation, value
        ):
            raise ValueError("expected a number, not true or false")
        return value


def _bool_where_number(annotation: Any, value: Any) -> bool:
    """Whether ``value`` holds a bool where ``annotation`` asks for an int or a float,
    itself or inside a list, tuple or mapping (nested sections check their own fields)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _bool_where_number(args[0], value)
    if annotation in (int, float):
        return isinstance(value, bool)
    if origin in (Union, types.UnionType):
        # A union that takes a bool itself has a use for it.
        return bool not in args and any(_bool_where_number(arg, value) for arg in args)
    if origin in (list, tuple, set, frozenset) and args and isinstance(value, list | tuple):
        # tuple[int, ...] and list[int] name one type for all items; tuple[int, str] one per place.
        fixed = origin is tuple and args[-1] is not Ellipsis
        item_types = args if fixed else (args[0],) * len(value)
        return any(map(_bool_where_number, item_types, value))
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        return any(
            _bool_where_number(args[0], key) or _bool_where_number(args[1], item)
            for key, item in value.items()
        )
    return False


def refuse_retired_key(data: Any, key: str, what_to_do: str) -> Any:
    """``data`` unchanged, or a ValueError ``"<key> <what_to_do>"`` when a section's raw
    mapping still sets a key that no longer exists (so an old params file fails in one line
    saying where the setting went, not as an unknown key)."""
    if isinstance(data, dict) and key in data:
        raise ValueError(f"{key} {what_to_do}")
    return data
