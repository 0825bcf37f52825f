"""Stage 06 thresholds: the strictest of the default and the matching overrides."""

from __future__ import annotations

from capacity_forecaster.core.params import RiskParams
from capacity_forecaster.risk import thresholds
from tests.risk.builders import inventory, row_of


def test_critical_override_makes_the_threshold_stricter(fleet: dict) -> None:
    table = thresholds.thresholds_for(fleet["servers"], fleet["params"]).set_index(
        ["server_id", "metric"]
    )
    assert table.loc[("s3", "cpu_p95"), "threshold"] == 70
    assert table.loc[("s2", "cpu_p95"), "threshold"] == 80
    assert table.loc[("s3", "mem_p95"), "threshold"] == 85  # no override for memory
    row = row_of(fleet["risk"], "s3")  # 66 % with upper bound 71 % crosses only the stricter bound
    assert row["threshold"] == 70
    assert row["days_to_breach_upper"] == 1
    assert row["risk_level"] == "medium"


def test_strictest_applicable_threshold_wins() -> None:
    params = RiskParams(
        overrides={
            "criticality": {"critical": {"cpu_p95": 75}},
            "environment": {"prod": {"cpu_p95": 70}, "dev": {"cpu_p95": 95}},
        }
    )
    servers = inventory({"a": "critical", "b": "low"}).assign(environment=["prod", "dev"])
    table = thresholds.thresholds_for(servers, params).set_index(["server_id", "metric"])
    assert table.loc[("a", "cpu_p95"), "threshold"] == 70
    assert table.loc[("b", "cpu_p95"), "threshold"] == 80  # a looser override never relaxes
    assert len(table) == 2 * 3
