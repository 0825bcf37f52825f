"""What every forecast model has in common: the fit / predict contract and the saved state.

A model is fitted for a horizon the caller gives (``fit(history, servers, horizon_days=...)``),
as statsforecast's ``cross_validation(h=...)`` takes it: no model is built around a horizon.
The one it was fitted for is recorded (``horizon_days_``) and saved with it, so that a stage
loading it can check that it is the horizon it expects (``persistence.load_model``).

A subclass implements ``_fit``, ``predict`` and, for saving, ``to_state`` / ``from_state`` (its
fitted state as plain Python, numpy and pandas objects); writing and reading the bytes is
``persistence``'s business, the same for every model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from capacity_forecaster.core.params_calendar import CalendarParams
from capacity_forecaster.core.vocabulary import SERIES_KEY

PREDICTION_COLUMNS = [*SERIES_KEY, "date", "yhat"]


def no_predictions() -> pd.DataFrame:
    """``PREDICTION_COLUMNS`` with no rows, typed (a model with nothing fitted predicts this)."""
    return pd.DataFrame(
        {
            "server_id": pd.Series(dtype=object),
            "metric": pd.Series(dtype=object),
            "date": pd.Series(dtype="datetime64[ns]"),
            "yhat": pd.Series(dtype=float),
        }
    )


def grid_predictions(series: pd.Index, dates: pd.DatetimeIndex, values: np.ndarray) -> pd.DataFrame:
    """``PREDICTION_COLUMNS`` for every series of ``series`` (a (server_id, metric) index) on
    every date of ``dates``, from ``values`` shaped (series, dates), clipped to 0-100 %."""
    keys = series.to_frame(index=False)
    result = keys.loc[keys.index.repeat(len(dates))].reset_index(drop=True)
    result["date"] = np.tile(pd.DatetimeIndex(dates).values, len(keys))
    result["yhat"] = np.clip(np.asarray(values, dtype=float).reshape(-1), 0.0, 100.0)
    return result[PREDICTION_COLUMNS]


class ForecastModel(ABC):
    """A forecast model (see the module docstring). Subclasses set ``name``, the params name."""

    name: ClassVar[str]
    # Bumped by a subclass when the layout of its ``to_state`` changes, so that an old file fails
    # to load with a clear message instead of half-loading.
    state_version: ClassVar[int] = 1

    def __init__(self) -> None:
        self.horizon_days_: int | None = None  # the horizon of the last fit (None: not fitted)

    @classmethod
    def from_settings(cls, *, calendar: CalendarParams, n_jobs: int, seed: int) -> Self:
        """A fresh, unfitted model from the run's settings (models take those they use):
        the business calendar, workers and seed."""
        return cls()

    def fit(self, history: pd.DataFrame, servers: pd.DataFrame, *, horizon_days: int) -> Self:
        """Fit on ``history`` (long: server_id, metric, date, value) for forecasts up to
        ``horizon_days`` ahead; ``servers`` is the fleet's metadata. Returns self."""
        if horizon_days < 1:
            raise ValueError(f"{self.name}: horizon_days must be at least 1, got {horizon_days}")
        self.horizon_days_ = None
        self._fit(history, servers, horizon_days)
        self.horizon_days_ = int(horizon_days)
        return self

    @abstractmethod
    def _fit(self, history: pd.DataFrame, servers: pd.DataFrame, horizon_days: int) -> None:
        """Fit the model's state (``fit`` validates and records the horizon)."""

    @abstractmethod
    def predict(self, dates: pd.DatetimeIndex) -> pd.DataFrame:
        """Point forecasts ``PREDICTION_COLUMNS`` for every fitted series on ``dates`` (days
        after the fit's last day), inside the metric's physical range 0-100 %."""

    @abstractmethod
    def to_state(self) -> dict[str, Any]:
        """The fitted state to save (``persistence.save_model`` wraps it in its envelope)."""

    @classmethod
    @abstractmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        """A fitted model back from ``to_state`` (``persistence.load_model``)."""
