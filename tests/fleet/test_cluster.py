"""Stage 07: features, clusters, right-sizing and consolidation on constructed fleets."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.params import RightSizingParams
from capacity_forecaster.fleet import cluster

END = pd.Timestamp("2026-06-30")
RS = RightSizingParams()  # percentile 95, headroom 0.2, idle < 5 %, under > 0.9, over < 0.4


def make_history(levels: dict[str, dict[str, float]], days: int = 90, seed: int = 0):
    """Daily values per server and metric: level + slope x day + small noise."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(end=END, periods=days, freq="D")
    rows = []
    for server, spec in levels.items():
        for metric in ("cpu_p95", "mem_p95", "disk_p95"):
            level = spec.get(metric, 30.0)
            slope = spec.get(f"{metric}_slope", 0.0)
            noise = spec.get("noise", 0.3)
            values = level + slope * np.arange(days) + rng.normal(0, noise, days)
            rows.append(
                pd.DataFrame(
                    {"server_id": server, "metric": metric, "date": dates, "value": values}
                )
            )
    return pd.concat(rows, ignore_index=True)


def make_forecasts(peaks: dict[str, tuple[float, float]], horizon: int = 120) -> pd.DataFrame:
    """Champion forecasts flat at the given cpu/mem percent, plus a wild non-champion model."""
    dates = pd.date_range(END + pd.Timedelta(days=1), periods=horizon, freq="D")
    rows = []
    for server, (cpu, mem) in peaks.items():
        for metric, level in (("cpu_p95", cpu), ("mem_p95", mem), ("disk_p95", 50.0)):
            for model, value, champion in (("prophet", level, True), ("rf", 99.0, False)):
                rows.append(
                    pd.DataFrame(
                        {
                            "server_id": server,
                            "metric": metric,
                            "date": dates,
                            "horizon": np.arange(1, horizon + 1),
                            "model": model,
                            "yhat": value,
                            "yhat_lower": value - 5,
                            "yhat_upper": value + 5,
                            "is_champion": champion,
                        }
                    )
                )
    return pd.concat(rows, ignore_index=True)


def make_servers(specs: dict[str, dict]) -> pd.DataFrame:
    """Inventory rows: defaults overridden per server."""
    rows = []
    for server, spec in specs.items():
        row = {
            "server_id": server,
            "business_unit": "Payments",
            "region": "eu-west",
            "environment": "prod",
            "criticality": "medium",
            "cpu_cores": 16,
            "memory_gb": 64,
            "disk_gb": 500,
            "monthly_cost_usd": 1000.0,
            "platform": "aws",
        }
        row.update(spec)
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- features


def test_features_known_values_over_lookback() -> None:
    history = make_history(
        {"a": {"cpu_p95": 10.0, "cpu_p95_slope": 0.1, "noise": 0.0, "mem_p95": 40.0}},
        days=120,
    )
    features = cluster.utilisation_features(history, lookback_days=60)
    row = features.set_index("server_id").loc["a"]
    assert list(features.columns) == ["server_id", *cluster.FEATURE_COLUMNS]
    assert row["cpu_growth"] == pytest.approx(3.0)  # 0.1 points a day
    assert row["mem_growth"] == pytest.approx(0.0, abs=1e-9)
    last60 = 10.0 + 0.1 * np.arange(60, 120)
    assert row["cpu_mean"] == pytest.approx(last60.mean())
    assert row["cpu_p95"] == pytest.approx(np.percentile(last60, 95))
    assert row["cpu_volatility"] == pytest.approx(last60.std(ddof=1))


# --------------------------------------------------------------------------- right-sizing


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
    features = cluster.utilisation_features(history, RS.lookback_days)
    return cluster.right_size(features, forecasts, servers, RS).set_index("server_id")


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
    for column in cluster.METADATA_COLUMNS:
        assert column in sized.columns


def test_round_up_to_size() -> None:
    got = cluster.round_up_to_size(np.array([0.2, 1, 3, 12, 13, 128, 130]), cluster.CORE_SIZES)
    assert got.tolist() == [1, 1, 4, 12, 16, 128, 160]
    assert cluster.round_up_to_size([100, 1025], cluster.MEMORY_SIZES_GB).tolist() == [128, 1280]


def test_two_champions_for_one_series_are_refused() -> None:
    forecasts = make_forecasts({"a": (20.0, 20.0)})
    forecasts["is_champion"] = True
    features = cluster.utilisation_features(make_history({"a": {}}), 30)
    with pytest.raises(ValueError, match="more than one champion"):
        cluster.right_size(features, forecasts, make_servers({"a": {}}), RS)


