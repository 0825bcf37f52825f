"""Stage 08: the run's headline figures, reports/summary.json (``headline``).

The shape is declared once, field by field, in ``core.documents.Headline`` (schema version 1;
keys are stable: index.html and other consumers read them): every number a plain JSON number
or null (never NaN), dates ISO strings (``YYYY-MM-DD``), shares and probabilities fractions in
[0, 1]. Savings are monthly USD unless named annual and never double counted (see
``fleet.consolidation``). ``check_headline`` holds a headline to that model.

``outlook_line`` is the one line the PDF cover and index.html show about the run's dates.
Plain functions on frames and dicts; no I/O.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pandas as pd
from pydantic import BaseModel, ValidationError

from capacity_forecaster.core import catalog
from capacity_forecaster.core.documents import Headline
from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.jsonable import json_value
from capacity_forecaster.core.vocabulary import (
    AT_RISK_LEVELS,
    BASELINE_MODEL,
    CHAMPION,
    METRICS,
    RISK_LEVELS,
)
from capacity_forecaster.reporting.inputs import (
    RISK_REQUIRED,
    check_levels,
    require_columns,
    require_keys,
)
from capacity_forecaster.reporting.tables import interval_calibration, model_rows
from capacity_forecaster.reporting.text import is_missing, metric_label

logger = logging.getLogger(__name__)

__all__ = ["HEADLINE_KEYS", "SCHEMA_VERSION", "check_headline", "headline", "outlook_line"]

SCHEMA_VERSION = 1
# Each section's keys, from the one declaration of the shape.
HEADLINE_KEYS = MappingProxyType(
    {
        name: tuple(field.annotation.model_fields)
        for name, field in Headline.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
    }
)


# --------------------------------------------------------------------------- values


def _number(value: Any, digits: int | None = None) -> float | None:
    """A finite float (rounded when ``digits`` is given) or None."""
    if is_missing(value):
        return None
    number = float(value)
    if is_missing(number):
        return None
    return round(number, digits) if digits is not None else number


def _json_plain(value: Any) -> Any:
    """``value`` with every leaf a plain JSON value (nested dicts and lists included)."""
    if isinstance(value, Mapping):
        return {str(k): _json_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_plain(v) for v in value]
    return json_value(value)


def _iso_date(value: Any, what: str) -> str:
    """``value`` as ``YYYY-MM-DD``; a value that is no date names ``what``."""
    try:
        return pd.Timestamp(value).date().isoformat()
    except (TypeError, ValueError) as error:
        raise StageCheckError(f"08_report: {what} is {value!r}, not a date") from error


# --------------------------------------------------------------------------- sections


def _fleet(servers: pd.DataFrame, risk: pd.DataFrame, quality: Mapping[str, Any]) -> dict:
    return {
        "servers": int(servers["server_id"].nunique()),
        "series": len(risk),
        "date_start": quality["date_start"],
        "date_end": quality["date_end"],
        "days": int(quality["days"]),
        "metrics_monitored": [str(m) for m in quality["metrics_monitored"]],
        "business_units": int(servers["business_unit"].nunique()),
        "regions": int(servers["region"].nunique()),
    }


def _forecast(forecast: Mapping[str, Any], metrics: Mapping[str, Any]) -> dict[str, Any]:
    where = catalog.FORECAST_SUMMARY.key
    require_keys(forecast, ["horizon_days", "first_date", "last_date"], where)
    require_keys(metrics, ["backtest"], catalog.BACKTEST_REPORT.key)
    return {
        "horizon_days": int(forecast["horizon_days"]),
        "scored_horizon_days": int(metrics["backtest"]["scored_horizon_days"]),
        "first_date": _iso_date(forecast["first_date"], f"{where} first_date"),
        "last_date": _iso_date(forecast["last_date"], f"{where} last_date"),
    }


def _risk(risk_summary: Mapping[str, Any]) -> dict[str, Any]:
    levels = risk_summary["levels"]
    servers_by_level = {level: int(levels["servers"].get(level, 0)) for level in RISK_LEVELS}
    return {
        "servers_by_level": servers_by_level,
        "series_by_level": {level: int(levels["series"].get(level, 0)) for level in RISK_LEVELS},
        "servers_assessed": int(risk_summary["servers"]),
        "servers_at_risk": sum(servers_by_level[level] for level in AT_RISK_LEVELS),
        "series_over_now": int(risk_summary["series_over_now"]),
        "earliest_breaches": list(risk_summary["earliest_breaches"]),
        "by_business_unit": list(risk_summary["rollups"]["business_unit"]),
        "by_region": list(risk_summary["rollups"]["region"]),
    }


def _find_model(rows: list[Mapping[str, Any]], model: str, metric: str | None = None) -> dict:
    for row in rows:
        if row.get("model") == model and (metric is None or row.get("metric") == metric):
            return dict(row)
    where = "models" if metric is None else f"models_by_metric (metric {metric})"
    raise StageCheckError(f"08_report: models/metrics.json {where} has no row for model {model!r}")


def _accuracy_by_metric(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = model_rows(metrics, "models_by_metric")
    by_metric = []
    for metric in sorted({str(r["metric"]) for r in rows if "metric" in r}):
        best = _find_model(rows, CHAMPION, metric)
        base = _find_model(rows, BASELINE_MODEL, metric)
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
    return by_metric


def _accuracy(metrics: Mapping[str, Any]) -> dict[str, Any]:
    require_keys(metrics, ["models", "interval_level"], catalog.BACKTEST_REPORT.key)
    overall = model_rows(metrics, "models")
    champion = _find_model(overall, CHAMPION)
    baseline = _find_model(overall, BASELINE_MODEL)
    for name, row in (("champion", champion), ("baseline", baseline)):
        require_keys(row, ["mase", "coverage"], f"models/metrics.json models[{name}]")
    champion_mase = _number(champion["mase"])
    baseline_mase = _number(baseline["mase"])
    reduction = (
        round(1 - champion_mase / baseline_mase, 4)
        if champion_mase is not None and baseline_mase
        else None
    )
    return {
        "champion": {
            "mase": _number(champion_mase, 4),
            "mase_median": _number(champion.get("mase_median"), 4),
            "coverage": _number(champion["coverage"], 4),
            "beats_baseline_share": _number(champion.get("beats_baseline_share"), 4),
        },
        "baseline": {
            "model": BASELINE_MODEL,
            "mase": _number(baseline_mase, 4),
            "coverage": _number(baseline["coverage"], 4),
        },
        "mase_reduction": reduction,
        "interval_level": _number(metrics["interval_level"]),
        "champion_models": {
            str(k): int(v) for k, v in sorted(dict(metrics.get("champions", {})).items())
        },
        "interval_calibration": interval_calibration(metrics),
        "by_metric": _accuracy_by_metric(metrics),
    }


def _savings(recommendations: Mapping[str, Any]) -> dict[str, Any]:
    require_keys(
        recommendations,
        [
            "total_savings_usd",
            "consolidation_savings_usd",
            "right_sizing_savings_usd",
            "servers_freed",
        ],
        catalog.RECOMMENDATIONS.key,
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
    require_keys(quality, ["missing_server_days_share", "warnings"], catalog.QUALITY.key)
    require_keys(cleaning, ["outliers", "imputed"], catalog.CLEANING_SUMMARY.key)
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
        "reclamation": [
            {
                "server_id": str(r["server_id"]),
                "reason": str(r["reason"]),
                "last_seen": r.get("last_seen"),
                "all_zero_days": int(r.get("all_zero_days") or 0),
                "business_unit": json_value(r.get("business_unit")),
                "region": json_value(r.get("region")),
                "monthly_cost_usd": _number(r.get("monthly_cost_usd"), 2),
            }
            for r in quality.get("reclamation") or []
        ],
    }


# --------------------------------------------------------------------------- public


def _check_inputs(
    servers: pd.DataFrame,
    quality: Mapping[str, Any],
    risk: pd.DataFrame,
    risk_summary: Mapping[str, Any],
) -> None:
    require_columns(servers, ["server_id", "business_unit", "region"], catalog.SERVERS.key)
    require_columns(risk, RISK_REQUIRED, catalog.RISK.key)
    require_keys(
        quality, ["date_start", "date_end", "days", "metrics_monitored"], catalog.QUALITY.key
    )
    require_keys(
        risk_summary,
        ["servers", "levels", "rollups", "series_over_now", "earliest_breaches"],
        catalog.RISK_SUMMARY.key,
    )
    require_keys(risk_summary["levels"], ["series", "servers"], "risk/summary.json levels")
    require_keys(risk_summary["rollups"], ["business_unit", "region"], "risk/summary.json rollups")
    check_levels(risk)


def _iso_timestamp(generated_at: str | dt.datetime) -> str:
    text = generated_at.isoformat() if isinstance(generated_at, dt.datetime) else generated_at
    try:
        dt.datetime.fromisoformat(str(text))
    except ValueError as error:
        raise ValueError(f"generated_at must be an ISO 8601 string, got {text!r}") from error
    return str(text)


def headline(
    *,
    servers: pd.DataFrame,
    quality: Mapping[str, Any],
    cleaning: Mapping[str, Any],
    forecast: Mapping[str, Any],
    risk: pd.DataFrame,
    risk_summary: Mapping[str, Any],
    metrics: Mapping[str, Any],
    recommendations: Mapping[str, Any],
    run_id: str,
    generated_at: str | dt.datetime,
) -> dict[str, Any]:
    """The content of reports/summary.json (shape in the module docstring); JSON-ready, no NaN.

    ``servers`` is validated/servers.parquet, ``quality`` validated/quality.json, ``cleaning``
    processed/summary.json, ``forecast`` forecasts/summary.json, ``risk`` risk/risk.parquet,
    ``risk_summary`` risk/summary.json, ``metrics`` models/metrics.json and
    ``recommendations`` clusters/recommendations.json. Level counts (servers by their worst
    level) and the business-unit and region roll-ups come from ``risk_summary``, as stage 06
    counted them, and so do the earliest breaches (over the threshold now first).
    """
    _check_inputs(servers, quality, risk, risk_summary)
    summary = {
        "schema_version": SCHEMA_VERSION,
        "run_id": str(run_id),
        "generated_at": _iso_timestamp(generated_at),
        "fleet": _fleet(servers, risk, quality),
        "forecast": _forecast(forecast, metrics),
        "risk": _risk(risk_summary),
        "accuracy": _accuracy(metrics),
        "savings": _savings(recommendations),
        "data_quality": _data_quality(quality, cleaning),
    }
    result = _json_plain(summary)
    check_headline(result)
    logger.info(
        "08_report: %d servers, %d at risk (%d high), savings %s USD/month",
        result["fleet"]["servers"],
        result["risk"]["servers_at_risk"],
        result["risk"]["servers_by_level"]["high"],
        result["savings"]["monthly_usd_total"],
    )
    return result


def check_headline(summary: Mapping[str, Any]) -> None:
    """Post-conditions of summary.json: the documented shape (``core.documents.Headline``)
    and strict JSON (no NaN/inf)."""
    try:
        Headline.model_validate(summary)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise StageCheckError(f"08_report: summary.json {where}: {first['msg']}") from None
    try:
        json.dumps(summary, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise StageCheckError(f"08_report: summary.json is not strict JSON: {error}") from error


def outlook_line(summary: Mapping[str, Any]) -> str:
    """One line of plain (unescaped) text about the run's dates, from summary.json:
    ``Forecast horizon N days (first_date \u2013 last_date) \u00b7 data date_start \u2013
    date_end \u00b7 generated YYYY-MM-DD``. A part whose figures are missing (a summary.json
    written before the ``forecast`` section existed) is left out.
    """
    forecast = summary.get("forecast") or {}
    fleet = summary.get("fleet") or {}
    parts = []
    if all(forecast.get(k) for k in ("horizon_days", "first_date", "last_date")):
        scored = forecast.get("scored_horizon_days") or forecast["horizon_days"]
        backtested = (
            f"; backtested {scored} days ahead, intervals beyond extrapolated"
            if scored < forecast["horizon_days"]
            else ""
        )
        parts.append(
            f"Forecast horizon {forecast['horizon_days']} days "
            f"({forecast['first_date']} \u2013 {forecast['last_date']}{backtested})"
        )
    if fleet.get("date_start") and fleet.get("date_end"):
        parts.append(f"data {fleet['date_start']} \u2013 {fleet['date_end']}")
    monitored = fleet.get("metrics_monitored")
    if monitored is not None and set(monitored) != set(METRICS):
        missing = [metric_label(m) for m in METRICS if m not in monitored]
        parts.append(
            f"metrics {', '.join(metric_label(m) for m in monitored)}"
            f" ({', '.join(missing)} not monitored)"
        )
    if summary.get("generated_at"):
        parts.append(f"generated {str(summary['generated_at'])[:10]}")
    line = " \u00b7 ".join(parts)
    return line[:1].upper() + line[1:]
