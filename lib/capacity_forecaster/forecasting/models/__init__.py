"""Forecast models: a seasonal-naive baseline, a robust damped trend and Prophet per series,
and global tree models.

Every model has the same small interface (``base.ForecastModel``), so the backtest and the
forecast stage treat them alike:

- ``fit(history, servers, horizon_days=h) -> self``: ``history`` is long (server_id, metric,
  date, value), ``servers`` the fleet's metadata, ``h`` the days ahead it will forecast (the
  caller's, never the model's own);
- ``predict(dates) -> frame``: point forecasts ``server_id, metric, date, yhat`` for every
  fitted series on the given calendar dates (the days after the fit's last date), inside the
  metric's physical range 0-100 %;
- ``save_model(model)`` / ``load_model(data, name=..., horizon_days=...)``: the fitted model,
  saved and loaded back through one versioned envelope (``persistence``).

Intervals are not the models' business: they are calibrated on backtest residuals
(``forecasting.intervals``) so that an 80 % interval covers about 80 % of actuals.
"""

from __future__ import annotations

from capacity_forecaster.forecasting.models.base import PREDICTION_COLUMNS, ForecastModel
from capacity_forecaster.forecasting.models.persistence import (
    MODEL_FILES,
    check_roundtrip,
    load_model,
    save_model,
)
from capacity_forecaster.forecasting.models.registry import (
    SEASON_CALIBRATED,
    make_model,
    model_class,
    model_factories,
)

__all__ = [
    "MODEL_FILES",
    "PREDICTION_COLUMNS",
    "SEASON_CALIBRATED",
    "ForecastModel",
    "check_roundtrip",
    "load_model",
    "make_model",
    "model_class",
    "model_factories",
    "save_model",
]
