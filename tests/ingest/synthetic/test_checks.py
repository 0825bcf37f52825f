"""check_generated: passes a generated fleet, names every kind of corruption."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.vocabulary import METRICS
from capacity_forecaster.ingest.synthetic import check_generated
from tests.ingest.synthetic.builders import DEFECTS


def test_check_generated_passes_and_summarises(fleet: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    metrics, servers = fleet
    summary = check_generated(metrics, servers, DEFECTS)
    assert summary["rows"] == len(metrics)
    assert summary["servers"] == DEFECTS.n_servers
    assert summary["date_max"] == "2026-06-30"
    assert summary["missing_rows"] == summary["expected_server_days"] - len(metrics)
    assert sum(summary["nan_counts"].values()) == int(metrics[list(METRICS)].isna().sum().sum())


def _out_of_range(
    metrics: pd.DataFrame, servers: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    metrics = metrics.copy()
    metrics.loc[10, "cpu_p95"] = 150.0
    return metrics, servers


def _duplicated_row(
    metrics: pd.DataFrame, servers: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    doubled = pd.concat([metrics, metrics.iloc[[10]]]).sort_values(
        ["server_id", "date"], ignore_index=True
    )
    return doubled, servers


def _dropped_rows(
    metrics: pd.DataFrame, servers: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    return metrics.drop(index=range(100, 140)).reset_index(drop=True), servers


def _unknown_server(
    metrics: pd.DataFrame, servers: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    return metrics, servers.iloc[1:].reset_index(drop=True)


def _extra_nan(metrics: pd.DataFrame, servers: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    metrics = metrics.copy()
    metrics.loc[metrics.index[::50], "mem_p95"] = np.nan
    return metrics, servers


def _string_dates(
    metrics: pd.DataFrame, servers: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    return metrics.assign(date=metrics["date"].dt.strftime("%Y-%m-%d")), servers


def _missing_column(
    metrics: pd.DataFrame, servers: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    return metrics.drop(columns="disk_p95"), servers


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (_out_of_range, r"cpu_p95 outside \[0, 100\]"),
        (_duplicated_row, r"duplicated \(server_id, date\)"),
        (_dropped_rows, r"rows, expected"),
        (_unknown_server, r"not in servers"),
        (_extra_nan, r"NaN values"),
        (_string_dates, r"date has dtype"),
        (_missing_column, r"missing columns \['disk_p95'\]"),
    ],
)
def test_check_generated_catches_corruption(
    fleet: tuple[pd.DataFrame, pd.DataFrame],
    corrupt: Callable[[pd.DataFrame, pd.DataFrame], tuple[pd.DataFrame, pd.DataFrame]],
    message: str,
) -> None:
    metrics, servers = corrupt(*fleet)
    with pytest.raises(StageCheckError, match=message):
        check_generated(metrics, servers, DEFECTS)
