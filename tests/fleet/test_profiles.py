"""Stage 07, step 1: utilisation features per server."""

from __future__ import annotations

import numpy as np
import pytest

from capacity_forecaster.fleet import profiles
from tests.fleet.builders import make_history


def test_features_known_values_over_lookback() -> None:
    history = make_history(
        {"a": {"cpu_p95": 10.0, "cpu_p95_slope": 0.1, "noise": 0.0, "mem_p95": 40.0}},
        days=120,
    )
    features = profiles.utilisation_features(history, lookback_days=60)
    row = features.set_index("server_id").loc["a"]
    assert list(features.columns) == ["server_id", *profiles.FEATURE_COLUMNS]
    assert row["cpu_growth"] == pytest.approx(3.0)  # 0.1 points a day
    assert row["mem_growth"] == pytest.approx(0.0, abs=1e-9)
    last60 = 10.0 + 0.1 * np.arange(60, 120)
    assert row["cpu_mean"] == pytest.approx(last60.mean())
    assert row["cpu_p95"] == pytest.approx(np.percentile(last60, 95))
    assert row["cpu_volatility"] == pytest.approx(last60.std(ddof=1))
