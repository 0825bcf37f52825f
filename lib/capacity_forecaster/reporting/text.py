"""Text for the reports and charts: labels, number formats, and data made safe to show.

One set of helpers for every renderer (PDF, workbook, PNG charts, plotly pages, index.html):

- labels: ``metric_label`` and ``model_label`` from ``core.vocabulary``;
- formats: ``COLUMN_KINDS`` says how each report column is shown, ``format_value`` formats a
  value by that kind, ``format_number`` by a format spec;
- safety, one function per renderer, because each parses different markup:

  ``excel_safe``   spreadsheet formula injection (OWASP "CSV injection"): a string starting with
                   = + - @ tab or CR gets a leading apostrophe, so no spreadsheet, and no CSV
                   exported from it, evaluates it;
  ``pdf_safe``     reportlab Paragraph markup (<b>, <font>, <a>, entities) is escaped;
  ``plotly_safe``  plotly.js's pseudo-HTML and its TeX (``$``) are escaped;
  ``matplotlib_safe`` matplotlib's mathtext (``$``) is escaped;
  ``html_safe``    an HTML page's text and attributes are escaped.

Plain functions on values; no I/O.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd

from capacity_forecaster.core.calendar_windows import window_label
from capacity_forecaster.core.vocabulary import METRIC_LABELS, MODEL_LABELS, TRUST_MEANINGS

__all__ = [
    "ALL_METRICS",
    "COLUMN_KINDS",
    "MISSING",
    "and_join",
    "count_noun",
    "excel_safe",
    "format_number",
    "format_value",
    "html_safe",
    "is_missing",
    "matplotlib_safe",
    "metric_label",
    "model_label",
    "pdf_safe",
    "plotly_safe",
    "reclamation_line",
    "stem_label",
    "trust_legend",
]

MISSING = "\u2013"  # an en dash: how a missing value is shown
ALL_METRICS = "All metrics"  # the metric of the fleet-wide rows of the accuracy tables

# How each report column is shown: the PDF, the workbook and the pages format by these kinds.
#   points: a utilisation in percent points (0-100); share: a fraction shown as 0.0%;
#   probability: a fraction shown as 0%; money: USD; ratio: a unitless error ratio.
COLUMN_KINDS = MappingProxyType(
    {
        "Rank": "int",
        "Days to breach": "int",
        "Days to breach (upper)": "int",
        "Breach date": "date",
        "Peak date": "date",
        "Date": "date",
        "Breach probability": "probability",
        "Threshold %": "points",
        "Current P95 %": "points",
        "Forecast peak %": "points",
        "Headroom (pts)": "points",
        "Forecast %": "points",
        "Lower %": "points",
        "Upper %": "points",
        "CPU P95 %": "points",
        "Memory P95 %": "points",
        "Disk P95 %": "points",
        "CPU mean %": "points",
        "Memory mean %": "points",
        "Disk mean %": "points",
        "Min %": "points",
        "Max %": "points",
        "Mean %": "points",
        "CPU growth (pts/30d)": "points",
        "Memory growth (pts/30d)": "points",
        "Disk growth (pts/30d)": "points",
        "Series": "int",
        "Servers": "int",
        "Cluster": "int",
        "Cores": "int",
        "Recommended cores": "int",
        "Memory GB": "int",
        "Recommended memory GB": "int",
        "Idle": "int",
        "Over-provisioned": "int",
        "Under-provisioned": "int",
        "Optimal": "int",
        "Freed": "int",
        "Outliers replaced": "int",
        "Imputed days": "int",
        "Clipped above 100 %": "int",
        "Rows": "int",
        "MASE": "ratio",
        "MASE (median)": "ratio",
        "MAE": "ratio",
        "RMSE": "ratio",
        "Interval width": "points",
        "sMAPE %": "points",
        "MAPE %": "points",
        "Beats baseline": "share",
        "Coverage": "share",
        "Missing share": "share",
        "Monthly cost (USD)": "money",
        "Monthly saving (USD)": "money",
        "Breach window": "text",
        "Recurring peaks": "text",
        "Largest uplift (pts)": "points",
        "Seasonal peak": "bool",
        "Freed by consolidation": "bool",
    }
)

_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
# XML 1.0 forbids these control characters; openpyxl raises on them and reportlab's parser
# chokes, so data carrying them would otherwise break the whole report.
_ILLEGAL_XML_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


# --------------------------------------------------------------------------- labels


def reclamation_line(candidate: Mapping[str, Any]) -> str:
    """One set-aside server in words: ``srv-7: stale, last seen 2026-05-02; Payments,
    eu-west-1; $120.00 a month`` (plain text, unescaped)."""
    last_seen = candidate.get("last_seen")
    state = str(candidate.get("reason", ""))
    if last_seen:
        state += f", last seen {last_seen}"
    where = ", ".join(str(candidate[k]) for k in ("business_unit", "region") if candidate.get(k))
    cost = candidate.get("monthly_cost_usd")
    parts = [f"{candidate.get('server_id', '')}: {state}", where]
    if cost is not None:
        parts.append(f"{format_value(cost, 'money')} a month")
    return "; ".join(p for p in parts if p)


def breach_when(breach: Mapping[str, Any]) -> str:
    """When one of summary.json's earliest breaches happens, in words (plain text): ``over now
    (P95 89.3 % against 80 %)`` for a series already at or over its threshold, else its date
    and the calendar windows it falls in (``2026-07-30 (month end)``)."""
    if breach.get("over_now"):
        current = format_number(breach.get("current_p95"), ".1f")
        return f"over now (P95 {current} % against {format_number(breach.get('threshold'), 'g')} %)"
    date = str(breach.get("breach_date") or MISSING)
    windows = str(breach.get("breach_window") or "")
    if windows:
        date += f" ({', '.join(window_label(name) for name in windows.split(', '))})"
    return date


def trust_legend() -> str:
    """What each trust grade means, in one line (plain text, unescaped)."""
    meanings = "; ".join(f"{g}: {m}" for g, m in TRUST_MEANINGS.items())
    return f"Trust: {meanings}. The workbook's Trust note names each series' weaknesses."


def metric_label(metric: Any) -> str:
    """``cpu_p95`` -> ``CPU``; an unknown metric keeps its own name."""
    return METRIC_LABELS.get(str(metric), str(metric))


def model_label(model: Any) -> str:
    """``gradient_boosting`` -> ``Gradient boosting``; an unknown model keeps its own name."""
    return MODEL_LABELS.get(str(model), str(model))


def stem_label(stem: str) -> str:
    """A file stem as words: ``risk_heatmap`` -> ``risk heatmap``."""
    return stem.replace("_", " ")


def count_noun(count: Any, noun: str, shown: str | None = None) -> str:
    """``1 server``, ``3 servers``; ``shown`` is the count as already formatted."""
    return f"{count if shown is None else shown} {noun}{'' if count == 1 else 's'}"


def and_join(names: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


# --------------------------------------------------------------------------- numbers


def is_missing(value: Any) -> bool:
    """None, pd.NA, NaT, NaN and infinities: a value with nothing to show."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, np.datetime64):
        return bool(np.isnat(value))
    return isinstance(value, float | np.floating) and not math.isfinite(value)


