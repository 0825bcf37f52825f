"""Forecast models: a seasonal-naive baseline, a robust damped trend and Prophet per series,
and global tree models.

Every model has the same small interface, so the backtest and the forecast stage treat them
alike:

- ``fit(history, servers) -> self``: ``history`` is long (server_id, metric, date, value),
  ``servers`` the fleet's metadata;
- ``predict(dates) -> frame``: point forecasts ``server_id, metric, date, yhat`` for every
  fitted series on the given calendar dates (the days after the fit's last date), inside the
  metric's physical range 0-100 %;
- ``to_bytes()`` / ``from_bytes(data)``: the fitted model, to save and load back.

Intervals are not the models' business: they are calibrated on backtest residuals
(``models.intervals``) so that an 80 % interval covers about 80 % of actuals.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Protocol, Self

import numpy as np
import pandas as pd

from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.params import Params

PREDICTION_COLUMNS = ["server_id", "metric", "date", "yhat"]
# Models that do not fit the yearly cycle, so that how wrong they are depends on the season: their
# intervals are calibrated on the same season a year earlier (``backtest.run_season_backtest``).
# Prophet fits the year itself. The tree models follow it in part through last year's values,
# and refitting them at the four extra origins would cost ~7 s each on the default fleet (the
# budget for stages 04 and 05 is 120 s); they are calibrated on the backtest origins, like Prophet.
SEASON_CALIBRATED = frozenset({"seasonal_naive", "robust_trend"})


class ForecastModel(Protocol):
    name: str

    def fit(self, history: pd.DataFrame, servers: pd.DataFrame) -> Self: ...

    def predict(self, dates: pd.DatetimeIndex) -> pd.DataFrame: ...

    def to_bytes(self) -> bytes: ...

    @classmethod
    def from_bytes(cls, data: bytes) -> Self: ...


def make_model(
    name: str, *, horizon_days: int, quarter_end_business_days: int, n_jobs: int, seed: int
) -> ForecastModel:
    """A fresh, unfitted model by its params name."""
    if name == "seasonal_naive":
        from capacity_forecaster.forecasting.models.baseline import SeasonalNaiveModel

        return SeasonalNaiveModel()
    if name == "robust_trend":
        from capacity_forecaster.forecasting.models.trend import RobustTrendModel

        return RobustTrendModel(horizon_days=horizon_days)
    if name == "prophet":
        from capacity_forecaster.forecasting.models.prophet import ProphetModel

        return ProphetModel(n_jobs=n_jobs, quarter_end_business_days=quarter_end_business_days)
    if name in ("random_forest", "gradient_boosting"):
        from capacity_forecaster.forecasting.models.trees import (
            GradientBoostingModel,
            RandomForestModel,
        )

        tree_class = RandomForestModel if name == "random_forest" else GradientBoostingModel
        return tree_class(
            horizon_days=horizon_days,
            quarter_end_business_days=quarter_end_business_days,
            n_jobs=n_jobs,
            seed=seed,
        )
    raise ValueError(f"unknown model {name!r}")


def load_model(name: str, data: bytes) -> ForecastModel:
    """A fitted model back from ``to_bytes``."""
    model = make_model(name, horizon_days=1, quarter_end_business_days=5, n_jobs=1, seed=0)
    return type(model).from_bytes(data)


MODEL_FILES = {
    "seasonal_naive": "models/seasonal_naive.joblib",
    "robust_trend": "models/robust_trend.joblib",
    "prophet": "models/prophet.jsonl.gz",
    "random_forest": "models/random_forest.joblib",
    "gradient_boosting": "models/gradient_boosting.joblib",
}


def model_factories(params: Params) -> dict[str, Callable[[], ForecastModel]]:
    """For each enabled model, a callable making a fresh unfitted one (the backtest refits per origin)."""
    return {
        name: functools.partial(
            make_model,
            name,
            horizon_days=params.forecast.horizon_days,
            quarter_end_business_days=params.features.quarter_end_business_days,
            n_jobs=params.compute.n_jobs,
            seed=params.run.seed,
        )
        for name in params.models.enabled
    }


def check_roundtrip(name: str, model: ForecastModel, data: bytes, dates: pd.DatetimeIndex) -> None:
    """Load a saved model back and prove it predicts exactly what the fitted one does."""
    before = model.predict(dates)
    after = load_model(name, data).predict(dates)
    same = before.shape == after.shape and np.allclose(
        before["yhat"].to_numpy(), after["yhat"].to_numpy(), rtol=1e-9, atol=1e-9
    )
    if not same:
        raise StageCheckError(
            f"{MODEL_FILES[name]}: the saved {name} model does not predict what the fitted one did"
        )
