"""Stage 01 (synth): a realistic synthetic fleet, deterministic by seed, that checks itself."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.core.calendar import country_for_region, quarter_end_window
from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.params import SyntheticParams
from capacity_forecaster.ingest.synthetic import (
    check_generated,
    generate_fleet,
    generate_metrics,
    generate_servers,
)

METRICS = ["cpu_p95", "mem_p95", "disk_p95"]
FINANCE_BUS = ["Trading", "Risk & Compliance", "Payments"]
DEFECTS = SyntheticParams(
    n_servers=20, days=400, end_date=dt.date(2026, 6, 30), outlier_share=0.005, missing_share=0.02
)
CLEAN = DEFECTS.model_copy(update={"outlier_share": 0.0, "missing_share": 0.0})
# Pattern tests average over a fleet big enough for the effect to beat server-to-server noise.
PATTERNS = CLEAN.model_copy(update={"n_servers": 60})


@pytest.fixture(scope="module")
def fleet() -> tuple[pd.DataFrame, pd.DataFrame]:
    return generate_fleet(DEFECTS, seed=11)


@pytest.fixture(scope="module")
def clean_fleet() -> tuple[pd.DataFrame, pd.DataFrame]:
    return generate_fleet(CLEAN, seed=11)


@pytest.fixture(scope="module")
def pattern_fleet() -> pd.DataFrame:
    metrics, servers = generate_fleet(PATTERNS, seed=5)
    return metrics.merge(servers[["server_id", "business_unit", "environment"]], on="server_id")


def expected_server_days(servers: pd.DataFrame, params: SyntheticParams) -> int:
    """Server-days in the window, each server counted from its commissioning date."""
    end = pd.Timestamp(params.end_date)
    start = end - pd.Timedelta(days=params.days - 1)
    first = servers["commissioned_date"].clip(lower=start)
    return int(((end - first).dt.days + 1).sum())


def test_same_seed_gives_identical_frames(fleet: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    metrics, servers = generate_fleet(DEFECTS, seed=11)
    pd.testing.assert_frame_equal(metrics, fleet[0])
    pd.testing.assert_frame_equal(servers, fleet[1])


def test_different_seed_gives_different_frames(fleet: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    metrics, servers = generate_fleet(DEFECTS, seed=12)
    assert not servers.equals(fleet[1])
    assert len(metrics) != len(fleet[0]) or not np.allclose(
        metrics["cpu_p95"].fillna(-1), fleet[0]["cpu_p95"].fillna(-1)
    )


def test_metrics_contract(fleet: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    metrics, servers = fleet
    assert list(metrics.columns) == ["date", "server_id", *METRICS]
    assert metrics["date"].dtype == np.dtype("datetime64[ns]")
    assert (metrics["date"] == metrics["date"].dt.normalize()).all()
    assert pd.api.types.is_string_dtype(metrics["server_id"])
    assert all(metrics[m].dtype == np.float64 for m in METRICS)
    assert not metrics.duplicated(["server_id", "date"]).any()
    assert metrics.equals(metrics.sort_values(["server_id", "date"], ignore_index=True))
    assert set(metrics["server_id"]) == set(servers["server_id"])
    assert metrics["date"].max() == pd.Timestamp(DEFECTS.end_date)
    assert metrics["date"].min() == pd.Timestamp(DEFECTS.end_date) - pd.Timedelta(
        days=DEFECTS.days - 1
    )


def test_metric_values_are_percentages(fleet: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    values = fleet[0][METRICS].to_numpy()
    present = values[~np.isnan(values)]
    assert present.min() >= 0 and present.max() <= 100
    assert not np.isinf(values).any()


def test_servers_contract(fleet: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    servers = fleet[1]
    expected = ["server_id", "business_unit", "region", "environment", "criticality"]
    expected += ["cpu_cores", "memory_gb", "disk_gb", "monthly_cost_usd", "hostname", "country"]
    expected += ["platform", "os", "commissioned_date"]
    assert set(expected) <= set(servers.columns)
    assert len(servers) == DEFECTS.n_servers and servers["server_id"].is_unique
    assert servers["server_id"].str.fullmatch(r"srv-\d{5}").all()
    assert servers["hostname"].is_unique
    assert all(
        re.fullmatch(r"[a-z]{3}-(prod|stg|dev|tst)-[a-z]+\d-\d{4}", h) for h in servers["hostname"]
    )
    assert (servers["country"] == servers["region"].map(country_for_region)).all()
    assert servers["environment"].isin(["prod", "staging", "dev", "test"]).all()
    assert servers["platform"].isin(["on-prem", "aws", "azure"]).all()
    for column in ("cpu_cores", "memory_gb", "disk_gb"):
        assert pd.api.types.is_integer_dtype(servers[column])
    assert servers["cpu_cores"].between(2, 64).all()
    assert (servers["memory_gb"] / servers["cpu_cores"]).isin([2, 4, 8]).all()
    assert (
        servers["monthly_cost_usd"].dtype == np.float64 and (servers["monthly_cost_usd"] > 0).all()
    )
    assert servers["commissioned_date"].dtype == np.dtype("datetime64[ns]")


def test_criticality_follows_environment() -> None:
    servers = generate_servers(400, np.random.default_rng(3))
    non_prod = servers[servers["environment"].isin(["dev", "test"])]
    assert len(non_prod) > 0 and not (non_prod["criticality"] == "critical").any()
    assert servers["environment"].value_counts().idxmax() == "prod"
    # Bigger boxes cost more.
    assert servers["monthly_cost_usd"].corr(servers["cpu_cores"]) > 0.5


def test_row_counts_with_defects(fleet: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    metrics, servers = fleet
    expected = expected_server_days(servers, DEFECTS)
    missing = round(DEFECTS.missing_share * expected)
    assert len(metrics) == expected - missing
    nan = int(metrics[METRICS].isna().sum().sum())
    assert nan == round(DEFECTS.missing_share / 10 * len(metrics))
    assert metrics[METRICS].isna().sum(axis=1).max() == 1  # single-metric NaN, never a blank row
    assert metrics[["date", "server_id"]].notna().all().all()


def test_gaps_include_multi_day_outages(fleet: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    steps = fleet[0].groupby("server_id")["date"].diff().dt.days.dropna()
    assert (steps > 1).any()  # some gaps
    assert (steps > 2).any()  # some of them longer than one day


def test_outliers_are_one_day_extremes(
    fleet: tuple[pd.DataFrame, pd.DataFrame], clean_fleet: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    # Defects are injected after the series are drawn, so the same seed without defects shows
    # exactly which values the outliers replaced.
    both = fleet[0].merge(clean_fleet[0], on=["server_id", "date"], suffixes=("", "_clean"))
    assert len(both) == len(fleet[0])
    dirty = both[METRICS].to_numpy()
    clean = both[[f"{m}_clean" for m in METRICS]].to_numpy()
    replaced = ~np.isnan(dirty) & (dirty != clean)
    assert replaced.sum() == pytest.approx(DEFECTS.outlier_share * dirty.size, rel=0.1)
    assert ((dirty[replaced] == 0) | (dirty[replaced] >= 97)).all()


def test_no_defects_means_no_gaps_and_no_nan(
    clean_fleet: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    metrics, servers = clean_fleet
    assert len(metrics) == expected_server_days(servers, CLEAN)
    assert not metrics[METRICS].isna().any().any()
    assert (metrics.groupby("server_id")["date"].diff().dropna() == pd.Timedelta(days=1)).all()


def test_some_servers_are_commissioned_inside_the_window(
    clean_fleet: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    metrics, servers = clean_fleet
    start = metrics["date"].min()
    late = servers[servers["commissioned_date"] > start]
    assert 1 <= len(late) <= 0.1 * len(servers) + 1
    first_seen = metrics.groupby("server_id")["date"].min()
    history = metrics.groupby("server_id").size()
    for server_id, commissioned in late.set_index("server_id")["commissioned_date"].items():
        assert first_seen[server_id] == commissioned
        assert history[server_id] >= 120


def test_weekday_load_above_weekend_for_prod_cpu(pattern_fleet: pd.DataFrame) -> None:
    prod = pattern_fleet[pattern_fleet["environment"] == "prod"]
    weekend = prod["date"].dt.day_of_week >= 5
    assert prod.loc[~weekend, "cpu_p95"].mean() > 1.1 * prod.loc[weekend, "cpu_p95"].mean()


def test_quarter_end_spike_for_finance_units(pattern_fleet: pd.DataFrame) -> None:
    finance = pattern_fleet[pattern_fleet["business_unit"].isin(FINANCE_BUS)]
    assert finance["server_id"].nunique() >= 5
    daily = finance.groupby("date")["cpu_p95"].mean()
    in_window = quarter_end_window(daily.index, 5)
    # The surrounding business days: the three weeks before each window.
    shifted = quarter_end_window(daily.index + pd.Timedelta(days=21), 5)
    before = shifted & ~in_window & (daily.index.day_of_week < 5)
    assert in_window.sum() >= 15 and before.sum() >= 15
    assert daily[in_window].mean() > 1.1 * daily[before].mean()


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
    per_server = pattern_fleet.groupby("server_id")[METRICS]
    median = per_server.median()
    assert (median["cpu_p95"] < 5).any()  # idle
    # Hot: some metric clearly higher over the last month than a year before.
    last = pattern_fleet[
        pattern_fleet["date"] > pattern_fleet["date"].max() - pd.Timedelta(days=30)
    ]
    year_ago = pattern_fleet[
        pattern_fleet["date"].between(*pattern_fleet["date"].min() + pd.to_timedelta([0, 30], "D"))
    ]
    rise = last.groupby("server_id")[METRICS].mean() - year_ago.groupby("server_id")[METRICS].mean()
    assert (rise.max(axis=1) > 15).any()


def test_standalone_servers_and_metrics() -> None:
    rng = np.random.default_rng(0)
    servers = generate_servers(5, rng)
    metrics = generate_metrics(
        servers, dt.date(2026, 3, 31), 30, rng, outlier_share=0.0, missing_share=0.0
    )
    assert len(metrics) == 5 * 30 and not metrics[METRICS].isna().any().any()
    assert metrics["date"].max() == pd.Timestamp("2026-03-31")


def test_metrics_refuse_servers_commissioned_after_the_window() -> None:
    rng = np.random.default_rng(0)
    servers = generate_servers(3, rng).assign(
        commissioned_date=pd.Timestamp("2030-01-01").as_unit("ns")
    )
    with pytest.raises(ValueError, match="commissioned after the window"):
        generate_metrics(
            servers, dt.date(2026, 3, 31), 30, rng, outlier_share=0.0, missing_share=0.0
        )


def test_check_generated_passes_and_summarises(fleet: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    metrics, servers = fleet
    summary = check_generated(metrics, servers, DEFECTS)
    assert summary["rows"] == len(metrics)
    assert summary["servers"] == DEFECTS.n_servers
    assert summary["date_max"] == "2026-06-30"
    assert summary["missing_rows"] == summary["expected_server_days"] - len(metrics)
    assert sum(summary["nan_counts"].values()) == int(metrics[METRICS].isna().sum().sum())


def _out_of_range(
    metrics: pd.DataFrame, servers: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    metrics = metrics.copy()
    metrics.loc[10, "cpu_p95"] = 150.0
    return metrics, servers


def _duplicated_row(
    metrics: pd.DataFrame, servers: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    doubled = pd.concat([metrics, metrics.iloc[[10]]]).sort_values(
        ["server_id", "date"], ignore_index=True
    )
    return doubled, servers


def _dropped_rows(
    metrics: pd.DataFrame, servers: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    return metrics.drop(index=range(100, 140)).reset_index(drop=True), servers


def _unknown_server(
    metrics: pd.DataFrame, servers: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    return metrics, servers.iloc[1:].reset_index(drop=True)


def _extra_nan(metrics: pd.DataFrame, servers: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    metrics = metrics.copy()
    metrics.loc[metrics.index[::50], "mem_p95"] = np.nan
    return metrics, servers


def _string_dates(
    metrics: pd.DataFrame, servers: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    return metrics.assign(date=metrics["date"].dt.strftime("%Y-%m-%d")), servers


def _missing_column(
    metrics: pd.DataFrame, servers: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    return metrics.drop(columns="disk_p95"), servers


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (_out_of_range, r"cpu_p95 outside \[0, 100\]"),
        (_duplicated_row, r"duplicated \(server_id, date\)"),
        (_dropped_rows, r"rows, expected"),
        (_unknown_server, r"not in servers"),
        (_extra_nan, r"NaN values"),
        (_string_dates, r"date has dtype"),
        (_missing_column, r"missing columns \['disk_p95'\]"),
    ],
)
def test_check_generated_catches_corruption(
    fleet: tuple[pd.DataFrame, pd.DataFrame],
    corrupt: Callable[[pd.DataFrame, pd.DataFrame], tuple[pd.DataFrame, pd.DataFrame]],
    message: str,
) -> None:
    metrics, servers = corrupt(*fleet)
    with pytest.raises(StageCheckError, match=message):
        check_generated(metrics, servers, DEFECTS)


def test_default_size_fleet_is_complete() -> None:
    """Size sanity, no timing: a two-year fleet has one row per server-day minus its gaps."""
    params = SyntheticParams(n_servers=150, days=730)
    metrics, servers = generate_fleet(params, seed=42)
    expected = expected_server_days(servers, params)
    assert len(metrics) == expected - round(params.missing_share * expected)
    assert 0.9 * 150 * 730 < len(metrics) <= 150 * 730
    assert metrics["server_id"].nunique() == 150
    assert metrics.memory_usage(deep=True).sum() < 100 * len(metrics)  # compact: no object columns
    check_generated(metrics, servers, params)
