"""The business calendar in the models: a month-end spike (or a user's own window) is forecast."""

from __future__ import annotations

import io
from collections.abc import Iterator

import joblib
import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from capacity_forecaster.core.calendar_windows import days_to_window_end, window_flags
from capacity_forecaster.core.errors import StorageError
from capacity_forecaster.core.params import Params
from capacity_forecaster.core.params_calendar import CalendarParams
from capacity_forecaster.forecasting.models import (
    ForecastModel,
    load_model,
    make_model,
    model_factories,
    save_model,
)
from capacity_forecaster.forecasting.models.prophet import ProphetModel
from capacity_forecaster.forecasting.models.tree_features import (
    design,
    feature_names,
    origin_state,
    target_calendar,
    to_grid,
)
from capacity_forecaster.forecasting.models.trees import RandomForestModel, TreeModel
from capacity_forecaster.forecasting.models.trend import RobustTrendModel

# Prophet 1.5 itself still uses pandas APIs that pandas 3.1 deprecates; ours must stay clean.
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning:prophet.*")

END = pd.Timestamp("2026-04-10")  # the history's last day
HORIZON = 60  # two month ends ahead: 29-30 April, 28-29 May
COUNTRY = "US"
SERVERS = pd.DataFrame({"server_id": ["srv-1"], "region": ["us-east"]})
WEEKLY = np.array([5.0, 5.0, 5.0, 5.0, 5.0, -10.0, -15.0])  # Monday..Sunday, mean 0
PAYROLL = CalendarParams(windows={"payroll": {"kind": "day_of_month", "day": 15}})


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    # HistGradientBoosting ignores n_jobs (OpenMP, one thread per core): keep it to one.
    with threadpool_limits(limits=1):
        yield


def _toy(window: str, calendar: CalendarParams) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    """Two years of daily cpu to ``END``: 40 with a weekly pattern, +20 on ``window``'s days
    (in the US); and the horizon's dates."""
    dates = pd.date_range(end=END + pd.Timedelta(days=HORIZON), periods=730 + HORIZON, freq="D")
    spike = window_flags(dates, COUNTRY, calendar)[window]
    noise = np.random.default_rng(0).normal(0.0, 1.0, len(dates))
    values = 40.0 + WEEKLY[dates.day_of_week] + 20.0 * spike + noise
    frame = pd.DataFrame(
        {"server_id": "srv-1", "metric": "cpu_p95", "date": dates, "value": values}
    )
    return frame[frame["date"] <= END].reset_index(drop=True), dates[dates > END]


def _fresh(name: str, calendar: CalendarParams) -> ForecastModel:
    model = make_model(name, calendar=calendar, n_jobs=1, seed=0)
    if isinstance(model, TreeModel):
        model.max_rows = 3000  # few rows: fast, and plenty for one series
    if isinstance(model, ProphetModel):
        model.progress = False
    return model


def _window_rise(model: ForecastModel, window: str, calendar: CalendarParams) -> float:
    """Forecast on the horizon's days of ``window`` minus that on its other business days."""
    history, future = _toy(window, calendar)
    predicted = model.fit(history, SERVERS, horizon_days=HORIZON).predict(future)
    yhat = predicted["yhat"].to_numpy()
    inside = window_flags(future, COUNTRY, calendar)[window]
    assert inside.sum() >= 2  # the horizon holds the window
    business = np.asarray(future.day_of_week < 5) & ~inside
    return float(yhat[inside].mean() - yhat[business].mean())


@pytest.mark.parametrize("name", ["prophet", "gradient_boosting", "random_forest", "robust_trend"])
def test_the_forecast_rises_on_month_end_days(name: str) -> None:
    calendar = CalendarParams()
    assert _window_rise(_fresh(name, calendar), "month_end", calendar) > 10.0


@pytest.mark.parametrize("name", ["prophet", "random_forest", "robust_trend"])
def test_a_users_own_window_is_forecast_likewise(name: str) -> None:
    # Payroll on the 15th (or the business day before it): 15 April and 15 May in the horizon.
    assert _window_rise(_fresh(name, PAYROLL), "payroll", PAYROLL) > 10.0


