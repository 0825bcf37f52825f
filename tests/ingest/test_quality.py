"""Data quality: a JSON-ready summary with the right counts, one table row per metric."""

from __future__ import annotations

import json

import numpy as np
import pytest

from capacity_forecaster.core.vocabulary import METRICS
from capacity_forecaster.ingest.quality import quality_summary, quality_table
from capacity_forecaster.ingest.validate import validate_fleet, validate_servers
from tests.ingest.builders import M_SRC, S_SRC, check_metrics, make_metrics, make_servers


def test_quality_summary_is_json_ready_with_the_right_counts() -> None:
    frame = make_metrics(n_servers=3, days=40)
    frame.loc[:5, "cpu_p95"] = np.nan
    frame = frame.drop(index=[10, 11]).reset_index(drop=True)
    clean_metrics, warnings = check_metrics(frame)
    servers, _ = validate_servers(make_servers(n_servers=4), S_SRC)
    clean_metrics, servers, fleet_warnings = validate_fleet(
        clean_metrics, servers, metrics_source=M_SRC, servers_source=S_SRC
    )
    summary = quality_summary(clean_metrics, servers, warnings + fleet_warnings)
    json.dumps(summary, allow_nan=False)
    assert summary["rows"] == 118
    assert summary["servers"] == 3
    assert (summary["date_start"], summary["date_end"], summary["days"]) == (
        "2025-01-01",
        "2025-02-09",
        40,
    )
    assert summary["missing_server_days_share"] == pytest.approx(2 / 120, abs=1e-6)
    assert summary["metrics"]["cpu_p95"]["missing_share"] == pytest.approx(8 / 120, abs=1e-6)
    assert summary["metrics"]["mem_p95"]["missing_share"] == pytest.approx(2 / 120, abs=1e-6)
    assert summary["servers_by_environment"] == {"dev": 1, "prod": 2}
    assert summary["servers_by_business_unit"] == {"finance": 1, "retail": 2}
    assert len(summary["warnings"]) == 1


def test_quality_table_has_one_row_per_metric() -> None:
    frame = make_metrics()
    frame.loc[:2, "disk_p95"] = np.nan
    table = quality_table(frame)
    assert table.index.tolist() == list(METRICS)
    assert table.columns.tolist() == [
        "count",
        "missing",
        "missing_share",
        "min",
        "p50",
        "p95",
        "max",
    ]
    assert table.loc["disk_p95", "count"] == 117
    assert table.loc["disk_p95", "missing"] == 3
    assert table.loc["disk_p95", "missing_share"] == pytest.approx(3 / 120)
    assert table.loc["cpu_p95", "max"] == frame["cpu_p95"].max()
