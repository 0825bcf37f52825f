"""Checks on the products stage 08 reads: each failure names the product and what it lacks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.vocabulary import RISK_LEVELS

__all__ = ["RISK_REQUIRED", "check_levels", "require_columns", "require_keys"]

# The risk/risk.parquet columns the headline and the at-risk table read.
RISK_REQUIRED = (
    "urgency_rank",
    "server_id",
    "metric",
    "risk_level",
    "over_now",
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


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise StageCheckError naming the columns of ``columns`` that ``frame`` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise StageCheckError(f"08_report: {what} lacks column(s) {missing}")


def require_keys(mapping: Mapping[str, Any], keys: Sequence[str], what: str) -> None:
    """Raise StageCheckError when ``mapping`` is no dict or lacks any of ``keys``."""
    if not isinstance(mapping, Mapping):
        raise StageCheckError(f"08_report: {what} is {type(mapping).__name__}, expected a dict")
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise StageCheckError(f"08_report: {what} lacks key(s) {missing}")


def check_levels(risk: pd.DataFrame) -> None:
    """Every series of risk/risk.parquet has one of ``RISK_LEVELS``."""
    unknown = sorted(set(risk["risk_level"].dropna().astype(str)) - set(RISK_LEVELS))
    if unknown or risk["risk_level"].isna().any():
        shown = unknown or ["<missing>"]
        raise StageCheckError(
            f"08_report: risk/risk.parquet column risk_level has values {shown}, "
            f"expected only {list(RISK_LEVELS)}"
        )
