"""Stage 01's post-conditions on its own products: contract columns and dtypes, keys, ranges,
and exactly the rows and NaN values the defect budgets predict."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from capacity_forecaster.core.contract import (
    METRIC_COLUMNS,
    SERVER_CAPACITY_COLUMNS,
)
from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.params import SyntheticParams
from capacity_forecaster.core.vocabulary import METRICS, MetricName
from capacity_forecaster.ingest.synthetic.defects import expected_rows, nan_target
from capacity_forecaster.ingest.synthetic.inventory import SERVER_COLUMNS
from capacity_forecaster.ingest.synthetic.metrics import window

logger = logging.getLogger(__name__)

WHERE = "stage 01 (synth)"


def check_generated(
    metrics: pd.DataFrame, servers: pd.DataFrame, params: SyntheticParams
) -> dict[str, Any]:
    """Assert stage 01's post-conditions; raise StageCheckError naming every failure.

    Returns a small JSON-ready summary (rows, servers, date range, missing rows, NaN counts).
    """
    for frame, name, columns in (
        (metrics, "metrics", METRIC_COLUMNS),
        (servers, "servers", SERVER_COLUMNS),
    ):
        if absent := [c for c in columns if c not in frame.columns]:
            raise StageCheckError(f"{WHERE}: {name} is missing columns {absent}")
    if failures := _dtype_failures(metrics, servers):  # the checks below rely on the dtypes
        raise StageCheckError(f"{WHERE}: " + "; ".join(failures))

    dates = window(params.end_date, params.days)
    failures = [
        *_server_failures(servers),
        *_key_failures(metrics, servers, dates),
        *_range_failures(metrics),
    ]
    expected, missing_rows = expected_rows(servers, dates, params.missing_share)
    nan_counts = {name: int(np.isnan(metrics[name].to_numpy()).sum()) for name in METRICS}
    failures += _count_failures(
        len(metrics), expected, missing_rows, nan_counts, params.missing_share
    )
    if failures:
        raise StageCheckError(f"{WHERE}: " + "; ".join(failures))
    summary = {
        "rows": len(metrics),
        "servers": int(metrics["server_id"].nunique()),
        "date_min": f"{metrics['date'].min():%Y-%m-%d}",
        "date_max": f"{metrics['date'].max():%Y-%m-%d}",
        "expected_server_days": expected,
        "missing_rows": missing_rows,
        "nan_counts": nan_counts,
        "commissioned_in_window": int((servers["commissioned_date"] > dates[0]).sum()),
    }
    logger.info("stage 01 check passed: %s", summary)
    return summary


def _dtype_failures(metrics: pd.DataFrame, servers: pd.DataFrame) -> list[str]:
    """Contract dtypes: naive datetime64[ns] dates, string ids, float64 metrics, int sizes."""
    failures = []
    if metrics["date"].dtype != np.dtype("datetime64[ns]"):
        failures.append(
            f"metrics: date has dtype {metrics['date'].dtype}, expected datetime64[ns] (naive)"
        )
    for frame, name in ((metrics, "metrics"), (servers, "servers")):
        if not pd.api.types.is_string_dtype(frame["server_id"]):
            failures.append(f"{name}: server_id has dtype {frame['server_id'].dtype}, expected str")
    failures += [
        f"metrics: {m} has dtype {metrics[m].dtype}, expected float64"
        for m in METRICS
        if metrics[m].dtype != np.float64
    ]
    failures += [
        f"servers: {c} has dtype {servers[c].dtype}, expected integers"
        for c in SERVER_CAPACITY_COLUMNS
        if not pd.api.types.is_integer_dtype(servers[c])
    ]
    if not pd.api.types.is_datetime64_dtype(servers["commissioned_date"]):
        failures.append(
            f"servers: commissioned_date has dtype {servers['commissioned_date'].dtype}, expected datetime64"
        )
    return failures


def _server_failures(servers: pd.DataFrame) -> list[str]:
    """server_id unique and set, commissioned_date set."""
    failures = []
    if servers["server_id"].isna().any() or servers["server_id"].duplicated().any():
        failures.append(
            f"servers: server_id has {servers['server_id'].duplicated().sum()} duplicates or NaN"
        )
    if servers["commissioned_date"].isna().any():
        failures.append("servers: commissioned_date has NaN")
    return failures


def _key_failures(
    metrics: pd.DataFrame, servers: pd.DataFrame, dates: pd.DatetimeIndex
) -> list[str]:
    """Dates daily and inside the window, (server_id, date) unique and sorted, ids known."""
    if metrics["server_id"].isna().any() or metrics["date"].isna().any():
        return ["metrics: server_id or date has NaN"]
    offsets = metrics["date"].to_numpy() - dates[0].to_datetime64()
    day, remainder = np.divmod(offsets, np.timedelta64(1, "D"))
    day = day.astype(np.int64)
    failures = []
    if (remainder != np.timedelta64(0)).any():
        failures.append(
            f"metrics: {(remainder != np.timedelta64(0)).sum()} dates are not normalised to midnight"
        )
    if ((day < 0) | (day >= len(dates))).any():
        failures.append(
            f"metrics: dates span {metrics['date'].min():%Y-%m-%d}..{metrics['date'].max():%Y-%m-%d}, "
            f"outside the window {dates[0]:%Y-%m-%d}..{dates[-1]:%Y-%m-%d}"
        )
    codes, uniques = pd.factorize(metrics["server_id"])
    ids = np.asarray(uniques, dtype=object)
    key = codes.astype(np.int64) * (len(dates) + 1) + day
    if not (np.all(np.diff(key) > 0) and np.all(ids[1:] > ids[:-1])):
        failures.append(_order_failure(metrics))
    return failures + _id_failures(ids, servers)


def _order_failure(metrics: pd.DataFrame) -> str:
    """Why rows are out of (server_id, date) order: duplicates, or just unsorted."""
    duplicated = metrics.duplicated(["server_id", "date"])
    if duplicates := int(duplicated.sum()):
        example = metrics[duplicated].iloc[0]
        return (
            f"metrics: {duplicates} duplicated (server_id, date) rows "
            f"(e.g. {example['server_id']} on {example['date']:%Y-%m-%d})"
        )
    return "metrics: rows are not sorted by server_id, date"


def _id_failures(ids: np.ndarray, servers: pd.DataFrame) -> list[str]:
    """Every measured server described, every described server measured."""
    failures = []
    known = set(servers["server_id"])
    if unknown := [s for s in ids if s not in known]:
        failures.append(
            f"metrics: {len(unknown)} server_id values not in servers (e.g. {unknown[:3]})"
        )
    if silent := len(known - set(ids)):
        failures.append(f"metrics: {silent} servers have no metric rows")
    return failures


def _range_failures(metrics: pd.DataFrame) -> list[str]:
    """Metric values (NaN aside) inside [0, 100]."""
    failures = []
    for name in METRICS:
        column = metrics[name].to_numpy()
        bad = np.flatnonzero(~np.isnan(column) & ((column < 0) | (column > 100)))
        if len(bad):
            row = metrics.iloc[bad[0]]
            failures.append(
                f"metrics: {len(bad)} values of {name} outside [0, 100] "
                f"(e.g. {row['server_id']} on {row['date']:%Y-%m-%d}: {row[name]})"
            )
    return failures


def _count_failures(
    rows: int,
    expected: int,
    missing_rows: int,
    nan_counts: dict[MetricName, int],
    missing_share: float,
) -> list[str]:
    """Exactly the server-days minus the injected gaps, and about the injected NaN count."""
    failures = []
    if rows != expected - missing_rows:
        failures.append(
            f"metrics: {rows} rows, expected {expected - missing_rows} "
            f"({expected} server-days minus {missing_rows} injected gaps)"
        )
    expected_nan = nan_target(rows, missing_share)
    tolerance = max(2, round(0.1 * expected_nan))
    if abs(sum(nan_counts.values()) - expected_nan) > tolerance:
        failures.append(
            f"metrics: {sum(nan_counts.values())} NaN values {nan_counts}, expected {expected_nan} +- {tolerance}"
        )
    return failures
