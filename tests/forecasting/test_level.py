"""The recent-level model: the median of the last observed week, held flat."""

from __future__ import annotations

import numpy as np
import pandas as pd

from capacity_forecaster.core.params_calendar import CalendarParams
from capacity_forecaster.forecasting.models import check_roundtrip, make_model, save_model

START = pd.Timestamp("2026-01-05")


def _series(values: list[float], imputed: list[bool] | None = None) -> pd.DataFrame:
    dates = pd.date_range(START, periods=len(values), freq="D")
    return pd.DataFrame(
        {
            "server_id": "srv-1",
            "metric": "cpu_p95",
            "date": dates,
            "value": np.asarray(values, dtype=float),
            "is_imputed": imputed or [False] * len(values),
        }
    )


def _model():
    return make_model("recent_level", calendar=CalendarParams(), n_jobs=1, seed=0)


def test_forecast_is_the_median_of_the_last_observed_week_clipped() -> None:
    # Ten old days at 10, then a step to about 60 with one spike: the level is 60, not 10 or 99.
    history = _series([10.0] * 10 + [58, 60, 99, 61, 60, 59, 62])
    dates = pd.date_range(history["date"].max() + pd.Timedelta(days=1), periods=5, freq="D")
    predicted = _model().fit(history, pd.DataFrame(), horizon_days=5).predict(dates)
    assert predicted["yhat"].tolist() == [60.0] * 5
    assert predicted["date"].tolist() == list(dates)


def test_imputed_days_do_not_make_the_level_and_it_survives_a_save() -> None:
    values = [20.0] * 10 + [80.0] * 4
    imputed = [False] * 10 + [True] * 4  # interpolated days are not observations
    history = _series(values, imputed)
    dates = pd.date_range(history["date"].max() + pd.Timedelta(days=1), periods=3, freq="D")
    model = _model().fit(history, pd.DataFrame(), horizon_days=3)
    assert model.predict(dates)["yhat"].tolist() == [20.0] * 3
    check_roundtrip(model, save_model(model), dates)
