"""Utilisation per metric: disk growth with cleanups, memory above CPU, every archetype present."""

from __future__ import annotations

import pandas as pd

from capacity_forecaster.core.vocabulary import METRICS


def test_disk_grows_mostly_monotonically(pattern_fleet: pd.DataFrame) -> None:
    steps = pattern_fleet.groupby("server_id")["disk_p95"].diff().dropna()
    assert (steps >= -0.5).mean() > 0.95  # growth, with occasional cleanups
    assert (steps < -5).any()  # and some cleanups that free real space
    growth = pattern_fleet.groupby("server_id")["disk_p95"].agg(
        lambda s: s.iloc[-30:].mean() - s.iloc[:30].mean()
    )
    assert (growth > 0).mean() > 0.5  # most disks fill up over the window


def test_memory_sits_above_cpu(pattern_fleet: pd.DataFrame) -> None:
    assert pattern_fleet["mem_p95"].median() > pattern_fleet["cpu_p95"].median()


def test_archetypes_exist(pattern_fleet: pd.DataFrame) -> None:
    per_server = pattern_fleet.groupby("server_id")[list(METRICS)]
    median = per_server.median()
    assert (median["cpu_p95"] < 5).any()  # idle
    # Hot: some metric clearly higher over the last month than a year before.
    last = pattern_fleet[
        pattern_fleet["date"] > pattern_fleet["date"].max() - pd.Timedelta(days=30)
    ]
    year_ago = pattern_fleet[
        pattern_fleet["date"].between(*pattern_fleet["date"].min() + pd.to_timedelta([0, 30], "D"))
    ]
    rise = (
        last.groupby("server_id")[list(METRICS)].mean()
        - year_ago.groupby("server_id")[list(METRICS)].mean()
    )
    assert (rise.max(axis=1) > 15).any()
