"""Stage 03 (ETL): validated metrics -> cleaned series with calendar and lag features.

The chain is ``grid.to_long`` (a complete daily grid per server x metric) ->
``clean.clean_series`` (outliers replaced, short gaps interpolated; the business calendar's
holidays and rare windows protected) ->
``calendar_features.add_calendar_features`` -> ``lag_features.add_lag_features`` -> keep the
days with a value (observed, or imputed inside a short gap). No valid day is dropped to warm
up the lag and rolling columns: they are empty where their window is incomplete, since no
later stage reads them (the tree models build their own features from the series).
``build_features`` runs it; ``check_features`` asserts the stage's post-conditions. Plain
functions on frames; no I/O.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from capacity_forecaster.cleaning.calendar_features import CALENDAR_COLUMNS, add_calendar_features
from capacity_forecaster.cleaning.clean import VALUE_COLUMNS, clean_series
from capacity_forecaster.cleaning.grid import KEY_COLUMNS, to_long
from capacity_forecaster.cleaning.lag_features import add_lag_features, lag_columns
from capacity_forecaster.core import catalog
from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.params import FeatureParams
from capacity_forecaster.core.params_calendar import CalendarParams
from capacity_forecaster.core.vocabulary import METRICS, SERIES_KEY

logger = logging.getLogger(__name__)

# For callers without a params file (tests, benchmarks): the calendar's default windows.
DEFAULT_CALENDAR = CalendarParams()

BOOL_COLUMNS = ("is_outlier", "is_imputed", "is_weekend", "is_holiday")
WHERE = catalog.FEATURES.key


def feature_columns(params: FeatureParams) -> list[str]:
    """The model feature columns (calendar, then lags and rolling stats) for ``params``."""
    return [*CALENDAR_COLUMNS, *lag_columns(params.lags, params.rolling_windows)]


def output_columns(params: FeatureParams) -> list[str]:
    """Every column of processed/features.parquet, in order."""
    return [*KEY_COLUMNS, *VALUE_COLUMNS, *feature_columns(params)]


def build_features(
    metrics: pd.DataFrame,
    servers: pd.DataFrame,
    params: FeatureParams,
    calendar: CalendarParams = DEFAULT_CALENDAR,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Stage 03: metrics + servers -> (features, summary), with ``calendar`` (``params.calendar``)
    for the calendar columns and the days cleaning protects.

    Days without a value (inside gaps longer than ``impute_limit_days``, which are not
    imputed) are left out; every observed day is kept. Summary counts are over the long grid: rows_in (grid rows), rows_out,
    dropped_rows, missing (NaN days on the grid), outliers, imputed, and the same by metric.
    """
    began = time.perf_counter()
    long = to_long(metrics)
    frame = clean_series(long, params, servers, calendar)
    frame = add_calendar_features(frame, servers, calendar)
    frame = add_lag_features(frame, params.lags, params.rolling_windows)

    complete = np.isfinite(frame["value"].to_numpy(dtype=np.float64, na_value=np.nan))
    features = frame.loc[complete, output_columns(params)].reset_index(drop=True)
    summary = _summary(metrics, frame, complete, features, params)
    logger.info(
        "build_features: %d grid rows -> %d rows x %d columns (%d left out: inside gaps > %d days) "
        "in %.1fs",
        summary["rows_in"],
        features.shape[0],
        features.shape[1],
        summary["dropped_rows"],
        params.impute_limit_days,
        time.perf_counter() - began,
    )
    return features, summary


def check_features(
    features: pd.DataFrame, params: FeatureParams, monitored: Sequence[str] = METRICS
) -> None:
    """Stage 03 post-conditions; raises StageCheckError listing every failure.

    Non-empty; every expected column; boolean flags as bool; no NaN or inf in any numeric
    column (``value_raw`` may be NaN exactly on imputed rows, where no value was observed; the
    lag and rolling columns where their window is incomplete);
    unique (server_id, metric, date); every ``monitored`` metric present.
    """
    if features.empty:
        raise StageCheckError(f"{WHERE}: no rows")
    missing = [c for c in output_columns(params) if c not in features.columns]
    if missing:
        raise StageCheckError(f"{WHERE}: missing column(s): {', '.join(missing)}")

    problems = [
        f"column {name} has dtype {features[name].dtype}, expected bool"
        for name in BOOL_COLUMNS
        if features[name].dtype != bool
    ]
    problems += _number_problems(features, set(lag_columns(params.lags, params.rolling_windows)))
    duplicates = int(features.duplicated(list(KEY_COLUMNS)).sum())
    if duplicates:
        problems.append(f"{duplicates} duplicate (server_id, metric, date) row(s)")
    absent = sorted(set(monitored) - set(features["metric"].astype(str).unique()))
    if absent:
        problems.append(f"metric(s) absent: {', '.join(absent)}")
    if problems:
        raise StageCheckError(f"{WHERE}: " + "; ".join(problems))
    logger.info("check_features: %d rows x %d columns ok", *features.shape)


def _number_problems(features: pd.DataFrame, may_be_empty: set[str]) -> list[str]:
    """NaN (``value_raw`` aside on imputed rows, and ``may_be_empty`` columns) and infinite
    values in numeric columns."""
    problems = []
    imputed = features["is_imputed"].to_numpy(dtype=bool)
    for name in features.select_dtypes(include="number").columns:
        values = features[name].to_numpy(dtype=np.float64, na_value=np.nan)
        nan = np.isnan(values)
        if name == "value_raw":
            nan &= ~imputed
        elif name in may_be_empty:
            nan[:] = False
        if nan.any():
            problems.append(f"column {name} has {int(nan.sum())} NaN value(s)")
        inf = np.isinf(values)
        if inf.any():
            problems.append(f"column {name} has {int(inf.sum())} infinite value(s)")
    return problems


def _summary(
    metrics: pd.DataFrame,
    frame: pd.DataFrame,
    complete: np.ndarray,
    features: pd.DataFrame,
    params: FeatureParams,
) -> dict[str, Any]:
    """The JSON-ready summary of ``build_features``: counts over the long grid ``frame``, in
    total and by metric, and the kept rows' servers, series, dates and feature columns."""
    counts = pd.DataFrame(
        {
            "metric": frame["metric"],
            "rows_in": 1,
            "rows_out": complete,
            "missing": frame["value_raw"].isna(),
            "outliers": frame["is_outlier"],
            "imputed": frame["is_imputed"],
        }
    )
    by_metric = (
        counts.groupby("metric").sum().reindex(sorted(METRICS), fill_value=0).astype(np.int64)
    )
    by_metric["dropped_rows"] = by_metric["rows_in"] - by_metric["rows_out"]
    totals = by_metric.sum()
    return {
        "input_rows": len(metrics),
        "rows_in": int(totals.get("rows_in", 0)),
        "rows_out": len(features),
        "dropped_rows": int(totals.get("dropped_rows", 0)),
        "missing": int(totals.get("missing", 0)),
        "outliers": int(totals.get("outliers", 0)),
        "imputed": int(totals.get("imputed", 0)),
        "servers": int(features["server_id"].nunique()),
        "series": int(features.groupby(list(SERIES_KEY)).ngroups) if len(features) else 0,
        "date_min": features["date"].min().date().isoformat() if len(features) else None,
        "date_max": features["date"].max().date().isoformat() if len(features) else None,
        "feature_columns": feature_columns(params),
        "by_metric": {
            str(metric): {key: int(value) for key, value in row.items()}
            for metric, row in by_metric.to_dict(orient="index").items()
        },
    }
