"""One-line problem messages for input data: the file, the column, the count, a few examples.

Every problem in a user's data becomes one :class:`DataValidationError` line (``fail``) or one
warning (``warn``), never a traceback from pandas; example values are shown short and printable.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from capacity_forecaster.core.errors import DataValidationError

logger = logging.getLogger(__name__)

MAX_EXAMPLES = 3
MAX_SHOWN_CHARS = 40

# Characters that change how a line prints rather than what it says: C0 and C1 controls (NUL,
# tab, newline, escape), the line and paragraph separators, and the bidirectional marks,
# embeddings, overrides and isolates (U+061C, U+200E-U+200F, U+202A-U+202E, U+2066-U+2069),
# which can make "srv-1<U+202E>gol" print as "srv-1log".
UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def one_line(text: str) -> str:
    """``text`` with line breaks and tabs turned into spaces, other ``UNPRINTABLE``
    characters shown as escapes (``\\u202e``), stripped."""
    spaced = re.sub(r"[\r\n\t\v\f]+", " ", str(text))
    return UNPRINTABLE.sub(lambda found: f"\\u{ord(found.group()):04x}", spaced).strip()


def unprintable(text: str) -> str | None:
    """The code point (``U+202E``) of the first ``UNPRINTABLE`` character in ``text``, or None."""
    found = UNPRINTABLE.search(text)
    return f"U+{ord(found.group()):04X}" if found else None


def show(value: Any) -> str:
    """A short, printable form of one example value (strings repr'd and truncated)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return "<empty>"
    if isinstance(value, float) and np.isnan(value):
        return "<empty>"
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d") if value == value.normalize() else value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, str):
        short = value if len(value) <= MAX_SHOWN_CHARS else value[: MAX_SHOWN_CHARS - 1] + "…"
        return repr(short)
    return show(str(value))


def examples(values: Iterable[Any]) -> str:
    """``(e.g. 'a', 'b', 'c')`` from the first distinct values, or '' when there are none."""
    shown: list[str] = []
    for value in values:
        text = show(value)
        if text not in shown:
            shown.append(text)
        if len(shown) == MAX_EXAMPLES:
            break
    return f" (e.g. {', '.join(shown)})" if shown else ""


def col(name: str) -> str:
    """``column 'name'``."""
    return f"column {show(str(name))}"


def names(items: Sequence[str], limit: int = 10) -> str:
    """Up to ``limit`` names, then how many more."""
    shown = ", ".join(show(str(n)) for n in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def for_servers(ids: pd.Series) -> str:
    """`` (servers 'a', 'b', 'c')`` naming where a problem is, by server_id."""
    return examples(ids.iloc[:50]).replace("(e.g.", "(servers", 1)


def repeated_name(columns: Sequence[str]) -> str | None:
    """What is wrong when a column name appears more than once (names compared stripped, as
    validation does), with the 1-based positions of the first such name; None when none does."""
    positions: dict[str, list[int]] = {}
    for position, name in enumerate(columns, start=1):
        positions.setdefault(str(name).strip(), []).append(position)
    repeated = [name for name, at in positions.items() if len(at) > 1]
    if not repeated:
        return None
    first = positions[repeated[0]]
    at = f"{', '.join(str(p) for p in first[:-1])} and {first[-1]}"
    others = f"; {plural(len(repeated) - 1, 'more name')} repeated: {names(repeated[1:])}"
    return (
        f"duplicate column name {show(repeated[0])} (columns {at}): keep one, or rename the "
        f"other{'s' if len(first) > 2 else ''}{others if len(repeated) > 1 else ''}"
    )


def plural(count: int, word: str) -> str:
    """``1 value``, ``2 values``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def fail(source: str, message: str) -> DataValidationError:
    """The error to raise for a problem in ``source``, on one line."""
    return DataValidationError(one_line(f"{source}: {message}"))


def warn(warnings: list[str], source: str, message: str) -> None:
    """Log a softer problem in ``source`` and append it to ``warnings``, on one line."""
    text = one_line(f"{source}: {message}")
    logger.warning(text)
    warnings.append(text)
