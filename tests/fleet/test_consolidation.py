"""Stage 07, step 4: consolidation onto fewer hosts, its invariants and savings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.fleet import consolidation


def sizing_frame(rows: list[dict]) -> pd.DataFrame:
    """A right-sizing frame with just the columns consolidation needs."""
    base = {
        "environment": "dev",
        "criticality": "low",
        "business_unit": "Payments",
        "region": "eu-west",
        "cpu_cores": 16,
        "memory_gb": 64,
        "monthly_cost_usd": 1000.0,
        "peak_cpu_share": 0.1,
        "peak_mem_share": 0.1,
        "finding": "over-provisioned",
        "recommended_cores": 4,
        "recommended_memory_gb": 16,
        "action": "downsize",
        "monthly_savings_usd": 500.0,
    }
    return pd.DataFrame([{**base, **row} for row in rows])


def random_sizing(seed: int, n: int = 80) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    finding = rng.choice(["over-provisioned", "idle", "optimal", "under-provisioned"], n)
    cost = rng.uniform(100, 3000, n).round(2)
    return sizing_frame(
        [
            {
                "server_id": f"s{i:03d}",
                "environment": rng.choice(["prod", "staging", "dev", "test"]),
                "criticality": rng.choice(["critical", "high", "medium", "low"]),
                "cpu_cores": int(rng.choice([2, 4, 8, 16, 32, 64])),
                "memory_gb": int(rng.choice([8, 16, 32, 64, 128, 256])),
                "peak_cpu_share": rng.uniform(0, 0.45),
                "peak_mem_share": rng.uniform(0, 0.8),
                "finding": finding[i],
                "monthly_cost_usd": cost[i],
                "monthly_savings_usd": cost[i] * rng.uniform(0, 1)
                if finding[i] == "over-provisioned"
                else (cost[i] if finding[i] == "idle" else 0.0),
            }
            for i in range(n)
        ]
    )


def test_four_small_servers_pack_onto_one_host() -> None:
    sizing = sizing_frame([{"server_id": f"d{i}"} for i in range(4)])
    placement, summary = consolidation.consolidate(sizing, 0.7, consolidate_critical=False)
    assert placement["host_server_id"].nunique() == 1
    assert int(placement["freed"].sum()) == 3
    host = placement["host_server_id"].iloc[0]
    assert not placement.set_index("server_id").loc[host, "freed"]
    assert summary["total"] == {
        "servers_considered": 4,
        "hosts_kept": 1,
        "servers_freed": 3,
        "monthly_savings_usd": 3000.0,
        "max_cpu_load": 0.4,
        "max_memory_load": 0.4,
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("target", [0.5, 0.7, 0.9])
@pytest.mark.parametrize("allow_critical", [False, True])
def test_consolidation_invariants(seed: int, target: float, allow_critical: bool) -> None:
    sizing = random_sizing(seed)
    placement, summary = consolidation.consolidate(
        sizing, target, consolidate_critical=allow_critical
    )
    frame = placement.merge(sizing, on="server_id")
    assert len(placement) == len(sizing) and placement["server_id"].is_unique

    considered = frame[frame["considered"]]
    assert set(considered["finding"]) <= {"over-provisioned"}  # idle: decommissioned instead
    info = sizing.set_index("server_id")
    hosts = info.loc[considered["host_server_id"]]
    # never mixes environments (nor criticality tiers)
    assert (hosts["environment"].to_numpy() == considered["environment"].to_numpy()).all()
    assert (hosts["criticality"].to_numpy() == considered["criticality"].to_numpy()).all()
    # no host beyond target, in cores and in memory
    load = considered.groupby("host_server_id")[["demand_cores", "demand_memory_gb"]].sum()
    cap = info.loc[load.index]
    assert (load["demand_cores"] <= target * cap["cpu_cores"] + 1e-6).all()
    assert (load["demand_memory_gb"] <= target * cap["memory_gb"] + 1e-6).all()
    # a freed server hosts nothing; a non-freed considered server hosts itself
    freed = set(considered.loc[considered["freed"], "server_id"])
    assert not freed & set(considered["host_server_id"])
    kept = considered[~considered["freed"]]
    assert (kept["host_server_id"] == kept["server_id"]).all()
    # not considered: untouched
    rest = frame[~frame["considered"]]
    assert (rest["host_server_id"] == rest["server_id"]).all() and not rest["freed"].any()

    critical = frame[frame["criticality"] == "critical"]
    if allow_critical:
        assert not (critical["excluded_reason"] == "critical tier").any()
    else:
        assert not critical["considered"].any() and not critical["freed"].any()

    # savings: each freed server's cost once; total = consolidation + right-sizing of the rest
    assert summary["consolidation_savings_usd"] == pytest.approx(
        frame.loc[frame["freed"], "monthly_cost_usd"].sum(), abs=0.01
    )
    hosting = set(considered.loc[considered["freed"], "host_server_id"])
    counted = ~frame["freed"] & ~frame["server_id"].isin(hosting)
    assert summary["right_sizing_savings_usd"] == pytest.approx(
        frame.loc[counted, "monthly_savings_usd"].sum(), abs=0.01
    )
    assert summary["total_savings_usd"] == pytest.approx(
        summary["consolidation_savings_usd"] + summary["right_sizing_savings_usd"], abs=0.01
    )
    assert sum(g["servers_freed"] for g in summary["groups"].values()) == len(freed)
    # per server, the saving as counted: reports and charts sum these, never recount
    assert frame["counted_savings_usd"].sum() == pytest.approx(
        summary["total_savings_usd"], abs=0.01
    )
    assert (frame.loc[frame["freed"], "saving_kind"] == "consolidation").all()
    assert (frame.loc[frame["server_id"].isin(hosting), "counted_savings_usd"] == 0).all()
    assert summary["total"]["max_cpu_load"] <= target + 1e-6
    assert summary["total"]["max_memory_load"] <= target + 1e-6
    json.dumps(summary, allow_nan=False)


def test_critical_servers_untouched_unless_allowed() -> None:
    sizing = sizing_frame(
        [{"server_id": f"c{i}", "environment": "prod", "criticality": "critical"} for i in range(3)]
        + [{"server_id": "p0", "environment": "prod", "criticality": "high"}]
    )
    placement, summary = consolidation.consolidate(sizing, 0.7, consolidate_critical=False)
    crit = placement[placement["server_id"].str.startswith("c")]
    assert not crit["considered"].any() and not crit["freed"].any()
    assert (crit["excluded_reason"] == "critical tier").all()
    assert summary["total"]["servers_freed"] == 0

    placement, summary = consolidation.consolidate(sizing, 0.7, consolidate_critical=True)
    crit = placement[placement["server_id"].str.startswith("c")]
    assert crit["considered"].all() and int(crit["freed"].sum()) == 2
    assert set(crit["host_server_id"]) <= set(crit["server_id"])  # critical stays with critical
    assert summary["groups"]["prod/critical/eu-west"]["servers_freed"] == 2


def test_environments_never_mix_even_when_it_would_pack_tighter() -> None:
    sizing = sizing_frame(
        [{"server_id": "dev0", "environment": "dev"}, {"server_id": "tst0", "environment": "test"}]
    )
    placement, summary = consolidation.consolidate(sizing, 0.7, consolidate_critical=False)
    assert not placement["freed"].any()
    assert summary["total"]["hosts_kept"] == 2


def test_an_idle_server_is_never_the_host_of_others() -> None:
    """The biggest server of a group, idle, was once kept as the host the others moved onto
    while also listed for decommissioning."""
    sizing = sizing_frame(
        [
            {"server_id": "idle-big", "cpu_cores": 64, "memory_gb": 256, "finding": "idle"},
            *({"server_id": f"d{i}"} for i in range(3)),
        ]
    )
    placement, _ = consolidation.consolidate(sizing, 0.7, consolidate_critical=False)
    plan = placement.set_index("server_id")
    assert plan.loc["idle-big", "excluded_reason"] == "idle: a decommission candidate"
    assert "idle-big" not in set(plan.loc[plan["freed"], "host_server_id"])
    assert int(plan["freed"].sum()) == 2


def test_moves_across_regions_are_not_proposed_and_across_business_units_are_flagged() -> None:
    sizing = sizing_frame(
        [
            {"server_id": "eu-1", "region": "eu-west", "business_unit": "Payments"},
            {"server_id": "eu-2", "region": "eu-west", "business_unit": "Retail"},
            {"server_id": "us-1", "region": "us-east", "business_unit": "Payments"},
        ]
    )
    placement, summary = consolidation.consolidate(sizing, 0.7, consolidate_critical=False)
    plan = placement.set_index("server_id")
    assert plan.loc["us-1", "host_server_id"] == "us-1"  # alone in its region: stays
    moved = plan[plan["freed"]]
    assert len(moved) == 1
    (crossing,) = moved["move_crosses"]
    assert crossing.startswith("business unit ") and "region" not in crossing
    assert summary["moves_crossing"] == 1
    # With both boundaries closed, nobody moves across either.
    closed, _ = consolidation.consolidate(
        sizing, 0.7, consolidate_critical=False, closed_boundaries=("region", "business_unit")
    )
    assert not closed["freed"].any() and (closed["move_crosses"] == "").all()
    # With both open, the US server may move to Europe, and says so.
    both, _ = consolidation.consolidate(
        sizing, 0.7, consolidate_critical=False, closed_boundaries=()
    )
    assert both["move_crosses"].str.contains("region").any()
