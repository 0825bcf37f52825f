"""The daily metrics table: contract columns and dtypes, percentages, standalone use."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.core.contract import METRIC_COLUMNS
from capacity_forecaster.core.vocabulary import METRICS
from capacity_forecaster.ingest.synthetic import generate_metrics, generate_servers
from tests.ingest.synthetic.builders import DEFECTS


def test_metrics_contract(fleet: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    metrics, servers = fleet
    assert list(metrics.columns) == list(METRIC_COLUMNS)
    assert metrics["date"].dtype == np.dtype("datetime64[ns]")
    assert (metrics["date"] == metrics["date"].dt.normalize()).all()
    assert pd.api.types.is_string_dtype(metrics["server_id"])
    assert all(metrics[m].dtype == np.float64 for m in METRICS)
    assert not metrics.duplicated(["server_id", "date"]).any()
    assert metrics.equals(metrics.sort_values(["server_id", "date"], ignore_index=True))
    assert set(metrics["server_id"]) == set(servers["server_id"])
    assert metrics["date"].max() == pd.Timestamp(DEFECTS.end_date)
    assert metrics["date"].min() == pd.Timestamp(DEFECTS.end_date) - pd.Timedelta(
        days=DEFECTS.days - 1
    )


def test_metric_values_are_percentages(fleet: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    values = fleet[0][list(METRICS)].to_numpy()
    present = values[~np.isnan(values)]
    assert present.min() >= 0 and present.max() <= 100
    assert not np.isinf(values).any()


def test_standalone_servers_and_metrics() -> None:
    rng = np.random.default_rng(0)
    servers = generate_servers(5, rng)
    metrics = generate_metrics(
        servers, dt.date(2026, 3, 31), 30, rng, outlier_share=0.0, missing_share=0.0
    )
    assert len(metrics) == 5 * 30 and not metrics[list(METRICS)].isna().any().any()
    assert metrics["date"].max() == pd.Timestamp("2026-03-31")


def test_metrics_refuse_servers_commissioned_after_the_window() -> None:
    rng = np.random.default_rng(0)
    servers = generate_servers(3, rng).assign(
        commissioned_date=pd.Timestamp("2030-01-01").as_unit("ns")
    )
    with pytest.raises(ValueError, match="commissioned after the window"):
        generate_metrics(
            servers, dt.date(2026, 3, 31), 30, rng, outlier_share=0.0, missing_share=0.0
        )
