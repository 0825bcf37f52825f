"""generate_fleet: deterministic by seed, complete at the default size."""

from __future__ import annotations

import numpy as np
import pandas as pd

from capacity_forecaster.core.params import SyntheticParams
from capacity_forecaster.ingest.synthetic import check_generated, generate_fleet
from tests.ingest.synthetic.builders import DEFECTS, expected_server_days


def test_same_seed_gives_identical_frames(fleet: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    metrics, servers = generate_fleet(DEFECTS, seed=11)
    pd.testing.assert_frame_equal(metrics, fleet[0])
    pd.testing.assert_frame_equal(servers, fleet[1])


def test_different_seed_gives_different_frames(fleet: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    metrics, servers = generate_fleet(DEFECTS, seed=12)
    assert not servers.equals(fleet[1])
    assert len(metrics) != len(fleet[0]) or not np.allclose(
        metrics["cpu_p95"].fillna(-1), fleet[0]["cpu_p95"].fillna(-1)
    )


def test_default_size_fleet_is_complete() -> None:
    """Size sanity, no timing: a two-year fleet has one row per server-day minus its gaps."""
    params = SyntheticParams(n_servers=150, days=730)
    metrics, servers = generate_fleet(params, seed=42)
    expected = expected_server_days(servers, params)
    assert len(metrics) == expected - round(params.missing_share * expected)
    assert 0.9 * 150 * 730 < len(metrics) <= 150 * 730
    assert metrics["server_id"].nunique() == 150
    assert metrics.memory_usage(deep=True).sum() < 100 * len(metrics)  # compact: no object columns
    check_generated(metrics, servers, params)
