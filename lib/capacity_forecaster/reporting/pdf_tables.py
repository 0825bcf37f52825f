"""The PDF report's tables: a navy header repeated on every page, zebra rows, wrapping cells.

Every cell is a Paragraph of text formatted by its ``text.COLUMN_KINDS`` kind and escaped
(``text.pdf_safe``), so data shows literally, in a font that has its characters
(``pdf_styles.paragraph``); numbers are right-aligned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.platypus import Table, TableStyle

from capacity_forecaster.reporting.pdf_styles import (
    LEVEL_FILLS,
    NAVY,
    RULE,
    TABLE_FONT,
    ZEBRA,
    PdfStyles,
    paragraph,
)
from capacity_forecaster.reporting.text import COLUMN_KINDS, MISSING, format_value, pdf_safe

__all__ = ["Column", "cell_text", "records_frame", "report_table"]

_LEFT_ALIGNED_KINDS = ("text", "date", "bool")
_TABLE_STYLE = (
    TABLE_FONT,
    ("BACKGROUND", (0, 0), (-1, 0), NAVY),
    ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, ZEBRA]),
    ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
    ("TOPPADDING", (0, 0), (-1, -1), 2.5),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
    ("LEFTPADDING", (0, 0), (-1, -1), 3),
    ("RIGHTPADDING", (0, 0), (-1, -1), 3),
)


@dataclass(frozen=True)
class Column:
    """One table column: the frame column, its header label, its width in mm and its kind
    (``text.COLUMN_KINDS`` of the source column unless given)."""

    source: str
    label: str
    width_mm: float
    kind: str | None = None


def cell_text(value: Any, kind: str) -> str:
    """``value`` formatted as ``kind`` and escaped, ready to go inside Paragraph markup."""
    return pdf_safe(format_value(value, kind, MISSING), MISSING)


def records_frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """Rows of summary.json (a list of dicts) as a frame with exactly ``columns``."""
    return pd.DataFrame([dict(r) for r in rows], columns=list(columns))


def _level_tints(frame: pd.DataFrame, position: int, level_column: str) -> list[tuple]:
    """TableStyle commands tinting the ``level_column`` cells (at ``position``) by level."""
    return [
        ("BACKGROUND", (position, row), (position, row), LEVEL_FILLS[level])
        for row, level in enumerate(frame[level_column].astype(str), start=1)
        if level in LEVEL_FILLS
    ]


def report_table(
    frame: pd.DataFrame,
    columns: Sequence[Column],
    styles: PdfStyles,
    *,
    level_column: str | None = None,
) -> Table:
    """A report table of ``columns`` of ``frame``; ``level_column`` cells are tinted by risk
    level."""
    missing = [c.source for c in columns if c.source not in frame.columns]
    if missing:
        raise ValueError(f"report table lacks column(s) {missing}")
    kinds = [c.kind or COLUMN_KINDS.get(c.source, "text") for c in columns]
    numeric = [kind not in _LEFT_ALIGNED_KINDS for kind in kinds]
    header = [
        paragraph(pdf_safe(c.label), styles.header_number if right else styles.header)
        for c, right in zip(columns, numeric, strict=True)
    ]
    body = [
        [
            paragraph(cell_text(value, kind), styles.number if right else styles.cell)
            for value, kind, right in zip(row, kinds, numeric, strict=True)
        ]
        for row in frame[[c.source for c in columns]].itertuples(index=False, name=None)
    ]
    table = Table(
        [header, *body],
        colWidths=[c.width_mm * mm for c in columns],
        repeatRows=1,
        hAlign="LEFT",
    )
    commands: list[tuple] = list(_TABLE_STYLE)
    if level_column is not None:
        position = [c.source for c in columns].index(level_column)
        commands += _level_tints(frame, position, level_column)
    table.setStyle(TableStyle(commands))
    return table