def format_number(value: Any, spec: str, missing: str = MISSING) -> str:
    """``value`` as a float formatted with ``spec`` (``",.0f"``, ``".0%"``...); ``missing``
    for a missing value or one that is not a number."""
    if is_missing(value):
        return missing
    try:
        number = float(value)
    except (TypeError, ValueError):
        return missing
    return format(number, spec) if math.isfinite(number) else missing


def format_value(value: Any, kind: str, missing: str = MISSING) -> Any:
    """A number or date as the reports show it by its ``COLUMN_KINDS`` kind: int ``1,234``,
    points ``81.3``, share ``4.2%``, probability ``42%``, money ``$1,234``, ratio ``0.81``,
    date ``2026-07-01``, bool ``yes``/``no``. Text (and a value of an unexpected type) is
    returned unchanged; a missing value becomes ``missing``."""
    if kind == "text":
        return value
    if is_missing(value):
        return missing
    try:
        return _formatted(value, kind)
    except (TypeError, ValueError):
        return value  # a value of an unexpected type is shown as it is


def _formatted(value: Any, kind: str) -> Any:
    if kind == "int":
        return f"{round(float(value)):,}"
    if kind == "date":
        return pd.Timestamp(value).strftime("%Y-%m-%d")
    if kind == "bool":
        return "yes" if bool(value) else "no"
    if kind == "money":
        return f"${float(value):,.0f}"
    spec = {"points": ".1f", "share": ".1%", "probability": ".0%", "ratio": ".2f"}.get(kind)
    return value if spec is None else format(float(value), spec)


# --------------------------------------------------------------------------- safety


def excel_safe(value: Any) -> Any:
    """A cell value a spreadsheet shows as data and never evaluates as a formula.

    Strings lose XML-illegal control characters; one that starts with ``= + - @``, a tab or a
    carriage return (or the full-width forms of the first four) gets a leading apostrophe, as
    OWASP advises against CSV/formula injection; the apostrophe stays visible, so the cell
    reads as text in Excel, LibreOffice and any CSV saved from them. Missing values (None, NaN,
    NaT, inf) become None (an empty cell), numpy scalars Python ones, timestamps naive
    datetimes (Excel has no time zones). Numbers, booleans and dates pass unchanged; anything
    else becomes a safe string.
    """
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    elif isinstance(value, np.generic):
        value = value.item()
    if is_missing(value):
        return None
    if isinstance(value, bool | int | float | dt.date):
        return _naive(value)
    text = _ILLEGAL_XML_CHARS.sub("", value if isinstance(value, str) else str(value))
    if text.startswith(_FORMULA_TRIGGERS):
        return "'" + text
    return text


def _naive(value: bool | int | float | dt.date) -> bool | int | float | dt.date:
    """Datetimes (pandas' included) as naive UTC datetimes; other values unchanged."""
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def pdf_safe(value: Any, missing: str = MISSING) -> str:
    """Text for a reportlab Paragraph: markup characters escaped, so data shows literally.

    ``&``, ``<`` and ``>`` become entities (``xml.sax.saxutils.escape``) and XML-illegal control
    characters are dropped, so ``<b>x</b>`` prints as typed instead of turning bold, and
    ``<script>`` or a broken tag cannot crash the parser. None, NaN and NaT become ``missing``.
    """
    if is_missing(value):
        return missing
    return escape(_ILLEGAL_XML_CHARS.sub("", str(value)))


def plotly_safe(value: object) -> str:
    """A data-derived string made inert for plotly's pseudo-HTML.

    ``quote=False``: quotes cannot open a tag once ``<`` is escaped, and plotly.js decodes
    ``&lt; &gt; &amp;`` and numeric entities but shows ``&quot;`` literally. ``$`` becomes
    ``&#36;`` because plotly.js typesets ``$...$`` as TeX where MathJax is loaded (Jupyter)."""
    return html.escape(str(value), quote=False).replace("$", "&#36;")


def matplotlib_safe(value: object) -> str:
    """Text shown literally by matplotlib: a ``$`` in user data would start mathtext (and an
    unbalanced one fails at render time)."""
    return str(value).replace("$", r"\$")


def html_safe(value: object) -> str:
    """Text (and attribute values, quotes included) escaped for an HTML page."""
    return html.escape(str(value), quote=True)
