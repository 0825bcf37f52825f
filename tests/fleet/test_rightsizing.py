"""Stage 07, step 3: right-sizing from the forecast peak plus headroom."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.fleet import consolidation, profiles, rightsizing
from tests.fleet.builders import RS, make_forecasts, make_history, make_risk, make_servers


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
    return rightsizing.right_size(features, forecasts, servers, RS, make_risk(forecasts)).set_index(
        "server_id"
    )


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
        rightsizing.right_size(
            features, forecasts, make_servers({"a": {}}), RS, make_risk(forecasts)
        )


def test_memory_never_measured_keeps_its_size_and_the_server_is_not_packed() -> None:
    # A fleet without the memory agent: no memory history, no memory forecast.
    history = make_history({"cpu-only": {"cpu_p95": 10.0}})
    history = history[history["metric"] != "mem_p95"]
    forecasts = make_forecasts({"cpu-only": (10.0, 0.0)})
    forecasts = forecasts[forecasts["metric"] != "mem_p95"]
    servers = make_servers({"cpu-only": {"cpu_cores": 32, "memory_gb": 128}})
    features = profiles.utilisation_features(history, RS.lookback_days)
    sized = rightsizing.right_size(
        features, forecasts, servers, RS, make_risk(forecasts)
    ).set_index("server_id")
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


def _sized_with_risk(
    levels: dict[str, dict[str, float]],
    peaks: dict[str, tuple[float, float]],
    specs: dict[str, dict],
    risk_levels: dict[tuple[str, str], str] | None = None,
) -> pd.DataFrame:
    forecasts = make_forecasts(peaks)
    features = profiles.utilisation_features(make_history(levels), RS.lookback_days)
    risk = make_risk(forecasts, risk_levels)
    return rightsizing.right_size(features, forecasts, make_servers(specs), RS, risk).set_index(
        "server_id"
    )


def test_a_server_at_high_risk_is_under_provisioned_with_a_size_that_carries_it() -> None:
    """4 cores at 89 % CPU against an 80 % threshold: high risk, once "optimal, no action"
    because under-provisioned started at 90 % of capacity."""
    sized = _sized_with_risk(
        {"hot": {"cpu_p95": 89.0}}, {"hot": (89.0, 50.0)}, {"hot": {"cpu_cores": 4}}
    )
    hot = sized.loc["hot"]
    assert hot["cpu_at_risk"] and hot["finding"] == "under-provisioned"
    assert hot["action"] == "upsize" and hot["recommended_cores"] == 8
    # The forecast's upper bound (94 %) fits under 80 % at 8 cores; its peak lands at 44.5 %.
    assert hot["projected_cpu_peak"] == pytest.approx(89.0 * 4 / 8)
    expected = 1000.0 * (0.5 * 8 / 4 + 0.5 * hot["recommended_memory_gb"] / 64 - 1)
    assert hot["monthly_cost_change_usd"] == pytest.approx(expected)


def test_a_medium_series_gets_at_least_one_size_up() -> None:
    # Memory at 78 % under its 85 % threshold, but stage 06 calls it medium (the upper bound
    # reaches the threshold): one size up, 64 -> 96 GB.
    sized = _sized_with_risk(
        {"m": {"mem_p95": 78.0}},
        {"m": (40.0, 78.0)},
        {"m": {}},
        {("m", "mem_p95"): "medium"},
    )
    row = sized.loc["m"]
    assert row["mem_at_risk"] and row["finding"] == "under-provisioned"
    assert row["recommended_memory_gb"] == 96
    assert row["projected_mem_peak"] == pytest.approx(78.0 * 64 / 96)


def test_a_disk_at_risk_gets_a_disk_size_that_keeps_it_under_its_threshold() -> None:
    sized = _sized_with_risk({"d": {}}, {"d": (40.0, 40.0)}, {"d": {}}, {("d", "disk_p95"): "high"})
    row = sized.loc["d"]
    # make_forecasts holds disk at 50 % (upper 55 %): 500 GB needs 500 x 55 / 90 = 306 GB;
    # at risk it still grows one step, to 550 GB.
    assert row["disk_at_risk"] and row["recommended_disk_gb"] == 550
    assert row["projected_disk_peak"] == pytest.approx(50.0 * 500 / 550)
    assert row["finding"] != "idle"
    # The 50 new GB are priced, beside whatever the cores and memory do.
    assert RS.disk_usd_per_gb_month == 0.08
    assert row["monthly_cost_change_usd"] == pytest.approx(
        50 * 0.08 + (-row["monthly_savings_usd"] if row["action"] == "downsize" else 0.0)
    )


def test_servers_idling_at_3_percent_are_idle_whatever_their_noisy_p95() -> None:
    """Eight servers idling at about 3 % mean CPU: half had a P95 of 5.0-5.3 against the 5.0
    cut and were missed. The P95 less its day-to-day noise decides."""
    levels = {f"idle-{i}": {"cpu_p95": 3.0, "noise": 1.3} for i in range(8)}
    levels["busy"] = {"cpu_p95": 12.0, "noise": 3.0}
    peaks = {server: (3.0, 30.0) for server in levels} | {"busy": (12.0, 30.0)}
    sized = _sized_with_risk(levels, peaks, {server: {} for server in levels})
    idle = sized.drop(index="busy")
    assert (idle["history_cpu_p95"] > 5.0).any()  # the noisy P95s the old cut missed
    assert (idle["finding"] == "idle").all()
    assert sized.loc["busy", "finding"] != "idle"


def test_an_idle_cpu_with_memory_at_risk_is_not_a_decommission_candidate() -> None:
    sized = _sized_with_risk(
        {"m": {"cpu_p95": 2.0, "mem_p95": 90.0}}, {"m": (2.0, 90.0)}, {"m": {}}
    )
    assert sized.loc["m", "finding"] == "under-provisioned"
    assert sized.loc["m", "action"] == "upsize"
