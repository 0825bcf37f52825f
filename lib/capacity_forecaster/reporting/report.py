"""Stage 08: the run's headline figures, the report tables, and text made safe to show.

Plain functions on frames and dicts; no I/O. ``report_pdf.build_pdf`` and
``report_xlsx.build_workbook`` render what these functions return.

reports/summary.json (``headline``), schema_version 1. Keys are stable: index.html and other
consumers read them. Every number is a plain JSON number or null (never NaN), dates are ISO
strings (``YYYY-MM-DD``), shares and probabilities are fractions in [0, 1]::

    schema_version      1
    run_id              str
    generated_at        str, ISO 8601 (passed in by the caller, not the clock)
    fleet
      servers           int, servers in the validated inventory
      series            int, server x metric series assessed for risk
      date_start        str, first day of the validated history
      date_end          str, last day of the validated history
      days              int, days from date_start to date_end inclusive
      business_units    int, distinct business units in the inventory
      regions           int, distinct regions in the inventory
    risk
      servers_by_level  {high, medium, low}: servers by their worst level over metrics
      series_by_level   {high, medium, low}: series (server x metric) by level
      servers_assessed  int, servers with at least one assessed series
      servers_at_risk   int, servers whose worst level is high or medium
      earliest_breaches list (at most 10) of {server_id, metric, breach_date, days_to_breach,
                        breach_probability, criticality, business_unit}, soonest first
      by_business_unit  list of {business_unit, servers, servers_at_risk, share_at_risk, high,
                        medium} (the roll-up of risk/summary.json)
      by_region         list of {region, servers, servers_at_risk, share_at_risk, high, medium}
    accuracy            rolling-origin backtest (models/metrics.json)
      champion          {mase, mase_median, coverage, beats_baseline_share}
      baseline          {model, mase, coverage}: the seasonal-naive baseline
      mase_reduction    float or null, 1 - champion MASE / baseline MASE (> 0: champion better)
      interval_level    float, the nominal coverage of the forecast intervals
      champion_models   {model: series for which it is the champion}
      interval_calibration {model: where its interval calibration comes from, in words}
      by_metric         list of {metric, champion_mase, baseline_mase, champion_coverage,
                        baseline_coverage, beats_baseline_share}
    savings             monthly USD unless named annual; never double counted (see cluster.py)
      monthly_usd_total float, consolidation_usd + right_sizing_usd
      consolidation_usd float, monthly cost of servers freed by consolidation
      right_sizing_usd  float, right-sizing of servers neither freed nor hosting freed ones
      servers_freed     int
      annual_usd_total  float, 12 x monthly_usd_total
      note              str, how the savings are counted
    data_quality
      missing_share     float or null, share of expected server-days with no row
      missing_share_by_metric {metric: share of expected values missing}
      outliers          int, values replaced as outliers in cleaning
      imputed           int, missing days interpolated in cleaning
      warnings          list of str, from loading the data

Text safety. ``excel_safe`` neutralises spreadsheet formula injection (OWASP "CSV injection"):
a string starting with = + - @ tab or CR gets a leading apostrophe, so no spreadsheet, and no
CSV exported from it, evaluates it. ``pdf_safe`` escapes text for reportlab Paragraphs, whose
markup (<b>, <font>, <a>, entities) would otherwise be parsed from data.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd

from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.jsonable import json_value

logger = logging.getLogger(__name__)

__all__ = [
    "COLUMN_KINDS",
    "HEADLINE_KEYS",
    "LEVELS",
    "SCHEMA_VERSION",
    "accuracy_table",
    "at_risk_table",
    "check_headline",
    "cluster_table",
    "excel_safe",
    "forecast_table",
    "headline",
    "metric_label",
    "model_label",
    "pdf_safe",
    "quality_table",
    "recommendation_table",
    "server_cluster_table",
]

SCHEMA_VERSION = 1
LEVELS = ("high", "medium", "low")
AT_RISK_LEVELS = ("high", "medium")
CHAMPION = "champion"
BASELINE = "seasonal_naive"
EARLIEST_BREACHES = 10
ALL_METRICS = "All metrics"
CHAMPION_CALIBRATION = "each series' champion model's"
HEADLINE_KEYS = MappingProxyType(
    {
        "fleet": (
            "servers",
            "series",
            "date_start",
            "date_end",
            "days",
            "business_units",
            "regions",
        ),
        "risk": (
            "servers_by_level",
            "series_by_level",
            "servers_assessed",
            "servers_at_risk",
            "earliest_breaches",
            "by_business_unit",
            "by_region",
        ),
        "accuracy": (
            "champion",
            "baseline",
            "mase_reduction",
            "interval_level",
            "champion_models",
            "interval_calibration",
            "by_metric",
        ),
        "savings": (
            "monthly_usd_total",
            "consolidation_usd",
            "right_sizing_usd",
            "servers_freed",
            "annual_usd_total",
            "note",
        ),
        "data_quality": (
            "missing_share",
            "missing_share_by_metric",
            "outliers",
            "imputed",
            "warnings",
        ),
    }
)

METRIC_LABELS = MappingProxyType({"cpu_p95": "CPU", "mem_p95": "Memory", "disk_p95": "Disk"})
MODEL_LABELS = MappingProxyType(
    {
        CHAMPION: "Champion (per metric)",
        BASELINE: "Seasonal naive (baseline)",
        "robust_trend": "Robust trend",
        "prophet": "Prophet",
        "random_forest": "Random forest",
        "gradient_boosting": "Gradient boosting",
    }
)

# How each report column is shown: both the PDF and the workbook format by these kinds.
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
        "EOQ breach": "bool",
        "Seasonal peak": "bool",
        "Freed by consolidation": "bool",
    }
)

_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
# XML 1.0 forbids these control characters; openpyxl raises on them and reportlab's parser
# chokes, so data carrying them would otherwise break the whole report.
_ILLEGAL_XML_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

RISK_REQUIRED = (
    "urgency_rank",
    "server_id",
    "metric",
    "risk_level",
    "days_to_breach",
    "breach_date",
    "breach_probability",
    "threshold",
    "current_p95",
    "forecast_peak",
    "business_unit",
    "region",
    "environment",
    "criticality",
)


# --------------------------------------------------------------------------- text safety


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and not math.isfinite(value)


def excel_safe(value: Any) -> Any:
    """A cell value a spreadsheet shows as data and never evaluates as a formula.

    Strings lose XML-illegal control characters; one that starts with ``= + - @``, a tab or a
    carriage return (or the full-width forms of the first four) gets a leading apostrophe, as
    OWASP advises against CSV/formula injection; the apostrophe stays visible, so the cell
    reads as text in Excel, LibreOffice and any CSV saved from them. Missing values (None, NaN, NaT, inf) become
    None (an empty cell), numpy scalars Python ones, timestamps naive datetimes (Excel has no
    time zones). Numbers, booleans and dates pass unchanged; anything else becomes a safe string.
    """
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    elif isinstance(value, np.generic):
        value = value.item()
    if _is_missing(value):
        return None
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    if isinstance(value, dt.date):
        return value
    text = _ILLEGAL_XML_CHARS.sub("", value if isinstance(value, str) else str(value))
    if text.startswith(_FORMULA_TRIGGERS):
        return "'" + text
    return text


def pdf_safe(value: Any, missing: str = "\u2013") -> str:
    """Text for a reportlab Paragraph: markup characters escaped, so data shows literally.

    ``&``, ``<`` and ``>`` become entities (``xml.sax.saxutils.escape``) and XML-illegal control
    characters are dropped, so ``<b>x</b>`` prints as typed instead of turning bold, and
    ``<script>`` or a broken tag cannot crash the parser. None, NaN and NaT become ``missing``.
    """
    if _is_missing(value):
        return missing
    return escape(_ILLEGAL_XML_CHARS.sub("", str(value)))


def metric_label(metric: Any) -> str:
    """``cpu_p95`` -> ``CPU``; an unknown metric keeps its own name."""
    return METRIC_LABELS.get(str(metric), str(metric))


def model_label(model: Any) -> str:
    """``gradient_boosting`` -> ``Gradient boosting``; an unknown model keeps its own name."""
    return MODEL_LABELS.get(str(model), str(model))


# --------------------------------------------------------------------------- input checks


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise StageCheckError(f"08_report: {what} lacks column(s) {missing}")


def _require_keys(mapping: Mapping[str, Any], keys: Sequence[str], what: str) -> None:
    if not isinstance(mapping, Mapping):
        raise StageCheckError(f"08_report: {what} is {type(mapping).__name__}, expected a dict")
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise StageCheckError(f"08_report: {what} lacks key(s) {missing}")


def _check_levels(risk: pd.DataFrame) -> None:
    unknown = sorted(set(risk["risk_level"].dropna().astype(str)) - set(LEVELS))
    if unknown or risk["risk_level"].isna().any():
        shown = unknown or ["<missing>"]
        raise StageCheckError(
            f"08_report: risk/risk.parquet column risk_level has values {shown}, "
            f"expected only {list(LEVELS)}"
        )


def _number(value: Any, digits: int | None = None) -> float | None:
    """A finite float (rounded when ``digits`` is given) or None."""
    if _is_missing(value):
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    return round(number, digits) if digits is not None else number


def _plain(value: Any) -> Any:
    """``value`` with every leaf a plain JSON value (nested dicts and lists included)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return json_value(value)


