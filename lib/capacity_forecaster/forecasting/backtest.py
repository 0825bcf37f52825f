"""Rolling-origin backtest: every model fitted at several origins, scored on the days after.

Each origin cuts the history: models are fitted on the days up to and including the origin for
the ``horizon_days`` the caller gives, and forecast the next ``horizon_days``, which they have
not seen; the latest origin's window ends on the last day of history. Actuals are the cleaned
values on days that were observed (days the ETL imputed are not scored). Every model, the
seasonal-naive baseline included, sees the same origins and series.

The models that do not fit the yearly cycle are also fitted 52 weeks before each origin and
before the last day (``run_season_backtest``): those rows calibrate their intervals, for the
season they forecast (``forecasting.intervals``).

``run`` is the whole of stage 04's backtest in one call (origins, backtest, its check, the
season rows, scores, champions, the report and the forecast's interval calibration), with
the horizon as its argument, as statsforecast's ``cross_validation(h=...)`` takes it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from capacity_forecaster.core import calendar, catalog, scoring
from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.vocabulary import SERIES_KEY
from capacity_forecaster.forecasting import intervals as conformal
from capacity_forecaster.forecasting.backtest_plan import (
    MIN_TRAIN_DAYS,
    BacktestPlan,
    plan_backtest,
    too_short_message,
)
from capacity_forecaster.forecasting.evaluation import evaluate
from capacity_forecaster.forecasting.models import SEASON_CALIBRATED, ForecastModel

logger = logging.getLogger(__name__)

Factories = dict[str, Callable[[], ForecastModel]]


@dataclass(frozen=True)
class BacktestResult:
    """Everything stage 04 learns from its backtest (``run``)."""

    horizon_days: int  # the forecast's horizon, which the final models are fitted for
    plan: BacktestPlan  # the origins and the days scored after each (maybe fewer than the horizon)
    origins: list[pd.Timestamp]  # oldest first
    results: pd.DataFrame  # rows of ``run_backtest``
    season: pd.DataFrame  # rows of ``run_season_backtest`` (none when no model qualifies)
    fit_seconds: dict[str, float]  # per model, over all origins
    report: dict[str, Any]  # the models/metrics.json content (``evaluation.evaluate``)
    series_scores: pd.DataFrame  # accuracy per model x series, the champion's included
    champions: pd.DataFrame  # the champion per series, with the reason
    calibration: pd.DataFrame  # the interval calibration of the forecast from the last day


def run(
    history: pd.DataFrame,
    servers: pd.DataFrame,
    factories: Factories,
    *,
    horizon_days: int,
    n_origins: int,
    step_days: int,
    interval: float,
) -> BacktestResult:
    """Backtest every model of ``factories`` at ``n_origins`` origins ``step_days`` apart, each
    fitted for and scored on ``horizon_days`` (the forecast's horizon), or the backtest a short
    history can hold (``backtest_plan.plan_backtest``); check the rows, score them, choose
    champions and calibrate the forecast's intervals at level ``interval``.

    ``history`` is long (server_id, metric, date, value, is_imputed), ``servers`` the fleet's
    metadata. Raises StageCheckError when the history holds no backtest at all or a model
    fails to forecast inside 0-100.
    """
    enabled = list(factories)
    first_day, last_day = pd.Timestamp(history["date"].min()), pd.Timestamp(history["date"].max())
    plan = plan_backtest(
        first_day,
        last_day,
        forecast_horizon_days=horizon_days,
        n_origins=n_origins,
        step_days=step_days,
    )
    if plan is None:
        raise StageCheckError(f"04_train: {too_short_message(first_day, last_day)}")
    for line in plan.adjustments:
        logger.warning("backtest: %s", line)
    scored = plan.horizon_days
    results, seconds = run_backtest(history, servers, factories, plan.origins, horizon_days=scored)
    check_backtest(results, enabled, len(plan.origins))
    season = run_season_backtest(history, servers, factories, plan.origins, horizon_days=scored)
    report, series_scores, champions = evaluate(
        results,
        history,
        enabled,
        interval,
        plan.origins,
        seconds,
        season,
        horizon_days=horizon_days,
    )
    report["backtest"] = plan.describe()
    return BacktestResult(
        horizon_days=horizon_days,
        plan=plan,
        origins=plan.origins,
        results=results,
        season=season,
        fit_seconds=seconds,
        report=report,
        series_scores=series_scores,
        champions=champions,
        calibration=conformal.forecast_calibration(results, interval, season, last_day),
    )


def check_history_length(
    history: pd.DataFrame, origins: list[pd.Timestamp], horizon_days: int
) -> None:
    """Fail clearly when the oldest origin leaves no series ``MIN_TRAIN_DAYS`` to train on.

    ``run`` plans origins that always leave enough; this guards direct callers of
    ``run_backtest`` with origins of their own.
    """
    first_day = history["date"].min()
    last_day = history["date"].max()
    oldest = min(origins)
    if (oldest - first_day).days + 1 >= MIN_TRAIN_DAYS:
        return
    have = (last_day - first_day).days + 1
    need = have + MIN_TRAIN_DAYS - ((oldest - first_day).days + 1)
    span = (max(origins) - oldest).days
    raise StageCheckError(
        f"04_train: {have} days of history ({first_day.date()} to {last_day.date()}) are too "
        f"few for these backtest origins, which need {need}: {MIN_TRAIN_DAYS} to train before "
        f"the oldest origin, {span} between its {len(origins)} origins and {horizon_days} to "
        "score."
    )


def run_backtest(
    history: pd.DataFrame,
    servers: pd.DataFrame,
    factories: Factories,
    origins: list[pd.Timestamp],
    *,
    horizon_days: int,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Fit every model at every origin for ``horizon_days`` and score it on the following
    ``horizon_days``.

    ``history`` is long (server_id, metric, date, value, is_imputed). Returns the backtest rows
    (model, origin, server_id, metric, date, horizon, yhat, actual, scale) and fit seconds per
    model.
    """
    check_history_length(history, origins, horizon_days)
    observed = history if "is_imputed" not in history else history[~history["is_imputed"]]
    seconds = dict.fromkeys(factories, 0.0)
    parts = []
    steps, done = len(origins) * len(factories), 0
    for origin in origins:
        train = history[history["date"] <= origin]
        span = train.groupby(list(SERIES_KEY))["date"].agg(["min", "max"])
        eligible = span[(span["max"] - span["min"]).dt.days + 1 >= MIN_TRAIN_DAYS].index
        train = train.set_index(list(SERIES_KEY)).loc[eligible].reset_index()
        dates = pd.date_range(origin + pd.Timedelta(days=1), periods=horizon_days, freq="D")
        actual = observed[(observed["date"] > origin) & (observed["date"] <= dates[-1])]
        actual = actual[[*SERIES_KEY, "date", "value"]].rename(columns={"value": "actual"})
        scale = scoring.seasonal_naive_scale(train).reset_index()
        for name, make in factories.items():
            started = time.perf_counter()
            model = make().fit(train, servers, horizon_days=horizon_days)
            predicted = model.predict(dates)
            seconds[name] += time.perf_counter() - started
            rows = predicted.merge(actual, on=[*SERIES_KEY, "date"], how="inner").merge(
                scale, on=list(SERIES_KEY), how="left"
            )
            rows.insert(0, "model", name)
            rows.insert(1, "origin", origin)
            rows["horizon"] = (rows["date"] - origin).dt.days
            parts.append(rows)
            done += 1
            logger.info("backtest: %d/%d model fits (%s at %s)", done, steps, name, origin.date())
        logger.info(
            "backtest origin %s: %d series, %d models", origin.date(), len(eligible), len(factories)
        )
    backtest = pd.concat(parts, ignore_index=True)
    backtest["scale"] = backtest["scale"].fillna(scoring.SCALE_FLOOR)
    return backtest, seconds


def season_origins(
    history: pd.DataFrame, origins: list[pd.Timestamp], horizon_days: int
) -> dict[pd.Timestamp, pd.Timestamp] | None:
    """For each backtest origin and for the forecast's origin (the last day), the origin
    ``calendar.YEAR_DAYS`` earlier, whose window is the same season a year before; None when the
    oldest of them would leave under ``MIN_TRAIN_DAYS`` of history to train on."""
    if horizon_days > calendar.YEAR_DAYS:
        raise ValueError(f"a {horizon_days}-day horizon overlaps the season a year earlier")
    targets = [*origins, pd.Timestamp(history["date"].max())]
    mapping = {target: target - pd.Timedelta(days=calendar.YEAR_DAYS) for target in targets}
    if (min(mapping.values()) - history["date"].min()).days + 1 < MIN_TRAIN_DAYS:
        return None
    return mapping


def run_season_backtest(
    history: pd.DataFrame,
    servers: pd.DataFrame,
    factories: Factories,
    origins: list[pd.Timestamp],
    *,
    horizon_days: int,
) -> pd.DataFrame:
    """Backtest rows that calibrate the intervals of the models in ``SEASON_CALIBRATED``.

    A model that does not fit the yearly cycle errs more in some seasons than in others, so
    residuals from the recent origins (another season) calibrate its intervals for the coming
    one badly: on four quarterly 90-day holdouts of the accuracy benchmark, robust_trend's 80 %
    intervals covered 0.649-0.857 calibrated that way, and 0.784-0.787 calibrated on the same
    season a year earlier. So each such model is fitted ``calendar.YEAR_DAYS`` before every
    backtest origin and before the last day, and scored on the following ``horizon_days`` (all
    inside the history); ``for_origin`` says which origin's intervals the rows calibrate.

    A model is left out (and calibrated on the backtest origins, like the others) when the
    history is too short for every one of those origins, or when one of them has no series of
    a metric to score; the reason is logged. Returns the ``run_backtest`` columns plus
    ``for_origin``, with no rows when no model qualifies.
    """
    chosen: Factories = {
        name: make for name, make in factories.items() if name in SEASON_CALIBRATED
    }
    assert catalog.SEASON_BACKTEST.table is not None
    empty = catalog.SEASON_BACKTEST.table.empty()
    if not chosen:
        return empty
    mapping = season_origins(history, origins, horizon_days)
    if mapping is None:
        need = (history["date"].max() - min(origins)).days + calendar.YEAR_DAYS + MIN_TRAIN_DAYS
        logger.info(
            "intervals of %s calibrated on the backtest origins: the same season a year earlier "
            "needs %d days of history",
            ", ".join(chosen),
            need,
        )
        return empty
    rows, _ = run_backtest(
        history, servers, chosen, sorted(mapping.values()), horizon_days=horizon_days
    )
    rows["for_origin"] = rows["origin"].map({season: target for target, season in mapping.items()})
    incomplete = _incomplete_models(rows, list(chosen), list(mapping), history["metric"].unique())
    return rows[~rows["model"].isin(incomplete)].reset_index(drop=True)


def _incomplete_models(
    rows: pd.DataFrame, models: list[str], targets: list[pd.Timestamp], metrics: np.ndarray
) -> list[str]:
    """The models of season ``rows`` without a scored series of every metric for every target
    origin (``for_origin``); logs the first gap."""
    scored = set(
        rows[["model", "for_origin", "metric"]].drop_duplicates().itertuples(index=False, name=None)
    )
    gaps = sorted(
        (name, target, metric)
        for name in models
        for target in targets
        for metric in metrics
        if (name, target, metric) not in scored
    )
    incomplete = sorted({name for name, _, _ in gaps})
    if gaps:
        _, target, metric = gaps[0]
        logger.info(
            "intervals of %s calibrated on the backtest origins: 52 weeks before %s there is "
            "no %s series to score (%d model x origin x metric gaps in all)",
            ", ".join(incomplete),
            target.date(),
            metric,
            len(gaps),
        )
    return incomplete


def check_backtest(backtest: pd.DataFrame, enabled: list[str], n_origins: int) -> None:
    """Every enabled model scored at every origin, with finite forecasts inside 0-100."""
    problems = []
    for name in enabled:
        seen = backtest.loc[backtest["model"] == name, "origin"].nunique()
        if seen != n_origins:
            problems.append(f"{name} scored at {seen} of {n_origins} origins")
    bad = ~np.isfinite(backtest["yhat"]) | (backtest["yhat"] < 0) | (backtest["yhat"] > 100)
    if bad.any():
        problems.append(
            f"{int(bad.sum())} forecasts NaN/inf or outside 0-100 (models: {sorted(backtest.loc[bad, 'model'].unique())})"
        )
    if problems:
        raise StageCheckError("04_train backtest: " + "; ".join(problems))
