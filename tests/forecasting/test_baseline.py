"""The weekly seasonal-naive baseline on small hand-made series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.params_calendar import CalendarParams
from capacity_forecaster.forecasting.models import (
    PREDICTION_COLUMNS,
    check_roundtrip,
    load_model,
    make_model,
    save_model,
)
from capacity_forecaster.forecasting.models.baseline import SeasonalNaiveModel

START = pd.Timestamp("2026-01-05")  # a Monday
NO_SERVERS = pd.DataFrame()  # the baseline uses no server metadata


def _series(values: np.ndarray, server_id: str = "srv-1", metric: str = "cpu_p95") -> pd.DataFrame:
    dates = pd.date_range(START, periods=len(values), freq="D")
    return pd.DataFrame(
        {
            "server_id": server_id,
            "metric": metric,
            "date": dates,
            "value": np.asarray(values, dtype=float),
        }
    )


def _after(history: pd.DataFrame, days: int) -> pd.DatetimeIndex:
    return pd.date_range(history["date"].max() + pd.Timedelta(days=1), periods=days, freq="D")


def test_repeats_last_weeks_same_weekday_values() -> None:
    history = pd.concat(
        [_series(np.arange(35.0)), _series(50 + np.arange(35.0), server_id="srv-2")],
        ignore_index=True,
    )
    dates = _after(history, 14)
    predicted = SeasonalNaiveModel().fit(history, NO_SERVERS, horizon_days=14).predict(dates)

    assert list(predicted.columns) == PREDICTION_COLUMNS
    assert len(predicted) == 2 * 14
    assert not predicted.duplicated(["server_id", "metric", "date"]).any()
    for server_id, offset in (("srv-1", 0.0), ("srv-2", 50.0)):
        rows = predicted[predicted["server_id"] == server_id].set_index("date")["yhat"]
        # Day 35 + k (k = 0..13) repeats day 28 + (k mod 7): the last week's same weekday.
        expected = offset + 28 + np.arange(14) % 7
        np.testing.assert_array_equal(rows.loc[dates].to_numpy(), expected)


def test_each_series_repeats_its_own_last_week() -> None:
    # srv-2 ends three days earlier: its profile is its own last week, not srv-1's.
    early = _series(100 - np.arange(32.0), server_id="srv-2")
    history = pd.concat([_series(np.arange(35.0)), early], ignore_index=True)
    dates = _after(history, 7)
    predicted = SeasonalNaiveModel().fit(history, NO_SERVERS, horizon_days=7).predict(dates)
    rows = predicted[predicted["server_id"] == "srv-2"].set_index("date")["yhat"]
    for date in dates:
        # The latest srv-2 day with the same weekday (its history ends on day 31).
        day = (date - START).days
        while day > 31:
            day -= 7
        assert rows.loc[date] == 100 - day


def test_weekday_missing_from_the_last_four_weeks_repeats_the_last_value() -> None:
    history = _series(np.arange(42.0))
    dates_ = history["date"]
    # No Monday in the last 28 days (one five weeks back is still there), and a NaN Tuesday.
    recent = dates_ > dates_.max() - pd.Timedelta(days=28)
    history = history[~(recent & (dates_.dt.day_of_week == 0))].copy()
    history.loc[recent & (history["date"].dt.day_of_week == 1), "value"] = np.nan
    last_value = history.dropna()["value"].iloc[-1]

    predicted = (
        SeasonalNaiveModel()
        .fit(history, NO_SERVERS, horizon_days=7)
        .predict(_after(history, 7))
        .set_index("date")["yhat"]
    )
    for date, value in predicted.items():
        if date.day_of_week in (0, 1):
            assert value == last_value, date
        else:
            same_weekday = history[(history["date"].dt.day_of_week == date.day_of_week)][
                "value"
            ].iloc[-1]
            assert value == same_weekday


def test_predictions_are_clipped_to_the_physical_range() -> None:
    values = np.tile([120.0, -5.0, 50.0, 50.0, 50.0, 50.0, 50.0], 5)
    history = _series(values)
    predicted = (
        SeasonalNaiveModel().fit(history, NO_SERVERS, horizon_days=7).predict(_after(history, 7))
    )
    assert predicted["yhat"].between(0, 100).all()
    assert set(predicted["yhat"]) == {100.0, 0.0, 50.0}


def test_round_trip_predicts_identically() -> None:
    history = pd.concat(
        [
            _series(np.random.default_rng(0).uniform(10, 90, 60)),
            _series(np.arange(60.0), metric="mem_p95"),
        ],
        ignore_index=True,
    )
    model = SeasonalNaiveModel().fit(history, NO_SERVERS, horizon_days=21)
    dates = _after(history, 21)
    data = save_model(model)

    loaded = load_model(data, name="seasonal_naive", horizon_days=21)
    assert isinstance(loaded, SeasonalNaiveModel) and loaded.horizon_days_ == 21
    pd.testing.assert_frame_equal(loaded.predict(dates), model.predict(dates))
    check_roundtrip(model, data, dates)

    other = SeasonalNaiveModel().fit(
        history.assign(value=history["value"] / 2), NO_SERVERS, horizon_days=21
    )
    with pytest.raises(StageCheckError, match="seasonal_naive"):
        check_roundtrip(model, save_model(other), dates)


def test_predict_before_fit_and_unknown_model_name() -> None:
    with pytest.raises(RuntimeError):
        SeasonalNaiveModel().predict(pd.date_range("2026-01-01", periods=3))
    assert isinstance(
        make_model("seasonal_naive", calendar=CalendarParams(), n_jobs=1, seed=0),
        SeasonalNaiveModel,
    )
    with pytest.raises(ValueError, match="unknown model"):
        make_model("arima", calendar=CalendarParams(), n_jobs=1, seed=0)
