"""Month-end rises: the share of servers, on the month_end window's days only (per country),
deterministic by seed, none at share 0, and month-end-only CPU breachers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.core.params import SyntheticParams
from capacity_forecaster.core.params_calendar import CalendarParams
from capacity_forecaster.ingest.synthetic import generate_fleet
from capacity_forecaster.ingest.synthetic.month_end import (
    CPU_THRESHOLD,
    HORIZON_DAYS,
    ORDINARY_MARGIN,
    draw_month_end,
    ordinary_level,
)
from tests.ingest.synthetic.builders import MONTH_END, NO_MONTH_END, window_days


def _rise(params: SyntheticParams, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Points each value rose by against the same fleet without month-end rises (wide, indexed
    by server_id and date), and the servers."""
    metrics, servers = generate_fleet(params, seed)
    plain, _ = generate_fleet(params.model_copy(update={"month_end_share": 0.0}), seed)
    keys = ["server_id", "date"]
    return metrics.set_index(keys) - plain.set_index(keys), servers


def _month_end_days(rise: pd.DataFrame, servers: pd.DataFrame) -> np.ndarray:
    return window_days(rise.index, servers, "month_end")


@pytest.fixture(scope="module")
def month_end_rise() -> tuple[pd.DataFrame, pd.DataFrame]:
    return _rise(MONTH_END, seed=5)  # a seed with risers in India


def test_share_of_servers_rising_at_month_end(
    month_end_rise: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    rise, _ = month_end_rise
    risers = (rise.abs() > 1e-9).any(axis=1).groupby(level="server_id").any()
    assert risers.sum() == round(MONTH_END.month_end_share * MONTH_END.n_servers)


def test_rises_only_on_month_end_business_days(
    month_end_rise: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    rise, servers = month_end_rise
    on_month_end = _month_end_days(rise, servers)
    risers = (rise.abs() > 1e-9).any(axis=1).groupby(level="server_id").transform("any")
    # Memory and disk of every riser rise on its month-end days and on no other day; CPU rises
    # on each of them (a month-end breacher's CPU also follows its own trend on other days).
    changed = rise[["mem_p95", "disk_p95"]].abs() > 1e-9
    assert (changed.any(axis=1).to_numpy() == (on_month_end & risers.to_numpy())).all()
    assert (rise["cpu_p95"].to_numpy()[on_month_end & risers.to_numpy()] > 0).all()
    dates = rise.index.get_level_values("date")
    country = rise.index.get_level_values("server_id").map(
        servers.set_index("server_id")["country"]
    )
    risen_days = set(dates[changed.any(axis=1).to_numpy()].strftime("%Y-%m-%d"))
    # 30-31 May 2026 is a weekend: the close moves to Thursday and Friday.
    assert {"2026-05-28", "2026-05-29"} <= risen_days
    assert not {"2026-05-27", "2026-05-30", "2026-05-31"} & risen_days
    # 31 March 2026 is a holiday in India: its close is on the Friday and Monday before.
    indian = set(dates[changed.any(axis=1).to_numpy() & (country == "IN")].strftime("%Y-%m-%d"))
    assert indian and {"2026-03-27", "2026-03-30"} <= indian and "2026-03-31" not in indian


def test_small_rises_lift_cpu_only_on_month_end_days() -> None:
    # Rises too small for a month-end-only breach: no server follows a breacher's trend.
    params = MONTH_END.model_copy(update={"month_end_uplift": (4.0, 6.0)})
    rise, servers = _rise(params, seed=3)
    cpu = rise["cpu_p95"].abs() > 1e-9
    assert cpu.any() and not cpu.to_numpy()[~_month_end_days(rise, servers)].any()


def test_same_seed_same_rises_other_seed_other_servers(
    month_end_rise: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    again, _ = _rise(MONTH_END, seed=5)
    pd.testing.assert_frame_equal(again, month_end_rise[0])
    other, _ = _rise(MONTH_END, seed=6)

    def risers(rise: pd.DataFrame) -> set[str]:
        rows = (rise.abs() > 1e-9).any(axis=1)
        return set(rows[rows].index.get_level_values("server_id"))

    assert risers(other) != risers(month_end_rise[0])


def test_share_zero_gives_no_rises() -> None:
    hot_cpu = np.ones(50, dtype=bool)
    drawn = draw_month_end(np.random.default_rng(0), hot_cpu, 0.0, (10.0, 25.0))
    assert not drawn.uplift.any() and not drawn.breach.any()
    # Without a month_end window, a share rises nowhere: the same fleet as share 0.
    no_window = CalendarParams.model_validate({"windows": {"month_end": None}})
    metrics, _ = generate_fleet(MONTH_END, seed=3, calendar=no_window)
    plain, _ = generate_fleet(NO_MONTH_END, seed=3)
    pd.testing.assert_frame_equal(metrics, plain)


def test_share_is_exact_and_a_hot_cpu_server_rises() -> None:
    hot_cpu = np.zeros(200, dtype=bool)
    hot_cpu[17] = True
    for seed in range(5):
        drawn = draw_month_end(np.random.default_rng(seed), hot_cpu, 0.05, (10.0, 25.0))
        assert (drawn.uplift > 0).sum() == 10
        assert drawn.breach.tolist() == hot_cpu.tolist()  # the one candidate, swapped in


def test_month_end_breachers_cross_only_at_month_end_over_the_horizon() -> None:
    drawn = draw_month_end(np.random.default_rng(1), np.ones(500, dtype=bool), 1.0, (10.0, 25.0))
    assert drawn.breach.sum() > 100
    breach = drawn._replace(**{f: v[drawn.breach] for f, v in drawn._asdict().items()})
    since_end = np.arange(-400, HORIZON_DAYS + 1)
    ordinary = ordinary_level(since_end, breach)
    peak = ordinary + breach.uplift[None, :]
    after = since_end > 0
    assert (ordinary[after] <= CPU_THRESHOLD - ORDINARY_MARGIN + 1e-9).all()
    assert (peak[since_end == 0] < CPU_THRESHOLD).all()  # not breaching when the window ends
    first_cross = since_end[np.argmax(peak >= CPU_THRESHOLD, axis=0)]
    assert ((first_cross >= 30) & (first_cross <= 91)).all()


def test_default_fleet_heads_for_a_month_end_only_breach() -> None:
    """The default fleet has a month-end breacher (its CPU differs from the fleet without rises
    on other days too): over the last 90 days its month-end peaks come within 10 points of the
    threshold while its other days stay under it, and it is not over the threshold now."""
    params = SyntheticParams(outlier_share=0.0, missing_share=0.0)
    rise, servers = _rise(params, seed=42)
    cpu = generate_fleet(params, seed=42)[0]["cpu_p95"].to_numpy()  # rows in rise's order
    on_month_end = _month_end_days(rise, servers)
    ids = rise.index.get_level_values("server_id")
    dates = rise.index.get_level_values("date")
    other_days = (rise["cpu_p95"].abs().to_numpy() > 1e-9) & ~on_month_end
    breachers = ids[other_days].unique()
    assert len(breachers) >= 1
    for server_id in breachers:
        recent = (ids == server_id) & (dates > dates.max() - pd.Timedelta(days=90))
        assert cpu[recent & ~on_month_end].max() < CPU_THRESHOLD
        assert cpu[recent & on_month_end].max() > CPU_THRESHOLD - 10
        assert np.percentile(cpu[recent][-28:], 95) < CPU_THRESHOLD
