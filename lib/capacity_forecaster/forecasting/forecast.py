"""Stage 05: forecasts with calibrated intervals for every model, the champion marked.

Rows: every server x metric x day of the horizon x model, with ``yhat``, ``yhat_lower``,
``yhat_upper`` (the calibrated interval at the configured level) and ``is_champion``, so the
champion forecast of a series is ``frame[frame.is_champion]`` and nothing is stored twice.

The horizon is the one stage 04 backtested and fitted the models for (``validated_horizon``
reads it from models/metrics.json and refuses a params horizon that differs).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from capacity_forecaster.core import scoring
from capacity_forecaster.core.catalog import BACKTEST_REPORT
from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.vocabulary import SERIES_KEY
from capacity_forecaster.forecasting import intervals as conformal
from capacity_forecaster.forecasting.models import ForecastModel

logger = logging.getLogger(__name__)

FORECAST_COLUMNS = [
    *SERIES_KEY,
    "date",
    "horizon",
    "model",
    "yhat",
    "yhat_lower",
    "yhat_upper",
    "is_champion",
    "beyond_backtest",
]


def validated_horizon(metrics: Mapping[str, Any], horizon_days: int) -> int:
    """The horizon stage 04 backtested and fitted the models for (``metrics``: the content of
    models/metrics.json), when params ask for that same ``horizon_days``.

    Raises StageCheckError, in one line naming both values and keys, when they differ (the
    intervals, champions and models would be for another horizon) or when metrics.json does
    not state its horizon.
    """
    validated = metrics.get("horizon_days")
    if validated is None:
        raise StageCheckError(
            f"05_forecast: {BACKTEST_REPORT.key} does not state horizon_days (written by an "
            "older 04_train); rerun from 04_train (run_all.py --run-id <run> --from 04)"
        )
    if int(validated) != horizon_days:
        raise StageCheckError(
            f"05_forecast: params forecast.horizon_days is {horizon_days} but the models were "
            f"backtested and fitted for {int(validated)} days ({BACKTEST_REPORT.key} "
            "horizon_days); rerun from 04_train with the new horizon "
            f"(run_all.py --run-id <run> --from 04), or set forecast.horizon_days back to "
            f"{int(validated)}"
        )
    return int(validated)


def horizon_dates(last_date: pd.Timestamp, horizon_days: int) -> pd.DatetimeIndex:
    """The days after the history's last day."""
    return pd.date_range(
        pd.Timestamp(last_date) + pd.Timedelta(days=1), periods=horizon_days, freq="D"
    )


def build_forecasts(
    fitted: dict[str, ForecastModel],
    history: pd.DataFrame,
    calibration: pd.DataFrame,
    champions: pd.DataFrame,
    horizon_days: int,
    scored_horizon_days: int | None = None,
) -> pd.DataFrame:
    """Predict the horizon with every fitted model, add calibrated intervals, mark champions.

    ``scored_horizon_days``: the days ahead the backtest scored, when fewer than
    ``horizon_days``; rows past it are flagged ``beyond_backtest`` and their intervals
    extended (``intervals.apply``)."""
    last_date = history["date"].max()
    dates = horizon_dates(last_date, horizon_days)
    scale = scoring.seasonal_naive_scale(history).reset_index()
    parts = []
    for name, model in fitted.items():
        predicted = model.predict(dates).assign(model=name)
        parts.append(predicted)
        logger.info(
            "05_forecast: %s forecast %d series x %d days",
            name,
            predicted.groupby(list(SERIES_KEY)).ngroups,
            len(dates),
        )
    frame = pd.concat(parts, ignore_index=True).merge(scale, on=list(SERIES_KEY), how="left")
    frame["scale"] = frame["scale"].fillna(scoring.SCALE_FLOOR)
    frame["horizon"] = (frame["date"] - last_date).dt.days
    scored = horizon_days if scored_horizon_days is None else scored_horizon_days
    frame = conformal.apply(frame, calibration, scored)
    frame["beyond_backtest"] = frame["horizon"] > scored
    picked = champions[[*SERIES_KEY, "champion"]]
    frame = frame.merge(picked, on=list(SERIES_KEY), how="left")
    frame["is_champion"] = frame["model"] == frame["champion"]
    return frame[FORECAST_COLUMNS].sort_values(
        ["server_id", "metric", "model", "date"], ignore_index=True
    )


def check_forecasts(
    frame: pd.DataFrame, history: pd.DataFrame, horizon_days: int, models: list[str]
) -> dict:
    """Post-conditions of forecasts.parquet; raises StageCheckError saying what failed."""
    problems = []
    expected_series = history.groupby(list(SERIES_KEY)).ngroups
    last_date = history["date"].max()
    dates = horizon_dates(last_date, horizon_days)
    for name in models:
        rows = frame[frame["model"] == name]
        if rows.groupby(list(SERIES_KEY)).ngroups != expected_series:
            problems.append(
                f"{name}: {rows.groupby(list(SERIES_KEY)).ngroups} of {expected_series} series forecast"
            )
        if len(rows) != expected_series * horizon_days:
            problems.append(
                f"{name}: {len(rows)} rows, expected {expected_series} series x {horizon_days} days"
            )
    duplicated = frame.duplicated([*SERIES_KEY, "model", "date"])
    if duplicated.any():
        problems.append(f"{int(duplicated.sum())} duplicated server x metric x model x date rows")
    outside = ~frame["date"].isin(dates)
    if outside.any():
        problems.append(f"{int(outside.sum())} rows dated outside the horizon")
    if len(frame) and (frame["date"].min() != dates[0] or frame["date"].max() != dates[-1]):
        problems.append(
            f"dates span {frame['date'].min().date()}..{frame['date'].max().date()}, expected {dates[0].date()}..{dates[-1].date()}"
        )
    numbers = frame[["yhat", "yhat_lower", "yhat_upper"]]
    if not np.isfinite(numbers.to_numpy()).all():
        problems.append(
            f"{int((~np.isfinite(numbers.to_numpy())).any(axis=1).sum())} rows with NaN/inf"
        )
    if ((numbers < 0) | (numbers > 100)).any().any():
        problems.append("values outside the physical range 0-100 %")
    if not ((frame["yhat_lower"] <= frame["yhat"]) & (frame["yhat"] <= frame["yhat_upper"])).all():
        problems.append("rows where lower <= yhat <= upper does not hold")
    champions = frame[frame["is_champion"]].groupby(list(SERIES_KEY)).size()
    if len(champions) != expected_series or (champions != horizon_days).any():
        problems.append(
            f"{len(champions)} of {expected_series} series have exactly one champion over the horizon"
        )
    if problems:
        raise StageCheckError("05_forecast forecasts.parquet: " + "; ".join(problems))
    return {
        "rows": len(frame),
        "series": expected_series,
        "models": models,
        "first_date": dates[0].date().isoformat(),
        "last_date": dates[-1].date().isoformat(),
        "horizon_days": horizon_days,
    }
