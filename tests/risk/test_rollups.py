"""Stage 06 roll-ups and summary.json: a server counted once, strict JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from capacity_forecaster.risk import ranking, rollups
from tests.risk.builders import risk_rows


def test_rollups_count_a_server_once() -> None:
    risk = risk_rows(
        [
            ("a", 10.0, 0.9, "critical", "high"),
            ("a", np.nan, 0.3, "critical", "medium"),
            ("a", np.nan, 0.0, "critical", "low"),
            ("b", np.nan, 0.3, "low", "medium"),
            ("c", np.nan, 0.0, "low", "low"),
        ]
    )
    risk["metric"] = ["cpu_p95", "mem_p95", "disk_p95", "cpu_p95", "cpu_p95"]
    result = rollups.by_dimension(risk)
    assert set(result) == {"business_unit", "region", "criticality", "environment"}
    [bu] = result["business_unit"]
    assert bu == {
        "business_unit": "bu",
        "servers": 3,
        "servers_at_risk": 2,
        "share_at_risk": pytest.approx(2 / 3, abs=1e-4),
        "high": 1,
        "medium": 1,
    }
    by_criticality = {r["criticality"]: r for r in result["criticality"]}
    assert by_criticality["critical"]["servers"] == 1
    assert by_criticality["critical"]["high"] == 1
    assert by_criticality["low"]["share_at_risk"] == 0.5
    assert [r["criticality"] for r in result["criticality"]] == ["critical", "low"]
    json.dumps(result, allow_nan=False)


def test_summary_is_strict_json(fleet: dict) -> None:
    top = ranking.rank_at_risk(fleet["risk"], top_n=20)
    summary = rollups.risk_summary(fleet["risk"], top, fleet["params"])
    text = json.dumps(summary, allow_nan=False)
    assert "NaN" not in text
    assert summary["series"] == 4
    assert summary["servers"] == 3
    assert sum(summary["levels"]["series"].values()) == 4
    assert summary["levels"]["servers"]["low"] == 1
    assert [r["server_id"] for r in summary["top"]] == ["s1", "s3"]  # a forecast breach first
    assert isinstance(summary["top"][0]["breach_date_upper"], str)
    assert summary["earliest_breaches"][0]["breach_date"] == "2026-08-09"
    assert summary["rules"]