# --------------------------------------------------------------------------- headline


def _earliest_breaches(risk: pd.DataFrame, limit: int) -> list[dict]:
    breaching = risk[risk["days_to_breach"].notna()].sort_values(
        ["days_to_breach", "breach_probability", "server_id", "metric"],
        ascending=[True, False, True, True],
    )
    rows = []
    for row in breaching.head(limit).itertuples(index=False):
        days = _number(row.days_to_breach)
        rows.append(
            {
                "server_id": json_value(row.server_id),
                "metric": json_value(row.metric),
                "breach_date": json_value(row.breach_date),
                "days_to_breach": None if days is None else int(days),
                "breach_probability": _number(row.breach_probability, 4),
                "criticality": json_value(row.criticality),
                "business_unit": json_value(row.business_unit),
            }
        )
    return rows


def _model_rows(metrics: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    rows = metrics.get(key, [])
    if not isinstance(rows, list):
        raise StageCheckError(f"08_report: models/metrics.json key {key!r} is not a list")
    return rows


def _find_model(rows: list[Mapping[str, Any]], model: str, metric: str | None = None) -> dict:
    for row in rows:
        if row.get("model") == model and (metric is None or row.get("metric") == metric):
            return dict(row)
    where = "models" if metric is None else f"models_by_metric (metric {metric})"
    raise StageCheckError(f"08_report: models/metrics.json {where} has no row for model {model!r}")


def _accuracy(metrics: Mapping[str, Any]) -> dict[str, Any]:
    _require_keys(metrics, ["models", "interval_level"], "models/metrics.json")
    overall = _model_rows(metrics, "models")
    champion = _find_model(overall, CHAMPION)
    baseline = _find_model(overall, BASELINE)
    for name, row in (("champion", champion), ("baseline", baseline)):
        _require_keys(row, ["mase", "coverage"], f"models/metrics.json models[{name}]")
    champion_mase = _number(champion["mase"])
    baseline_mase = _number(baseline["mase"])
    reduction = (
        round(1 - champion_mase / baseline_mase, 4)
        if champion_mase is not None and baseline_mase
        else None
    )
    by_metric_rows = _model_rows(metrics, "models_by_metric")
    by_metric = []
    for metric in sorted({str(r["metric"]) for r in by_metric_rows if "metric" in r}):
        best = _find_model(by_metric_rows, CHAMPION, metric)
        base = _find_model(by_metric_rows, BASELINE, metric)
        by_metric.append(
            {
                "metric": metric,
                "champion_mase": _number(best.get("mase"), 4),
                "baseline_mase": _number(base.get("mase"), 4),
                "champion_coverage": _number(best.get("coverage"), 4),
                "baseline_coverage": _number(base.get("coverage"), 4),
                "beats_baseline_share": _number(best.get("beats_baseline_share"), 4),
            }
        )
    return {
        "champion": {
            "mase": _number(champion_mase, 4),
            "mase_median": _number(champion.get("mase_median"), 4),
            "coverage": _number(champion["coverage"], 4),
            "beats_baseline_share": _number(champion.get("beats_baseline_share"), 4),
        },
        "baseline": {
            "model": BASELINE,
            "mase": _number(baseline_mase, 4),
            "coverage": _number(baseline["coverage"], 4),
        },
        "mase_reduction": reduction,
        "interval_level": _number(metrics["interval_level"]),
        "champion_models": {
            str(k): int(v) for k, v in sorted(dict(metrics.get("champions", {})).items())
        },
        "interval_calibration": _interval_calibration(metrics),
        "by_metric": by_metric,
    }


def _interval_calibration(metrics: Mapping[str, Any]) -> dict[str, str]:
    """Per model, where stage 04 calibrated its intervals (``interval_calibration`` in
    models/metrics.json; empty for a metrics.json written before stage 04 recorded it)."""
    sources = metrics.get("interval_calibration") or {}
    if not isinstance(sources, Mapping):
        raise StageCheckError(
            "08_report: models/metrics.json interval_calibration must map models to text, "
            f"not {type(sources).__name__}"
        )
    return {str(model): str(text) for model, text in sorted(sources.items())}


def _savings(recommendations: Mapping[str, Any]) -> dict[str, Any]:
    _require_keys(
        recommendations,
        [
            "total_savings_usd",
            "consolidation_savings_usd",
            "right_sizing_savings_usd",
            "servers_freed",
        ],
        "clusters/recommendations.json",
    )
    monthly = _number(recommendations["total_savings_usd"], 2)
    return {
        "monthly_usd_total": monthly,
        "consolidation_usd": _number(recommendations["consolidation_savings_usd"], 2),
        "right_sizing_usd": _number(recommendations["right_sizing_savings_usd"], 2),
        "servers_freed": int(recommendations["servers_freed"]),
        "annual_usd_total": None if monthly is None else round(12 * monthly, 2),
        "note": str(recommendations.get("savings_note", "monthly USD")),
    }


def _data_quality(quality: Mapping[str, Any], cleaning: Mapping[str, Any]) -> dict[str, Any]:
    _require_keys(quality, ["missing_server_days_share", "warnings"], "validated/quality.json")
    _require_keys(cleaning, ["outliers", "imputed"], "processed/summary.json")
    per_metric = quality.get("metrics", {})
    return {
        "missing_share": _number(quality["missing_server_days_share"], 6),
        "missing_share_by_metric": {
            str(metric): _number(stats.get("missing_share"), 6)
            for metric, stats in sorted(per_metric.items())
        },
        "outliers": int(cleaning["outliers"]),
        "imputed": int(cleaning["imputed"]),
        "warnings": [str(w) for w in quality["warnings"]],
    }


def headline(
    *,
    servers: pd.DataFrame,
    quality: Mapping[str, Any],
    cleaning: Mapping[str, Any],
    risk: pd.DataFrame,
    risk_summary: Mapping[str, Any],
    metrics: Mapping[str, Any],
    recommendations: Mapping[str, Any],
    run_id: str,
    generated_at: str | dt.datetime,
) -> dict[str, Any]:
    """The content of reports/summary.json (shape in the module docstring); JSON-ready, no NaN.

    ``servers`` is validated/servers.parquet, ``quality`` validated/quality.json, ``cleaning``
    processed/summary.json, ``risk`` risk/risk.parquet, ``risk_summary`` risk/summary.json,
    ``metrics`` models/metrics.json and ``recommendations`` clusters/recommendations.json.
    Level counts (servers by their worst level) and the business-unit and region roll-ups
    come from ``risk_summary``, as stage 06 counted them; earliest breaches from the risk frame.
    """
    _require_columns(servers, ["server_id", "business_unit", "region"], "validated/servers.parquet")
    _require_columns(risk, RISK_REQUIRED, "risk/risk.parquet")
    _require_keys(quality, ["date_start", "date_end", "days"], "validated/quality.json")
    _require_keys(risk_summary, ["servers", "levels", "rollups"], "risk/summary.json")
    _require_keys(risk_summary["levels"], ["series", "servers"], "risk/summary.json levels")
    _require_keys(risk_summary["rollups"], ["business_unit", "region"], "risk/summary.json rollups")
    _check_levels(risk)
    if isinstance(generated_at, dt.datetime):
        generated_at = generated_at.isoformat()
    try:
        dt.datetime.fromisoformat(str(generated_at))
    except ValueError as error:
        raise ValueError(
            f"generated_at must be an ISO 8601 string, got {generated_at!r}"
        ) from error

    servers_by_level = {
        level: int(risk_summary["levels"]["servers"].get(level, 0)) for level in LEVELS
    }
    summary = {
        "schema_version": SCHEMA_VERSION,
        "run_id": str(run_id),
        "generated_at": str(generated_at),
        "fleet": {
            "servers": int(servers["server_id"].nunique()),
            "series": len(risk),
            "date_start": quality["date_start"],
            "date_end": quality["date_end"],
            "days": int(quality["days"]),
            "business_units": int(servers["business_unit"].nunique()),
            "regions": int(servers["region"].nunique()),
        },
        "risk": {
            "servers_by_level": servers_by_level,
            "series_by_level": {
                level: int(risk_summary["levels"]["series"].get(level, 0)) for level in LEVELS
            },
            "servers_assessed": int(risk_summary["servers"]),
            "servers_at_risk": servers_by_level["high"] + servers_by_level["medium"],
            "earliest_breaches": _earliest_breaches(risk, EARLIEST_BREACHES),
            "by_business_unit": list(risk_summary["rollups"]["business_unit"]),
            "by_region": list(risk_summary["rollups"]["region"]),
        },
        "accuracy": _accuracy(metrics),
        "savings": _savings(recommendations),
        "data_quality": _data_quality(quality, cleaning),
    }
    result = _plain(summary)
    check_headline(result)
    logger.info(
        "08_report: %d servers, %d at risk (%d high), savings %s USD/month",
        result["fleet"]["servers"],
        result["risk"]["servers_at_risk"],
        servers_by_level["high"],
        result["savings"]["monthly_usd_total"],
    )
    return result


def check_headline(summary: Mapping[str, Any]) -> None:
    """Post-conditions of summary.json: documented keys present, strict JSON (no NaN/inf)."""
    _require_keys(
        summary, ["schema_version", "run_id", "generated_at", *HEADLINE_KEYS], "summary.json"
    )
    for section, keys in HEADLINE_KEYS.items():
        _require_keys(summary[section], keys, f"summary.json {section}")
    try:
        json.dumps(summary, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise StageCheckError(f"08_report: summary.json is not strict JSON: {error}") from error


# --------------------------------------------------------------------------- tables


def at_risk_table(
    risk: pd.DataFrame, top_n: int | None = None, *, include_low: bool = False
) -> pd.DataFrame:
    """Series in stage 06's urgency order (``urgency_rank``: level, days to breach,
    probability, criticality), with readable column names and a 1-based Rank.

    Only high and medium series unless ``include_low``; at most ``top_n`` rows (None: all).
    """
    if top_n is not None and top_n < 0:
        raise ValueError(f"top_n must be >= 0 or None, got {top_n}")
    _require_columns(risk, RISK_REQUIRED, "risk/risk.parquet")
    _check_levels(risk)
    levels = LEVELS if include_low else AT_RISK_LEVELS
    chosen = risk[risk["risk_level"].isin(levels)]
    ordered = chosen.sort_values("urgency_rank", kind="mergesort")
    if top_n is not None:
        ordered = ordered.head(top_n)
    columns = {
        "server_id": "Server",
        "metric": "Metric",
        "risk_level": "Risk level",
        "days_to_breach": "Days to breach",
        "breach_date": "Breach date",
        "breach_probability": "Breach probability",
        "threshold": "Threshold %",
        "current_p95": "Current P95 %",
        "forecast_peak": "Forecast peak %",
        "peak_date": "Peak date",
        "business_unit": "Business unit",
        "region": "Region",
        "environment": "Environment",
        "criticality": "Criticality",
        "model": "Model",
        "eoq_breach": "EOQ breach",
        "seasonal_peak": "Seasonal peak",
        "risk_reason": "Reason",
    }
    present = {source: name for source, name in columns.items() if source in ordered.columns}
    table = ordered[list(present)].rename(columns=present).reset_index(drop=True)
    table["Metric"] = table["Metric"].map(metric_label)
    if "Model" in table:
        table["Model"] = table["Model"].map(model_label)
    table.insert(0, "Rank", np.arange(1, len(table) + 1))
    return table


def accuracy_table(metrics: Mapping[str, Any], *, by_metric: bool = False) -> pd.DataFrame:
    """Backtest accuracy per model: the champion first, the seasonal-naive baseline last.

    With ``by_metric`` a leading Metric column holds ``All metrics`` for the overall rows,
    followed by the rows of each metric.
    """
    _require_keys(metrics, ["models"], "models/metrics.json")
    rows = [dict(r, metric=ALL_METRICS) for r in _model_rows(metrics, "models")]
    if by_metric:
        rows += [dict(r) for r in _model_rows(metrics, "models_by_metric")]
    frame = pd.DataFrame(rows)
    _require_columns(frame, ["model", "mase", "coverage"], "models/metrics.json models")
    frame["_order"] = np.select(
        [frame["model"] == CHAMPION, frame["model"] == BASELINE], [0, 2], default=1
    )
    frame["_metric_order"] = (frame["metric"] != ALL_METRICS).astype(int)
    frame = frame.sort_values(["_metric_order", "metric", "_order", "mase", "model"])
    columns = {
        "metric": "Metric",
        "model": "Model",
        "series": "Series",
        "mase": "MASE",
        "mase_median": "MASE (median)",
        "beats_baseline_share": "Beats baseline",
        "coverage": "Coverage",
        "smape": "sMAPE %",
        "mae": "MAE",
        "rmse": "RMSE",
        "interval_width": "Interval width",
    }
    if not by_metric:
        del columns["metric"]
    sources = _interval_calibration(metrics)
    if sources:
        # The champion has no calibration of its own: each series keeps its model's.
        frame["calibration"] = frame["model"].map(
            lambda model: CHAMPION_CALIBRATION if model == CHAMPION else sources.get(model)
        )
        columns["calibration"] = "Intervals calibrated on"
    present = {source: name for source, name in columns.items() if source in frame.columns}
    table = frame[list(present)].rename(columns=present).reset_index(drop=True)
    table["Model"] = table["Model"].map(model_label)
    if by_metric:
        table["Metric"] = table["Metric"].map(lambda m: m if m == ALL_METRICS else metric_label(m))
    return table


CLUSTER_REQUIRED = (
    "server_id",
    "cluster",
    "cluster_label",
    "finding",
    "action",
    "monthly_savings_usd",
    "monthly_cost_usd",
    "freed",
    "host_server_id",
    "counted_savings_usd",
    "saving_kind",
)

_CLUSTER_TABLE_COLUMNS = [
    "Cluster",
    "Profile",
    "Servers",
    "CPU P95 %",
    "Memory P95 %",
    "Disk P95 %",
    "CPU growth (pts/30d)",
    "Idle",
    "Over-provisioned",
    "Under-provisioned",
    "Optimal",
    "Freed",
]


def cluster_table(recommendations: Mapping[str, Any], clusters: pd.DataFrame) -> pd.DataFrame:
    """One row per cluster: label, size, centroid P95s and growth, findings, servers freed."""
    _require_keys(recommendations, ["clusters"], "clusters/recommendations.json")
    _require_columns(clusters, CLUSTER_REQUIRED, "clusters/clusters.parquet")
    findings = pd.crosstab(clusters["cluster"], clusters["finding"])
    freed = clusters.groupby("cluster")["freed"].apply(lambda s: int(s.fillna(False).sum()))
    rows = []
    for entry in recommendations["clusters"]:
        _require_keys(entry, ["cluster", "label", "size"], "clusters/recommendations.json clusters")
        number = int(entry["cluster"])
        centroid = entry.get("centroid", {})
        counts = findings.loc[number] if number in findings.index else pd.Series(dtype=int)
        rows.append(
            {
                "Cluster": number,
                "Profile": str(entry["label"]),
                "Servers": int(entry["size"]),
                "CPU P95 %": centroid.get("cpu_p95"),
                "Memory P95 %": centroid.get("mem_p95"),
                "Disk P95 %": centroid.get("disk_p95"),
                "CPU growth (pts/30d)": centroid.get("cpu_growth"),
                "Idle": int(counts.get("idle", 0)),
                "Over-provisioned": int(counts.get("over-provisioned", 0)),
                "Under-provisioned": int(counts.get("under-provisioned", 0)),
                "Optimal": int(counts.get("optimal", 0)),
                "Freed": int(freed.get(number, 0)),
            }
        )
    return pd.DataFrame(rows, columns=_CLUSTER_TABLE_COLUMNS)


def server_cluster_table(clusters: pd.DataFrame) -> pd.DataFrame:
    """One row per server: its cluster, utilisation profile, inventory and attributes."""
    _require_columns(
        clusters, ["server_id", "cluster", "cluster_label"], "clusters/clusters.parquet"
    )
    columns = {
        "server_id": "Server",
        "cluster": "Cluster",
        "cluster_label": "Profile",
        "cpu_p95": "CPU P95 %",
        "mem_p95": "Memory P95 %",
        "disk_p95": "Disk P95 %",
        "cpu_mean": "CPU mean %",
        "mem_mean": "Memory mean %",
        "disk_mean": "Disk mean %",
        "cpu_growth": "CPU growth (pts/30d)",
        "mem_growth": "Memory growth (pts/30d)",
        "disk_growth": "Disk growth (pts/30d)",
        "business_unit": "Business unit",
        "region": "Region",
        "environment": "Environment",
        "criticality": "Criticality",
        "cpu_cores": "Cores",
        "memory_gb": "Memory GB",
        "monthly_cost_usd": "Monthly cost (USD)",
    }
    present = {source: name for source, name in columns.items() if source in clusters.columns}
    ordered = clusters.sort_values(["cluster", "server_id"], kind="mergesort")
    return ordered[list(present)].rename(columns=present).reset_index(drop=True)


def recommendation_table(clusters: pd.DataFrame) -> pd.DataFrame:
    """Servers with an action or freed by consolidation, largest counted saving first.

    ``Monthly saving (USD)`` is the saving stage 07 counts for the server
    (``counted_savings_usd``), so the column sums to ``total_savings_usd``; ``Saving type``
    says which kind it is. ``Move onto`` names the host of a freed server.
    """
    _require_columns(
        clusters,
        [*CLUSTER_REQUIRED, "cpu_cores", "memory_gb", "recommended_cores", "recommended_memory_gb"],
        "clusters/clusters.parquet",
    )
    freed = clusters["freed"].fillna(False).astype(bool)
    frame = clusters.assign(
        _saving=clusters["counted_savings_usd"].astype(float),
        _kind=clusters["saving_kind"],
        _freed=freed,
        _move_onto=clusters["host_server_id"].where(freed),
    )
    chosen = frame[(frame["action"] != "none") | frame["_freed"]]
    chosen = chosen.sort_values(["_saving", "server_id"], ascending=[False, True], kind="mergesort")
    columns = {
        "server_id": "Server",
        "cluster_label": "Profile",
        "finding": "Finding",
        "action": "Action",
        "cpu_cores": "Cores",
        "recommended_cores": "Recommended cores",
        "memory_gb": "Memory GB",
        "recommended_memory_gb": "Recommended memory GB",
        "monthly_cost_usd": "Monthly cost (USD)",
        "_saving": "Monthly saving (USD)",
        "_kind": "Saving type",
        "_freed": "Freed by consolidation",
        "_move_onto": "Move onto",
        "business_unit": "Business unit",
        "environment": "Environment",
        "criticality": "Criticality",
        "excluded_reason": "Not consolidated because",
    }
    present = {source: name for source, name in columns.items() if source in chosen.columns}
    return chosen[list(present)].rename(columns=present).reset_index(drop=True)


def forecast_table(forecasts: pd.DataFrame) -> pd.DataFrame:
    """Champion forecast rows (``is_champion``) by server, metric and date, readable names."""
    _require_columns(
        forecasts,
        ["server_id", "metric", "date", "model", "yhat", "yhat_lower", "yhat_upper", "is_champion"],
        "forecasts/forecasts.parquet",
    )
    champion = forecasts[forecasts["is_champion"].fillna(False).astype(bool)]
    ordered = champion.sort_values(["server_id", "metric", "date"], kind="mergesort")
    table = ordered[
        ["server_id", "metric", "date", "model", "yhat", "yhat_lower", "yhat_upper"]
    ].rename(
        columns={
            "server_id": "Server",
            "metric": "Metric",
            "date": "Date",
            "model": "Model",
            "yhat": "Forecast %",
            "yhat_lower": "Lower %",
            "yhat_upper": "Upper %",
        }
    )
    table["Metric"] = table["Metric"].map(metric_label)
    table["Model"] = table["Model"].map(model_label)
    return table.reset_index(drop=True)


def quality_table(quality: Mapping[str, Any], cleaning: Mapping[str, Any]) -> pd.DataFrame:
    """Per metric: missing share and range after loading, outliers and imputed days in cleaning."""
    _require_keys(quality, ["metrics"], "validated/quality.json")
    cleaned = cleaning.get("by_metric", {})
    rows = []
    for metric, stats in sorted(quality["metrics"].items()):
        cleaned_metric = cleaned.get(metric, {})
        rows.append(
            {
                "Metric": metric_label(metric),
                "Missing share": stats.get("missing_share"),
                "Min %": stats.get("min"),
                "Max %": stats.get("max"),
                "Mean %": stats.get("mean"),
                "Outliers replaced": cleaned_metric.get("outliers"),
                "Imputed days": cleaned_metric.get("imputed"),
            }
        )
    columns = [
        "Metric",
        "Missing share",
        "Min %",
        "Max %",
        "Mean %",
        "Outliers replaced",
        "Imputed days",
    ]
    return pd.DataFrame(rows, columns=columns)
