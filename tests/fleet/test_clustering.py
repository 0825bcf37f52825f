"""Stage 07, step 2: K-Means clusters numbered and labelled from centroids, and their check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.fleet import clustering, profiles


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
    clustered, info = clustering.cluster_servers(features, k=4, seed=7)
    clustering.check_clusters(clustered, info, 4, len(features))
    shuffled = features.sample(frac=1.0, random_state=3).set_index("server_id")
    again, info2 = clustering.cluster_servers(shuffled, k=4, seed=7)
    first = clustered.set_index("server_id")[["cluster", "cluster_label"]]
    second = again.set_index("server_id").loc[first.index, ["cluster", "cluster_label"]]
    pd.testing.assert_frame_equal(first, second)
    assert info["labels"] == info2["labels"]
    # each archetype lands in the cluster with its own name
    archetype = first.index.str.split("-").str[0]
    assert (first["cluster_label"] == archetype).all()
    assert -1 <= info["silhouette"] <= 1 and info["silhouette"] > 0.2
    assert sorted(info["sizes"].values()) == [10, 10, 10, 10]
    assert {"pc1", "pc2", *profiles.FEATURE_COLUMNS} <= set(clustered.columns)


def test_repeated_labels_are_made_unique() -> None:
    clustered, info = clustering.cluster_servers(archetype_features(), k=6, seed=1)
    labels = list(info["labels"].values())
    assert len(set(labels)) == 6
    # Two clusters sharing a word are told apart by their levels, not by a number.
    assert any(": CPU " in label for label in labels)
    assert not any(label.endswith(")") for label in labels)
    clustering.check_clusters(clustered, info, 6, 40)


def test_k_under_two_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="k must be at least 2"):
        clustering.cluster_servers(archetype_features(), k=1, seed=0)


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
    with caplog.at_level("WARNING", logger="capacity_forecaster.fleet.clustering"):
        clustered, info = clustering.cluster_servers(features, k=k, seed=0)
    assert (info["k"], info["k_requested"]) == (made, k)
    assert says in info["k_note"] and says in caplog.text
    assert clustered["cluster"].nunique() == made and len(clustered) == len(features)
    clustering.check_clusters(clustered, info, k, len(features))


def test_a_single_server_is_one_cluster_with_a_reason() -> None:
    features = archetype_features(per_group=1).head(1)
    clustered, info = clustering.cluster_servers(features, k=4, seed=0)
    assert info["k"] == 1 and info["k_note"].endswith("only 1 server: 1 cluster")
    assert info["silhouette"] == 0.0 and info["sizes"] == {0: 1}
    assert clustered[["pc1", "pc2"]].to_numpy().tolist() == [[0.0, 0.0]]
    clustering.check_clusters(clustered, info, 4, 1)


def test_check_clusters_wants_a_reason_for_fewer_clusters_than_requested() -> None:
    clustered, info = clustering.cluster_servers(archetype_features(), k=4, seed=0)
    with pytest.raises(StageCheckError, match="3 clusters made of the 4 requested, with no reason"):
        clustering.check_clusters(clustered, {**info, "k": 3}, 4, 40)
    with pytest.raises(StageCheckError, match="5 clusters made, expected 1 to 4"):
        clustering.check_clusters(clustered, {**info, "k": 5}, 4, 40)


def test_silhouette_in_range_even_for_one_server_per_cluster() -> None:
    features = archetype_features(per_group=1)
    clustered, info = clustering.cluster_servers(features, k=4, seed=0)
    assert info["silhouette"] == 0.0
    clustering.check_clusters(clustered, info, 4, 4)


def test_check_clusters_catches_empty_cluster_and_missing_server() -> None:
    clustered, info = clustering.cluster_servers(archetype_features(), k=4, seed=0)
    emptied = clustered.assign(cluster=clustered["cluster"].replace({1: 0}))
    with pytest.raises(StageCheckError, match="non-empty clusters"):
        clustering.check_clusters(emptied, info, 4, 40)
    with pytest.raises(StageCheckError, match="expected one row for each of 40"):
        clustering.check_clusters(clustered.iloc[1:], info, 4, 40)
    with pytest.raises(StageCheckError, match="silhouette"):
        clustering.check_clusters(clustered, {**info, "silhouette": float("nan")}, 4, 40)