# --------------------------------------------------------------------------- consolidation


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
    placement, summary = cluster.consolidate(sizing, 0.7, consolidate_critical=False)
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
    placement, summary = cluster.consolidate(sizing, target, consolidate_critical=allow_critical)
    frame = placement.merge(sizing, on="server_id")
    assert len(placement) == len(sizing) and placement["server_id"].is_unique

    considered = frame[frame["considered"]]
    assert set(considered["finding"]) <= {"over-provisioned", "idle"}
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
        assert critical["considered"].any()
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
    placement, summary = cluster.consolidate(sizing, 0.7, consolidate_critical=False)
    crit = placement[placement["server_id"].str.startswith("c")]
    assert not crit["considered"].any() and not crit["freed"].any()
    assert (crit["excluded_reason"] == "critical tier").all()
    assert summary["total"]["servers_freed"] == 0

    placement, summary = cluster.consolidate(sizing, 0.7, consolidate_critical=True)
    crit = placement[placement["server_id"].str.startswith("c")]
    assert crit["considered"].all() and int(crit["freed"].sum()) == 2
    assert set(crit["host_server_id"]) <= set(crit["server_id"])  # critical stays with critical
    assert summary["groups"]["prod/critical"]["servers_freed"] == 2


def test_environments_never_mix_even_when_it_would_pack_tighter() -> None:
    sizing = sizing_frame(
        [{"server_id": "dev0", "environment": "dev"}, {"server_id": "tst0", "environment": "test"}]
    )
    placement, summary = cluster.consolidate(sizing, 0.7, consolidate_critical=False)
    assert not placement["freed"].any()
    assert summary["total"]["hosts_kept"] == 2


# --------------------------------------------------------------------------- clusters


def archetype_features(seed: int = 0, per_group: int = 10) -> pd.DataFrame:
    """Four well-separated profiles: idle, steady, growing, busy."""
    rng = np.random.default_rng(seed)
    groups = {
        "idle": (2.0, 20.0, 0.0),
        "steady": (40.0, 50.0, 0.0),
        "growing": (40.0, 50.0, 5.0),
        "busy": (85.0, 80.0, 0.0),
    }
    rows = []
    for name, (cpu, mem, growth) in groups.items():
        for i in range(per_group):
            jitter = rng.normal(0, 0.5, 6)
            rows.append(
                {
                    "server_id": f"{name}-{i:02d}",
                    "cpu_p95": cpu + jitter[0],
                    "mem_p95": mem + jitter[1],
                    "disk_p95": 50 + jitter[2],
                    "cpu_mean": cpu * 0.8 + jitter[3],
                    "mem_mean": mem * 0.8 + jitter[4],
                    "disk_mean": 45 + jitter[5],
                    "cpu_volatility": 2.0 + abs(jitter[0]),
                    "cpu_growth": growth + 0.1 * jitter[1],
                    "mem_growth": growth + 0.1 * jitter[2],
                    "disk_growth": 0.1 * jitter[3],
                }
            )
    return pd.DataFrame(rows)


def test_cluster_labels_derive_from_centroids_not_row_order() -> None:
    features = archetype_features()
    clustered, info = cluster.cluster_servers(features, k=4, seed=7)
    cluster.check_clusters(clustered, info, 4, len(features))
    shuffled = features.sample(frac=1.0, random_state=3).set_index("server_id")
    again, info2 = cluster.cluster_servers(shuffled, k=4, seed=7)
    first = clustered.set_index("server_id")[["cluster", "cluster_label"]]
    second = again.set_index("server_id").loc[first.index, ["cluster", "cluster_label"]]
    pd.testing.assert_frame_equal(first, second)
    assert info["labels"] == info2["labels"]
    # each archetype lands in the cluster with its own name
    archetype = first.index.str.split("-").str[0]
    assert (first["cluster_label"] == archetype).all()
    assert -1 <= info["silhouette"] <= 1 and info["silhouette"] > 0.2
    assert sorted(info["sizes"].values()) == [10, 10, 10, 10]
    assert {"pc1", "pc2", *cluster.FEATURE_COLUMNS} <= set(clustered.columns)


def test_repeated_labels_are_made_unique() -> None:
    clustered, info = cluster.cluster_servers(archetype_features(), k=6, seed=1)
    labels = list(info["labels"].values())
    assert len(set(labels)) == 6
    assert any(label.endswith("(2)") for label in labels)
    cluster.check_clusters(clustered, info, 6, 40)


def test_k_under_two_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="k must be at least 2"):
        cluster.cluster_servers(archetype_features(), k=1, seed=0)


