"""Stage 07, step 5 and the whole chain: recommendations.json is strict JSON and never double counts."""

from __future__ import annotations

import json

import pytest

from capacity_forecaster.fleet import (
    clustering,
    consolidation,
    profiles,
    recommendations,
    rightsizing,
)
from tests.fleet.builders import RS, make_forecasts, make_history, make_risk, make_servers


def test_stage_chain_and_recommendations_are_strict_json() -> None:
    levels: dict[str, dict[str, float]] = {}
    peaks: dict[str, tuple[float, float]] = {}
    specs: dict[str, dict] = {}
    for i in range(24):
        kind = i % 4
        cpu, mem = [(2.0, 20.0), (10.0, 15.0), (60.0, 60.0), (92.0, 70.0)][kind]
        server = f"srv{i:02d}"
        levels[server] = {"cpu_p95": cpu + i * 0.1, "mem_p95": mem, "cpu_p95_slope": 0.01 * kind}
        peaks[server] = (cpu + 1, mem + 1)
        specs[server] = {
            "environment": ["prod", "dev"][i % 2],
            "criticality": ["critical", "low", "medium"][i % 3],
            "cpu_cores": [8, 16, 32][i % 3],
            "memory_gb": [32, 64, 128][i % 3],
            "monthly_cost_usd": 500.0 + 10 * i,
        }
    features = profiles.utilisation_features(make_history(levels), RS.lookback_days)
    clustered, info = clustering.cluster_servers(features, k=4, seed=42)
    clustering.check_clusters(clustered, info, 4, 24)
    forecasts = make_forecasts(peaks)
    sizing = rightsizing.right_size(
        features, forecasts, make_servers(specs), RS, make_risk(forecasts)
    )
    placement, summary = consolidation.consolidate(sizing, 0.7, consolidate_critical=False)
    result = recommendations.summarise({**info, "silhouette": float("nan")}, sizing, summary)
    text = json.dumps(result, allow_nan=False)
    assert json.loads(text)["silhouette"] is None
    result = recommendations.summarise(info, sizing, summary)
    json.dumps(result, allow_nan=False)
    assert result["findings"]["idle"] == 6 and result["findings"]["under-provisioned"] == 6
    assert result["total_savings_usd"] == pytest.approx(
        result["consolidation_savings_usd"] + result["right_sizing_savings_usd"], abs=0.01
    )
    assert result["total_savings_usd"] == pytest.approx(summary["total_savings_usd"], abs=0.01)
    freed = set(placement.loc[placement["freed"], "server_id"])
    assert not freed & {a["server_id"] for a in result["top_right_sizing_actions"]}
    assert result["total_savings_usd"] <= sizing["monthly_cost_usd"].sum()