def test_the_surge_of_the_latest_month_end_carries_to_the_next() -> None:
    # Noise-free, a month end only, its spike growing by a point a month: the surge an origin
    # knows is the spike of the latest month end completed before it, measured against the two
    # weeks before that month end (whole weeks: their weekly pattern averages out).
    calendar = CalendarParams(windows={"quarter_end": None, "year_end": None})
    dates = pd.date_range("2025-01-01", "2025-12-31", freq="D")
    inside = window_flags(dates, COUNTRY, calendar)["month_end"]
    spike = 10.0 + np.asarray(dates.month)
    values = 40.0 + WEEKLY[dates.day_of_week] + spike * inside
    history = pd.DataFrame(
        {"server_id": "srv-1", "metric": "cpu_p95", "date": dates, "value": values}
    )
    grid = to_grid(history)
    surge = origin_state(grid, target_calendar(grid.dates, [COUNTRY], calendar))["month_end_surge"]
    # Each month end's last day (28 and 31 March 2025, a Friday and a Monday, are one).
    last_days = dates[days_to_window_end(dates, COUNTRY, calendar, "month_end") == 0]
    assert pd.Timestamp("2025-03-31") in last_days and pd.Timestamp("2025-03-28") not in last_days
    assert np.isnan(surge[: dates.get_loc(last_days[0]) + 1]).all()  # none completed yet
    for last in last_days[:-1]:
        day = dates.get_loc(last)
        expected = 5.0 + spike[day]  # the spike on weekdays (+5) over the weeks before
        np.testing.assert_allclose(surge[day + 1 : day + 25, 0], expected, err_msg=str(last))


def test_tree_features_follow_the_calendars_windows() -> None:
    history, _ = _toy("payroll", PAYROLL)
    model = RandomForestModel(max_rows=2000, n_jobs=1, calendar=PAYROLL)
    model.servers_ = SERVERS
    _, state, target_cal, meta = model._prepare(history, extra_days=HORIZON)
    origin = len(history) - 1
    X = design(state, target_cal, meta, np.full(3, origin), np.arange(1, 4))
    assert list(X.columns) == model.features == feature_names(list(PAYROLL.windows))
    for window in ("month_end", "quarter_end", "year_end", "payroll"):
        assert {f"{window}_surge", f"target_in_{window}", f"target_{window}_days_to_end"} <= set(
            X.columns
        )
    assert {"target_day_of_month", "target_business_days_to_month_end"} <= set(X.columns)
    assert not {"eoq_surge", "target_is_eoq", "target_days_to_quarter_end"} & set(X.columns)
    # 11, 12 and 13 April 2026: Saturday, Sunday, Monday; payroll is Wednesday the 15th.
    assert list(X["target_day_of_month"]) == [11, 12, 13]
    assert list(X["target_in_payroll"]) == [0.0, 0.0, 0.0]
    assert list(X["target_payroll_days_to_end"]) == [4, 3, 2]


def test_a_saved_model_keeps_its_calendar() -> None:
    history, future = _toy("payroll", PAYROLL)
    model = RandomForestModel(max_rows=2000, n_jobs=1, calendar=PAYROLL)
    model.fit(history, SERVERS, horizon_days=HORIZON)
    loaded = load_model(save_model(model), name="random_forest", horizon_days=HORIZON)
    assert isinstance(loaded, RandomForestModel) and loaded.calendar == PAYROLL
    pd.testing.assert_frame_equal(loaded.predict(future), model.predict(future))
    # A model saved before the calendar (state version 1) is refused with what to do.
    envelope = joblib.load(io.BytesIO(save_model(model)))
    buffer = io.BytesIO()
    joblib.dump({**envelope, "state_version": 1}, buffer)
    with pytest.raises(StorageError, match=r"state version 1\b.*rerun from 04_train"):
        load_model(buffer.getvalue(), name="random_forest")


def test_the_registry_hands_every_model_the_params_calendar() -> None:
    params = Params.model_validate(
        {
            "calendar": PAYROLL.model_dump(),
            "models": {
                "enabled": ["seasonal_naive", "prophet", "gradient_boosting", "robust_trend"]
            },
        }
    )
    made = {name: make() for name, make in model_factories(params).items()}
    assert isinstance(made["prophet"], ProphetModel)
    assert isinstance(made["gradient_boosting"], TreeModel)
    assert isinstance(made["robust_trend"], RobustTrendModel)
    assert made["prophet"].calendar == made["gradient_boosting"].calendar == params.calendar
    assert made["robust_trend"].calendar == params.calendar
