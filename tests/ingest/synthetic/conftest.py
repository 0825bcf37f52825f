"""Fleets generated once for the whole synthetic test package (the tests never modify them)."""

from __future__ import annotations

import pandas as pd
import pytest

from capacity_forecaster.ingest.synthetic import generate_fleet
from tests.ingest.synthetic.builders import CLEAN, DEFECTS, PATTERNS


@pytest.fixture(scope="package")
def fleet() -> tuple[pd.DataFrame, pd.DataFrame]:
    return generate_fleet(DEFECTS, seed=11)


@pytest.fixture(scope="package")
def clean_fleet() -> tuple[pd.DataFrame, pd.DataFrame]:
    return generate_fleet(CLEAN, seed=11)


@pytest.fixture(scope="package")
def pattern_fleet() -> pd.DataFrame:
    metrics, servers = generate_fleet(PATTERNS, seed=5)
    return metrics.merge(servers[["server_id", "business_unit", "environment"]], on="server_id")
