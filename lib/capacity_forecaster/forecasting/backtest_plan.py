"""Where the backtest's origins fall and how far ahead it scores: the params, fitted to the history.

The params ask for ``n_origins`` origins ``step_days`` apart, each scored on the forecast
horizon. A long history gets exactly that. A short one gets the backtest it can hold, never a
refusal: the scoring horizon shrinks first (to half of what lies past the minimum training
window, at least ``MIN_SCORE_DAYS``), then the step, then the number of origins (at least
two, so every origin's intervals can be calibrated on another). A history of a year or more
keeps a year behind every origin, so that models are judged with the yearly cycle their final
fit has. What was changed is said in
words (``BacktestPlan.adjustments``), which models/metrics.json and notebook 04 show.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd

from capacity_forecaster.core import calendar

MIN_TRAIN_DAYS = 14  # two weekly cycles: a series needs this much history at an origin
MIN_SCORE_DAYS = 7  # one weekly cycle scored at least
MIN_ORIGINS = 2  # each origin's intervals are calibrated on the others
MIN_STEP_DAYS = 7  # origins closer than a week would score nearly the same days
# The shortest history any backtest fits: two origins a day apart, each scored on a week.
MIN_BACKTEST_DAYS = MIN_TRAIN_DAYS + MIN_SCORE_DAYS + 1


@dataclass(frozen=True)
class BacktestPlan:
    """The origins (oldest first), the days scored after each, and what the params asked for."""

    origins: list[pd.Timestamp]
    horizon_days: int  # days scored after each origin (and the horizon models are fitted for)
    step_days: int
    forecast_horizon_days: int
    adjustments: list[str] = field(default_factory=list)

    @property
    def shortened(self) -> bool:
        """Whether the backtest scores fewer days than the forecast runs."""
        return self.horizon_days < self.forecast_horizon_days

    def describe(self) -> dict[str, object]:
        """The plan for models/metrics.json."""
        return {
            "origins": [o.date().isoformat() for o in self.origins],
            "scored_horizon_days": self.horizon_days,
            "step_days": self.step_days,
            "forecast_horizon_days": self.forecast_horizon_days,
            "adjustments": list(self.adjustments),
        }


def backtest_origins(
    last_date: pd.Timestamp, horizon_days: int, n_origins: int, step_days: int
) -> list[pd.Timestamp]:
    """Origins, oldest first: the latest is ``horizon_days`` before the last day, then every
    ``step_days`` back."""
    latest = pd.Timestamp(last_date) - pd.Timedelta(days=horizon_days)
    return [latest - pd.Timedelta(days=step_days * k) for k in reversed(range(n_origins))]


def plan_backtest(
    first_day: pd.Timestamp,
    last_day: pd.Timestamp,
    *,
    forecast_horizon_days: int,
    n_origins: int,
    step_days: int,
    yearly_cycle_days: int = calendar.YEARLY_CYCLE_DAYS,
) -> BacktestPlan | None:
    """The backtest the history from ``first_day`` to ``last_day`` can hold; None when it is
    shorter than ``MIN_BACKTEST_DAYS`` (then every series keeps the seasonal-naive baseline).

    A model is judged with the components its final fit will have. With ``yearly_cycle_days``
    of history or more the final fit has the yearly cycle; an origin with less would judge the
    model without it (with 456 days and three origins 28 days apart scored on 90, Prophet
    backtested at MASE 1.03 without its yearly cycle and scored 0.665 on the holdout with it).
    So the origins move to where a year lies behind each, scored on the days that leaves; when
    too few days lie past the first year for that, the plan says the models are judged without
    the cycle.
    """
    history_days = (pd.Timestamp(last_day) - pd.Timestamp(first_day)).days + 1
    plan = _fitted_plan(
        history_days, last_day, forecast_horizon_days, n_origins, step_days, MIN_TRAIN_DAYS
    )
    if plan is None or history_days < yearly_cycle_days:
        return plan
    oldest_training = (plan.origins[0] - pd.Timestamp(first_day)).days + 1
    if oldest_training >= yearly_cycle_days:
        return plan
    matched = _fitted_plan(
        history_days, last_day, forecast_horizon_days, n_origins, step_days, yearly_cycle_days
    )
    if matched is None:
        note = (
            f"the models are judged without the yearly cycle their final fit on {history_days} "
            f"days has: a backtest with a year behind every origin needs "
            f"{yearly_cycle_days + MIN_SCORE_DAYS + 1} days"
        )
        return replace(plan, adjustments=[*plan.adjustments, note])
    note = (
        f"origins placed at least {yearly_cycle_days} days after the first day, so that every "
        f"model is judged with the yearly cycle its final fit on {history_days} days has"
    )
    return replace(matched, adjustments=[note, *matched.adjustments[1:]])


def _fitted_plan(
    history_days: int,
    last_day: pd.Timestamp,
    forecast_horizon_days: int,
    n_origins: int,
    step_days: int,
    min_train_days: int,
) -> BacktestPlan | None:
    """The plan leaving ``min_train_days`` of history before its oldest origin: the params' own
    when it fits, else the scoring horizon shrunk first (to half of what lies past the
    training days, at least ``MIN_SCORE_DAYS``), then the step, then the origins (at least
    ``MIN_ORIGINS``); None when not even that fits."""
    past_training = history_days - min_train_days  # days for the origins' spread and scoring
    if (n_origins - 1) * step_days + forecast_horizon_days <= past_training:
        origins = backtest_origins(last_day, forecast_horizon_days, n_origins, step_days)
        return BacktestPlan(origins, forecast_horizon_days, step_days, forecast_horizon_days)
    if past_training < MIN_SCORE_DAYS + 1:
        return None
    horizon = min(forecast_horizon_days, max(MIN_SCORE_DAYS, past_training // 2))
    spread = past_training - horizon
    fitting = max(MIN_ORIGINS, min(n_origins, spread // MIN_STEP_DAYS + 1))
    step = max(1, min(step_days, spread // (fitting - 1)))
    adjustments = [
        f"{history_days} days of history hold no backtest of {n_origins} origins {step_days} "
        f"days apart scored on {forecast_horizon_days} days (that needs "
        f"{min_train_days + (n_origins - 1) * step_days + forecast_horizon_days})"
    ]
    if horizon < forecast_horizon_days:
        adjustments.append(
            f"scored on {horizon} days ahead, not the {forecast_horizon_days} forecast: accuracy "
            f"and intervals past day {horizon} are extrapolated"
        )
    if (fitting, step) != (n_origins, step_days):
        adjustments.append(f"{fitting} origins {step} days apart")
    origins = backtest_origins(last_day, horizon, fitting, step)
    return BacktestPlan(origins, horizon, step, forecast_horizon_days, adjustments)


def too_short_message(first_day: pd.Timestamp, last_day: pd.Timestamp) -> str:
    """Why there is no backtest, with the floor."""
    history_days = (pd.Timestamp(last_day) - pd.Timestamp(first_day)).days + 1
    return (
        f"{history_days} days of history ({pd.Timestamp(first_day).date()} to "
        f"{pd.Timestamp(last_day).date()}) are too few for any backtest, which needs at least "
        f"{MIN_BACKTEST_DAYS} ({MIN_TRAIN_DAYS} to train, two origins, {MIN_SCORE_DAYS} to score)"
    )
