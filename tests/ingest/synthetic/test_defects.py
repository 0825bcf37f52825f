"""Injected defects: exact missing rows and NaN counts, multi-day gaps, one-day outliers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.core.vocabulary import METRICS
from tests.ingest.synthetic.builders import CLEAN, DEFECTS, expected_server_days


def test_row_counts_with_defects(fleet: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    metrics, servers = fleet
    expected = expected_server_days(servers, DEFECTS)
    missing = round(DEFECTS.missing_share * expected)
    assert len(metrics) == expected - missing
    nan = int(metrics[list(METRICS)].isna().sum().sum())
    assert nan == round(DEFECTS.missing_share / 10 * len(metrics))
    assert (
        metrics[list(METRICS)].isna().sum(axis=1).max() == 1
    )  # single-metric NaN, never a blank row
    assert metrics[["date", "server_id"]].notna().all().all()


def test_gaps_include_multi_day_outages(fleet: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    steps = fleet[0].groupby("server_id")["date"].diff().dt.days.dropna()
    assert (steps > 1).any()  # some gaps
    assert (steps > 2).any()  # some of them longer than one day


def test_outliers_are_one_day_extremes(
    fleet: tuple[pd.DataFrame, pd.DataFrame], clean_fleet: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    # Defects are injected after the series are drawn, so the same seed without defects shows
    # exactly which values the outliers replaced.
    both = fleet[0].merge(clean_fleet[0], on=["server_id", "date"], suffixes=("", "_clean"))
    assert len(both) == len(fleet[0])
    dirty = both[list(METRICS)].to_numpy()
    clean = both[[f"{m}_clean" for m in METRICS]].to_numpy()
    replaced = ~np.isnan(dirty) & (dirty != clean)
    assert replaced.sum() == pytest.approx(DEFECTS.outlier_share * dirty.size, rel=0.1)
    assert ((dirty[replaced] == 0) | (dirty[replaced] >= 97)).all()


def test_no_defects_means_no_gaps_and_no_nan(
    clean_fleet: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    metrics, servers = clean_fleet
    assert len(metrics) == expected_server_days(servers, CLEAN)
    assert not metrics[list(METRICS)].isna().any().any()
    assert (metrics.groupby("server_id")["date"].diff().dropna() == pd.Timedelta(days=1)).all()
