"""The server inventory: contract columns, CMDB-like attributes, commissioning in the window."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from capacity_forecaster.core.calendar import country_for_region
from capacity_forecaster.ingest.synthetic import generate_servers
from capacity_forecaster.ingest.synthetic.inventory import SERVER_COLUMNS
from tests.ingest.synthetic.builders import DEFECTS


def test_servers_contract(fleet: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    servers = fleet[1]
    expected = ["server_id", "business_unit", "region", "environment", "criticality"]
    expected += ["cpu_cores", "memory_gb", "disk_gb", "monthly_cost_usd", "hostname", "country"]
    expected += ["platform", "os", "commissioned_date"]
    assert set(expected) <= set(servers.columns)
    assert list(servers.columns) == list(SERVER_COLUMNS)
    assert len(servers) == DEFECTS.n_servers and servers["server_id"].is_unique
    assert servers["server_id"].str.fullmatch(r"srv-\d{5}").all()
    assert servers["hostname"].is_unique
    assert all(
        re.fullmatch(r"[a-z]{3}-(prod|stg|dev|tst)-[a-z]+\d-\d{4}", h) for h in servers["hostname"]
    )
    assert (servers["country"] == servers["region"].map(country_for_region)).all()
    assert servers["environment"].isin(["prod", "staging", "dev", "test"]).all()
    assert servers["platform"].isin(["on-prem", "aws", "azure"]).all()
    for column in ("cpu_cores", "memory_gb", "disk_gb"):
        assert pd.api.types.is_integer_dtype(servers[column])
    assert servers["cpu_cores"].between(2, 64).all()
    assert (servers["memory_gb"] / servers["cpu_cores"]).isin([2, 4, 8]).all()
    assert (
        servers["monthly_cost_usd"].dtype == np.float64 and (servers["monthly_cost_usd"] > 0).all()
    )
    assert servers["commissioned_date"].dtype == np.dtype("datetime64[ns]")


def test_criticality_follows_environment() -> None:
    servers = generate_servers(400, np.random.default_rng(3))
    non_prod = servers[servers["environment"].isin(["dev", "test"])]
    assert len(non_prod) > 0 and not (non_prod["criticality"] == "critical").any()
    assert servers["environment"].value_counts().idxmax() == "prod"
    # Bigger boxes cost more.
    assert servers["monthly_cost_usd"].corr(servers["cpu_cores"]) > 0.5


def test_some_servers_are_commissioned_inside_the_window(
    clean_fleet: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    metrics, servers = clean_fleet
    start = metrics["date"].min()
    late = servers[servers["commissioned_date"] > start]
    assert 1 <= len(late) <= 0.1 * len(servers) + 1
    first_seen = metrics.groupby("server_id")["date"].min()
    history = metrics.groupby("server_id").size()
    for server_id, commissioned in late.set_index("server_id")["commissioned_date"].items():
        assert first_seen[server_id] == commissioned
        assert history[server_id] >= 120
