"""The assessment summed up: each server's worst level, servers at risk per business unit,
region, criticality and environment, and the JSON summary of the stage (risk/summary.json)."""

from __future__ import annotations

from typing import Any, cast

import pandas as pd

from capacity_forecaster.core.jsonable import json_value, records
from capacity_forecaster.core.params import RiskParams
from capacity_forecaster.core.vocabulary import RISK_LEVELS, SERIES_KEY
from capacity_forecaster.risk.assess import SERVER_ATTRIBUTES, rules_text

__all__ = [
    "ROLLUP_DIMENSIONS",
    "by_dimension",
    "earliest_breaches",
    "risk_summary",
    "worst_per_server",
]

ROLLUP_DIMENSIONS = ["business_unit", "region", "criticality", "environment"]
EARLIEST_BREACHES = 10  # listed in the summary


def worst_per_server(risk: pd.DataFrame) -> pd.DataFrame:
    """One row per server: its attributes ("unknown" where missing) and its worst level over
    metrics (``worst``)."""
    severity = risk["risk_level"].map({level: i for i, level in enumerate(RISK_LEVELS)})
    worst = severity.groupby(risk["server_id"]).min().map(dict(enumerate(RISK_LEVELS)))
    attributes = risk.drop_duplicates("server_id").set_index("server_id")
    present = [c for c in SERVER_ATTRIBUTES if c in attributes]
    servers = attributes[present].astype(object).where(attributes[present].notna(), "unknown")
    return servers.assign(worst=worst).reset_index()


def by_dimension(risk: pd.DataFrame) -> dict[str, list[dict]]:
    """Per business unit, region, criticality and environment: servers at risk by worst level,
    the largest share at risk first."""
    servers = worst_per_server(risk)
    return {
        dimension: _rollup(servers, dimension) if dimension in servers else []
        for dimension in ROLLUP_DIMENSIONS
    }


def _rollup(servers: pd.DataFrame, dimension: str) -> list[dict]:
    """One record per value of ``dimension``: servers, at risk, share at risk, high, medium."""
    # Named aggregation on a grouped column gives a frame (the stubs say Series).
    table = cast(
        pd.DataFrame,
        servers.groupby(dimension)["worst"].agg(
            servers="size",
            high=lambda s: int((s == "high").sum()),
            medium=lambda s: int((s == "medium").sum()),
        ),
    )
    table["servers_at_risk"] = table["high"] + table["medium"]
    table["share_at_risk"] = (table["servers_at_risk"] / table["servers"]).round(4)
    table = table.reset_index()
    table[dimension] = table[dimension].astype(str)
    table = table.sort_values(
        ["share_at_risk", "servers_at_risk", dimension], ascending=[False, False, True]
    )
    columns = [dimension, "servers", "servers_at_risk", "share_at_risk", "high", "medium"]
    return records(table[columns])


def level_counts(levels: pd.Series) -> dict[str, int]:
    """How many of ``levels`` are high, medium and low."""
    counts = levels.value_counts()
    return {level: int(counts.get(level, 0)) for level in RISK_LEVELS}


def risk_summary(risk: pd.DataFrame, top: pd.DataFrame, params: RiskParams) -> dict[str, Any]:
    """A JSON-ready summary (NaN as None, dates as ISO strings) for the report and summary.json."""
    return {
        "series": len(risk),
        "servers": int(risk["server_id"].nunique()),
        "levels": {
            "series": level_counts(risk["risk_level"]),
            "servers": level_counts(worst_per_server(risk)["worst"]),
        },
        "by_metric": _by_metric(risk),
        "window_breaches": window_breaches(risk),
        "series_over_now": int(risk["over_now"].sum()),
        "seasonal_peaks": int(risk["seasonal_peak"].sum()),
        "earliest_breaches": earliest_breaches(risk),
        "thresholds": _thresholds(risk, params),
        "rules": rules_text(params),
        "risk_params": {
            "high_within_days": params.high_within_days,
            "high_probability": params.high_probability,
            "medium_probability": params.medium_probability,
        },
        "rollups": by_dimension(risk),
        "top": records(top),
    }


def _by_metric(risk: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per metric: series, their levels, breaches on the forecast and the upper bound, the
    median days to breach and the breaches that fall in a business-calendar window."""
    by_metric = {}
    for metric, rows in risk.groupby("metric", sort=True):
        days = rows["days_to_breach"]
        by_metric[str(metric)] = {
            "series": len(rows),
            **level_counts(rows["risk_level"]),
            "breaching": int(days.notna().sum()),
            "breaching_upper": int(rows["days_to_breach_upper"].notna().sum()),
            "median_days_to_breach": json_value(days.median()),
            "window_breaches": int((rows["breach_window"] != "").sum()),
        }
    return by_metric


def window_breaches(risk: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per business-calendar window: the series whose first breach falls in it, and those
    that cross their threshold on that window's days only."""
    counts: dict[str, dict[str, int]] = {}
    for windows, only in risk.loc[
        risk["breach_window"] != "", ["breach_window", "breach_window_only"]
    ].itertuples(index=False, name=None):
        for name in str(windows).split(", "):
            entry = counts.setdefault(name, {"breaches": 0, "window_only": 0})
            entry["breaches"] += 1
            entry["window_only"] += int(bool(only))
    return dict(sorted(counts.items()))


EARLIEST_BREACH_COLUMNS = [  # the fields of documents.EarliestBreach, in its order
    *SERIES_KEY,
    "breach_date",
    "days_to_breach",
    "breach_window",
    "over_now",
    "current_p95",
    "threshold",
    "breach_probability",
    "criticality",
    "business_unit",
    "trust_grade",
]


def earliest_breaches(risk: pd.DataFrame) -> list[dict]:
    """The first ``EARLIEST_BREACHES`` breaches: the series over their threshold now (0 days,
    the furthest over first), then the forecast's earliest (ties: probability, server, metric)."""
    breaching = risk[risk["days_to_breach"].notna()]
    over_by = (breaching["current_p95"] - breaching["threshold"]).where(breaching["over_now"])
    order = pd.DataFrame(
        {
            "days": breaching["days_to_breach"],
            "over_by": -over_by.fillna(0.0),
            "probability": -breaching["breach_probability"],
            "server_id": breaching["server_id"].astype(str),
            "metric": breaching["metric"].astype(str),
        }
    ).sort_values(["days", "over_by", "probability", "server_id", "metric"], kind="mergesort")
    chosen = breaching.loc[order.index[:EARLIEST_BREACHES]].copy()
    if "trust_grade" not in chosen:
        chosen["trust_grade"] = None  # before stage 06 grades the series
    for column in ("current_p95", "threshold"):
        chosen[column] = chosen[column].round(2)
    chosen["breach_probability"] = chosen["breach_probability"].round(4)
    return records(chosen[EARLIEST_BREACH_COLUMNS])


def _thresholds(risk: pd.DataFrame, params: RiskParams) -> dict[str, Any]:
    """The configured defaults and overrides, and the distinct thresholds used per metric."""
    used = risk.groupby("metric")["threshold"].unique()
    return {
        "defaults": {k: float(v) for k, v in params.thresholds.items()},
        "overrides": params.overrides,
        "used": {str(m): sorted(float(v) for v in values) for m, values in used.items()},
    }
