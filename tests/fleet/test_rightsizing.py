"""Stage 07, step 3: right-sizing from the forecast peak plus headroom."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.fleet import consolidation, profiles, rightsizing
from tests.fleet.builders import RS, make_forecasts, make_history, make_servers


@pytest.fixture
def sized() -> pd.DataFrame:
    history = make_history(
        {
            "idle": {"cpu_p95": 2.0, "mem_p95": 30.0},
            "hot": {"cpu_p95": 90.0, "mem_p95": 50.0},
            "big": {"cpu_p95": 10.0, "mem_p95": 10.0},
            "ok": {"cpu_p95": 60.0, "mem_p95": 60.0},
        }
    )
    forecasts = make_forecasts(
        {"idle": (2.0, 30.0), "hot": (95.0, 50.0), "big": (10.0, 10.0), "ok": (60.0, 60.0)}
    )
    servers = make_servers(
        {
            "idle": {"monthly_cost_usd": 700.0},
            "hot": {"cpu_cores": 8, "memory_gb": 32},
            "big": {"cpu_cores": 32, "memory_gb": 128, "monthly_cost_usd": 2000.0},
            "ok": {},
        }
    )
    features = profiles.utilisation_features(history, RS.lookback_days)
    return rightsizing.right_size(features, forecasts, servers, RS).set_index("server_id")


def test_idle_server_is_found_idle_and_its_cost_is_the_potential(sized: pd.DataFrame) -> None:
    assert sized.loc["idle", "finding"] == "idle"
    assert sized.loc["idle", "action"] == "decommission"
    assert sized.loc["idle", "monthly_savings_usd"] == pytest.approx(700.0)


def test_server_peaking_at_95_percent_is_under_provisioned_and_gets_more_cores(
    sized: pd.DataFrame,
) -> None:
    hot = sized.loc["hot"]
    assert hot["finding"] == "under-provisioned"
    # ceil(8 x 0.95 / 0.8) = 10 -> next size 12; the rf model's 99 % is not the champion
    assert hot["recommended_cores"] == 12
    assert hot["peak_cpu_share"] == pytest.approx(0.95)
    assert hot["monthly_savings_usd"] == 0


def test_server_at_10_percent_of_32_cores_gets_fewer_cores_and_a_saving(
    sized: pd.DataFrame,
) -> None:
    big = sized.loc["big"]
    assert big["finding"] == "over-provisioned"
    assert big["recommended_cores"] == 4  # ceil(32 x 0.1 / 0.8) = 4
    assert big["recommended_memory_gb"] == 16  # ceil(128 x 0.1 / 0.8) = 16
    expected = 2000.0 * (0.5 * (1 - 4 / 32) + 0.5 * (1 - 16 / 128))
    assert big["monthly_savings_usd"] == pytest.approx(expected)
    assert sized.loc["ok", "finding"] == "optimal"
    assert sized.loc["ok", "monthly_savings_usd"] == 0
    assert (sized["monthly_savings_usd"] >= 0).all()
    for column in rightsizing.METADATA_COLUMNS:
        assert column in sized.columns


def test_round_up_to_size() -> None:
    got = rightsizing.round_up_to_size(
        np.array([0.2, 1, 3, 12, 13, 128, 130]), rightsizing.CORE_SIZES
    )
    assert got.tolist() == [1, 1, 4, 12, 16, 128, 160]
    assert rightsizing.round_up_to_size([100, 1025], rightsizing.MEMORY_SIZES_GB).tolist() == [
        128,
        1280,
    ]


def test_two_champions_for_one_series_are_refused() -> None:
    forecasts = make_forecasts({"a": (20.0, 20.0)})
    forecasts["is_champion"] = True
    features = profiles.utilisation_features(make_history({"a": {}}), 30)
    with pytest.raises(ValueError, match="more than one champion"):
        rightsizing.right_size(features, forecasts, make_servers({"a": {}}), RS)


def test_memory_never_measured_keeps_its_size_and_the_server_is_not_packed() -> None:
    # A fleet without the memory agent: no memory history, no memory forecast.
    history = make_history({"cpu-only": {"cpu_p95": 10.0}})
    history = history[history["metric"] != "mem_p95"]
    forecasts = make_forecasts({"cpu-only": (10.0, 0.0)})
    forecasts = forecasts[forecasts["metric"] != "mem_p95"]
    servers = make_servers({"cpu-only": {"cpu_cores": 32, "memory_gb": 128}})
    features = profiles.utilisation_features(history, RS.lookback_days)
    sized = rightsizing.right_size(features, forecasts, servers, RS).set_index("server_id")
    row = sized.loc["cpu-only"]
    assert np.isnan(row["peak_mem_share"])
    assert row["recommended_memory_gb"] == 128  # not the 1 GB a made-up 0 % would give
    assert row["recommended_cores"] == 4
    assert row["finding"] == "over-provisioned"  # on CPU, the one resource measured
    assert row["monthly_savings_usd"] == pytest.approx(1000.0 * 0.5 * (1 - 4 / 32))
    plan, _ = consolidation.consolidate(sized.reset_index(), 0.7, consolidate_critical=False)
    assert plan.loc[plan["server_id"] == "cpu-only", "excluded_reason"].tolist() == [
        "CPU or memory not measured"
    ]