@pytest.mark.parametrize(
    ("per_group", "duplicate", "k", "made", "says"),
    [
        pytest.param(1, False, 6, 4, "the fleet has only 4 servers: 4 clusters", id="fewer-servers"),
        pytest.param(2, True, 6, 4, "only 4 distinct server profiles", id="fewer-profiles"),
    ],
)  # fmt: skip
def test_a_fleet_smaller_than_k_gets_as_many_clusters_as_it_has_profiles(
    per_group: int, duplicate: bool, k: int, made: int, says: str, caplog: pytest.LogCaptureFixture
) -> None:
    features = archetype_features(per_group=per_group)
    if duplicate:  # the second server of each group is a copy of the first under a new name
        copies = features.iloc[::2].copy()
        features = pd.concat(
            [features.iloc[::2], copies.assign(server_id=copies["server_id"] + "b")]
        )
    with caplog.at_level("WARNING", logger="capacity_forecaster.fleet.cluster"):
        clustered, info = cluster.cluster_servers(features, k=k, seed=0)
    assert (info["k"], info["k_requested"]) == (made, k)
    assert says in info["k_note"] and says in caplog.text
    assert clustered["cluster"].nunique() == made and len(clustered) == len(features)
    cluster.check_clusters(clustered, info, k, len(features))


def test_a_single_server_is_one_cluster_with_a_reason() -> None:
    features = archetype_features(per_group=1).head(1)
    clustered, info = cluster.cluster_servers(features, k=4, seed=0)
    assert info["k"] == 1 and info["k_note"].endswith("only 1 server: 1 cluster")
    assert info["silhouette"] == 0.0 and info["sizes"] == {0: 1}
    assert clustered[["pc1", "pc2"]].to_numpy().tolist() == [[0.0, 0.0]]
    cluster.check_clusters(clustered, info, 4, 1)


def test_check_clusters_wants_a_reason_for_fewer_clusters_than_requested() -> None:
    clustered, info = cluster.cluster_servers(archetype_features(), k=4, seed=0)
    with pytest.raises(StageCheckError, match="3 clusters made of the 4 requested, with no reason"):
        cluster.check_clusters(clustered, {**info, "k": 3}, 4, 40)
    with pytest.raises(StageCheckError, match="5 clusters made, expected 1 to 4"):
        cluster.check_clusters(clustered, {**info, "k": 5}, 4, 40)


def test_silhouette_in_range_even_for_one_server_per_cluster() -> None:
    features = archetype_features(per_group=1)
    clustered, info = cluster.cluster_servers(features, k=4, seed=0)
    assert info["silhouette"] == 0.0
    cluster.check_clusters(clustered, info, 4, 4)


def test_check_clusters_catches_empty_cluster_and_missing_server() -> None:
    clustered, info = cluster.cluster_servers(archetype_features(), k=4, seed=0)
    emptied = clustered.assign(cluster=clustered["cluster"].replace({1: 0}))
    with pytest.raises(StageCheckError, match="non-empty clusters"):
        cluster.check_clusters(emptied, info, 4, 40)
    with pytest.raises(StageCheckError, match="expected one row for each of 40"):
        cluster.check_clusters(clustered.iloc[1:], info, 4, 40)
    with pytest.raises(StageCheckError, match="silhouette"):
        cluster.check_clusters(clustered, {**info, "silhouette": float("nan")}, 4, 40)


# --------------------------------------------------------------------------- end to end


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
    features = cluster.utilisation_features(make_history(levels), RS.lookback_days)
    clustered, info = cluster.cluster_servers(features, k=4, seed=42)
    cluster.check_clusters(clustered, info, 4, 24)
    sizing = cluster.right_size(features, make_forecasts(peaks), make_servers(specs), RS)
    placement, summary = cluster.consolidate(sizing, 0.7, consolidate_critical=False)
    result = cluster.recommendations({**info, "silhouette": float("nan")}, sizing, summary)
    text = json.dumps(result, allow_nan=False)
    assert json.loads(text)["silhouette"] is None
    result = cluster.recommendations(info, sizing, summary)
    json.dumps(result, allow_nan=False)
    assert result["findings"]["idle"] == 6 and result["findings"]["under-provisioned"] == 6
    assert result["total_savings_usd"] == pytest.approx(
        result["consolidation_savings_usd"] + result["right_sizing_savings_usd"], abs=0.01
    )
    assert result["total_savings_usd"] == pytest.approx(summary["total_savings_usd"], abs=0.01)
    freed = set(placement.loc[placement["freed"], "server_id"])
    assert not freed & {a["server_id"] for a in result["top_right_sizing_actions"]}
    assert result["total_savings_usd"] <= sizing["monthly_cost_usd"].sum()
