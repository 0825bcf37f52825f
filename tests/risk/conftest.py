"""The stage 06 test fleet, shared by the tests of every risk module."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.core.params import RiskParams
from capacity_forecaster.risk import assess
from tests.risk.builders import HORIZON, INTERVAL, champion_series, flat_history, inventory


@pytest.fixture
def fleet() -> dict:
    """s1 grows linearly across 80 % cpu; s2 is flat at 30 %; s3 is critical and near its bound."""
    h = np.arange(1, HORIZON + 1, dtype=float)
    forecasts = pd.concat(
        [
            champion_series("s1", "cpu_p95", 60 + 0.5 * h),  # crosses 80 at h = 40, upper at h = 30
            champion_series("s2", "cpu_p95", np.full(HORIZON, 30.0)),
            champion_series("s2", "mem_p95", np.full(HORIZON, 40.0)),
            champion_series("s3", "cpu_p95", np.full(HORIZON, 66.0)),  # critical: threshold 70
        ],
        ignore_index=True,
    )
    series = [("s1", "cpu_p95"), ("s2", "cpu_p95"), ("s2", "mem_p95"), ("s3", "cpu_p95")]
    params = RiskParams(overrides={"criticality": {"critical": {"cpu_p95": 70}}})
    servers = inventory({"s1": "medium", "s2": "low", "s3": "critical"})
    risk = assess.assess_risk(forecasts, flat_history(series), servers, params, INTERVAL)
    return {"forecasts": forecasts, "servers": servers, "params": params, "risk": risk}
