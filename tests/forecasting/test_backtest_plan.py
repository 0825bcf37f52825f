"""The backtest plan: the params on a long history, the backtest a short one can hold."""

from __future__ import annotations

import pandas as pd
import pytest

from capacity_forecaster.core import calendar
from capacity_forecaster.core.params import MIN_HISTORY_FLOOR
from capacity_forecaster.forecasting.backtest_plan import (
    MIN_BACKTEST_DAYS,
    MIN_SCORE_DAYS,
    MIN_TRAIN_DAYS,
    plan_backtest,
    too_short_message,
)

LAST = pd.Timestamp("2026-06-30")


def _plan(days: int, horizon: int = 120, origins: int = 3, step: int = 28):
    first = LAST - pd.Timedelta(days=days - 1)
    return plan_backtest(
        first, LAST, forecast_horizon_days=horizon, n_origins=origins, step_days=step
    )


def test_a_long_history_gets_what_the_params_ask_for() -> None:
    plan = _plan(730)
    assert plan is not None and not plan.adjustments and not plan.shortened
    assert plan.horizon_days == 120 and plan.step_days == 28
    assert plan.origins == [
        LAST - pd.Timedelta(days=120 + 56),
        LAST - pd.Timedelta(days=120 + 28),
        LAST - pd.Timedelta(days=120),
    ]
    # Exactly enough: 14 to train, 56 between the origins, 120 to score.
    assert not _plan(MIN_TRAIN_DAYS + 56 + 120).adjustments
    assert _plan(MIN_TRAIN_DAYS + 56 + 119).adjustments
    # A year behind the oldest origin: the params' plan, with the yearly cycle at every origin.
    assert not _plan(calendar.YEARLY_CYCLE_DAYS + 56 + 120).adjustments


@pytest.mark.parametrize("days", [373, 456, 510])
def test_every_origin_has_a_year_behind_it_when_the_final_fit_has_one(days: int) -> None:
    """456 days, origins 28 apart scored on 90: the params' oldest origin has 310 days behind
    it, so Prophet would be judged without the yearly cycle its final fit has."""
    plan = _plan(days, horizon=90)
    assert plan is not None
    first = LAST - pd.Timedelta(days=days - 1)
    assert (plan.origins[0] - first).days + 1 >= calendar.YEARLY_CYCLE_DAYS
    assert plan.origins[-1] + pd.Timedelta(days=plan.horizon_days) == LAST
    assert len(plan.origins) >= 2 and plan.horizon_days >= MIN_SCORE_DAYS
    assert "judged with the yearly cycle" in plan.adjustments[0]
    assert plan.horizon_days < 90 and any("extrapolated" in line for line in plan.adjustments)


def test_too_little_past_the_first_year_is_said_and_judged_without_the_cycle() -> None:
    days = calendar.YEARLY_CYCLE_DAYS + MIN_SCORE_DAYS  # one day short of a matched backtest
    plan = _plan(days, horizon=90)
    assert plan is not None
    assert (plan.origins[0] - (LAST - pd.Timedelta(days=days - 1))).days + 1 < days
    assert any("judged without the yearly cycle" in line for line in plan.adjustments)
    assert _plan(days + 1, horizon=90).adjustments[0].startswith("origins placed")


@pytest.mark.parametrize("days", [22, 28, 60, 92, 150, 260])
def test_a_short_history_gets_a_backtest_that_fits_it(days: int) -> None:
    plan = _plan(days)
    assert plan is not None
    first = LAST - pd.Timedelta(days=days - 1)
    assert len(plan.origins) >= 2 and plan.origins == sorted(plan.origins)
    assert (plan.origins[0] - first).days + 1 >= MIN_TRAIN_DAYS  # enough to train at the oldest
    assert plan.origins[-1] + pd.Timedelta(days=plan.horizon_days) == LAST  # scored to the end
    assert 7 <= plan.horizon_days <= 120
    steps = {(b - a).days for a, b in zip(plan.origins, plan.origins[1:], strict=False)}
    assert steps == {plan.step_days}
    if days < MIN_TRAIN_DAYS + 56 + 120:
        assert plan.adjustments and f"{days} days of history" in plan.adjustments[0]


def test_the_scoring_horizon_shrinks_before_the_origins_and_says_so() -> None:
    plan = _plan(92)
    assert plan is not None and plan.shortened
    assert plan.horizon_days == (92 - MIN_TRAIN_DAYS) // 2
    assert len(plan.origins) == 3
    assert any("extrapolated" in line for line in plan.adjustments)
    described = plan.describe()
    assert described["scored_horizon_days"] == plan.horizon_days
    assert described["forecast_horizon_days"] == 120


def test_too_short_for_any_backtest_is_none_with_the_floor_named() -> None:
    assert _plan(MIN_BACKTEST_DAYS) is not None
    assert _plan(MIN_BACKTEST_DAYS - 1) is None
    message = too_short_message(LAST - pd.Timedelta(days=14), LAST)
    assert "15 days of history" in message and f"at least {MIN_BACKTEST_DAYS}" in message


def test_the_params_floor_is_the_shortest_backtest() -> None:
    assert MIN_HISTORY_FLOOR == MIN_BACKTEST_DAYS
