"""Global tree models: shape, physical range, no look-ahead, weekly pattern, round trip."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from capacity_forecaster.cleaning.features import build_features
from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.params import FeatureParams, SyntheticParams
from capacity_forecaster.forecasting.models import (
    PREDICTION_COLUMNS,
    check_roundtrip,
    load_model,
    save_model,
)
from capacity_forecaster.forecasting.models.tree_features import design
from capacity_forecaster.forecasting.models.trees import (
    GradientBoostingModel,
    RandomForestModel,
    TreeModel,
)
from capacity_forecaster.ingest.synthetic import generate_fleet

HORIZON = 14
MODELS = [RandomForestModel, GradientBoostingModel]
MODEL_IDS = ["random_forest", "gradient_boosting"]


def _model(cls: type[TreeModel], seed: int = 0) -> TreeModel:
    return cls(max_rows=3000, n_jobs=1, seed=seed)


def _after(last: pd.Timestamp, days: int) -> pd.DatetimeIndex:
    return pd.date_range(last + pd.Timedelta(days=1), periods=days, freq="D")


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """HistGradientBoosting ignores n_jobs and starts one OpenMP thread per core; on a busy
    machine that oversubscription makes a one-second fit take over a minute."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def fleet() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(cpu history, servers) of a 4-server synthetic fleet, a year and a month long."""
    metrics, servers = generate_fleet(SyntheticParams(n_servers=4, days=400), seed=1)
    features, _ = build_features(metrics, servers, FeatureParams())
    history = features.loc[
        features["metric"] == "cpu_p95", ["server_id", "metric", "date", "value"]
    ]
    return history.reset_index(drop=True), servers


@pytest.fixture(scope="module", params=MODELS, ids=MODEL_IDS)
def fitted(request: pytest.FixtureRequest, fleet: tuple[pd.DataFrame, pd.DataFrame]) -> TreeModel:
    history, servers = fleet
    return _model(request.param).fit(history, servers, horizon_days=HORIZON)


def _servers(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "server_id": [f"srv-{i}" for i in range(n)],
            "region": "eu-west",
            "environment": "prod",
            "criticality": "high",
            "business_unit": "Payments",
            "cpu_cores": 8,
            "memory_gb": 32,
        }
    )


def _frame(values: np.ndarray, start: str = "2025-01-06") -> pd.DataFrame:
    """Long cpu history from a ``[days, servers]`` matrix."""
    days, n = values.shape
    dates = pd.date_range(start, periods=days, freq="D")
    return pd.DataFrame(
        {
            "server_id": np.tile([f"srv-{i}" for i in range(n)], days),
            "metric": "cpu_p95",
            "date": np.repeat(dates.values, n),
            "value": values.reshape(-1),
        }
    )


def test_one_row_per_series_and_date_in_range(
    fitted: TreeModel, fleet: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    history, _ = fleet
    dates = _after(history["date"].max(), HORIZON)
    predicted = fitted.predict(dates)

    assert list(predicted.columns) == PREDICTION_COLUMNS
    n_series = history.groupby(["server_id", "metric"]).ngroups
    assert len(predicted) == n_series * HORIZON
    assert not predicted.duplicated(["server_id", "metric", "date"]).any()
    assert set(predicted["server_id"]) == set(history["server_id"])
    for _, rows in predicted.groupby(["server_id", "metric"]):
        assert list(rows["date"]) == list(dates)
    assert np.isfinite(predicted["yhat"]).all()
    assert predicted["yhat"].between(0, 100).all()


@pytest.mark.parametrize("cls", MODELS, ids=MODEL_IDS)
def test_series_trending_to_100_stays_in_range(cls: type[TreeModel]) -> None:
    rng = np.random.default_rng(5)
    days = 240
    ramp = np.minimum(100.0, np.linspace(30, 115, days))  # hits the ceiling and stays there
    values = np.column_stack(
        [ramp + rng.normal(0, 1, days), 40 + rng.normal(0, 2, days), 95 + rng.normal(0, 3, days)]
    )
    values = np.clip(values, 0, 100)
    history = _frame(values)
    model = _model(cls).fit(history, _servers(3), horizon_days=30)
    predicted = model.predict(_after(history["date"].max(), 30))
    assert np.isfinite(predicted["yhat"]).all()
    assert predicted["yhat"].between(0, 100).all()


class _Constant:
    """A stand-in estimator that predicts a fixed change from the level."""

    def __init__(self, delta: float) -> None:
        self.delta = delta

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.full(len(X), self.delta)


@pytest.mark.parametrize("delta, bound", [(500.0, 100.0), (-500.0, 0.0)])
def test_predictions_are_clipped_whatever_the_estimator_says(
    fitted: TreeModel, fleet, delta: float, bound: float
) -> None:
    history, _ = fleet
    model = load_model(save_model(fitted), name=fitted.name)
    model.fitted_["cpu_p95"].estimator = _Constant(delta)
    predicted = model.predict(_after(history["date"].max(), 5))
    assert (predicted["yhat"] == bound).all()


# --- no look-ahead ---------------------------------------------------------------------------


def test_features_at_an_origin_never_use_later_days(
    fleet: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """The design rows for origin t and horizons 1..h are the same whether the history ends
    on day t or goes on for months: nothing after the origin leaks into a feature."""
    history, servers = fleet
    model = _model(GradientBoostingModel)
    model.servers_ = servers
    grid, state, target_cal, meta = model._prepare(history, extra_days=0)
    horizons = np.arange(1, 31)
    for origin in (60, 150, 250, len(grid.dates) - 31):
        cut = history[history["date"] <= grid.dates[origin]]
        _, cut_state, cut_cal, cut_meta = model._prepare(cut, extra_days=30)
        full = design(state, target_cal, meta, np.full(len(horizons), origin), horizons)
        truncated = design(cut_state, cut_cal, cut_meta, np.full(len(horizons), origin), horizons)
        pd.testing.assert_frame_equal(
            full, truncated, obj=f"features at origin {grid.dates[origin].date()}"
        )


@pytest.mark.parametrize("cls", MODELS, ids=MODEL_IDS)
def test_changing_the_future_does_not_change_a_forecast(cls: type[TreeModel], fleet) -> None:
    history, servers = fleet
    cut_off = history["date"].max() - pd.Timedelta(days=40)
    altered = history.copy()
    future = altered["date"] > cut_off
    altered.loc[future, "value"] = 100 - altered.loc[future, "value"]  # wildly different
    extra = altered[future].assign(date=lambda f: f["date"] + pd.Timedelta(days=400))
    altered = pd.concat([altered, extra], ignore_index=True)

    dates = _after(cut_off, HORIZON)
    model = _model(cls).fit(history[history["date"] <= cut_off], servers, horizon_days=HORIZON)
    other = _model(cls).fit(altered[altered["date"] <= cut_off], servers, horizon_days=HORIZON)

    assert model.history_ is not None
    assert model.history_["date"].max() == cut_off
    assert model.fitted_["cpu_p95"].last_date == cut_off
    pd.testing.assert_frame_equal(model.predict(dates), other.predict(dates), check_exact=True)


# --- behaviour ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", MODELS, ids=MODEL_IDS)
def test_strong_weekly_series_keeps_its_weekly_pattern(cls: type[TreeModel]) -> None:
    rng = np.random.default_rng(11)
    days = 280
    dates = pd.date_range("2025-01-06", periods=days, freq="D")
    weekday = np.asarray(dates.day_of_week < 5)[:, None]
    levels = np.array([30.0, 45.0, 60.0])
    values = levels + np.where(weekday, 15.0, -15.0) + rng.normal(0, 1.5, (days, 3))
    history = _frame(values)
    model = _model(cls).fit(history, _servers(3), horizon_days=HORIZON)
    predicted = model.predict(_after(history["date"].max(), HORIZON))
    for server_id, rows in predicted.groupby("server_id"):
        is_weekend = rows["date"].dt.day_of_week >= 5
        weekday_mean, weekend_mean = (
            rows.loc[~is_weekend, "yhat"].mean(),
            rows.loc[is_weekend, "yhat"].mean(),
        )
        assert weekday_mean - weekend_mean > 15, (server_id, weekday_mean, weekend_mean)


@pytest.mark.parametrize("cls", MODELS, ids=MODEL_IDS)
def test_history_shorter_than_a_year_still_fits(cls: type[TreeModel], fleet) -> None:
    history, servers = fleet
    short = history[history["date"] > history["date"].max() - pd.Timedelta(days=200)]
    model = _model(cls).fit(short, servers, horizon_days=HORIZON)
    assert {"year_change", "year_target", "year_target_smooth"} <= set(
        model.fitted_["cpu_p95"].unknown
    )
    predicted = model.predict(_after(short["date"].max(), HORIZON))
    assert len(predicted) == 4 * HORIZON
    assert np.isfinite(predicted["yhat"]).all()
    assert predicted["yhat"].between(0, 100).all()


def test_dates_not_after_the_history_raise(fitted: TreeModel, fleet) -> None:
    history, _ = fleet
    last = history["date"].max()
    with pytest.raises(ValueError, match="after the history's last day"):
        fitted.predict(pd.DatetimeIndex([last]))
    with pytest.raises(ValueError, match="after the history's last day"):
        fitted.predict(pd.DatetimeIndex([last - pd.Timedelta(days=3), last + pd.Timedelta(days=1)]))


def test_dates_long_before_the_history_raise_value_error(fitted: TreeModel, fleet) -> None:
    history, _ = fleet
    with pytest.raises(ValueError, match="after the history's last day"):
        fitted.predict(pd.date_range(history["date"].min() - pd.Timedelta(days=30), periods=3))


def test_dates_beyond_the_horizon_fitted_for_raise(fitted: TreeModel, fleet) -> None:
    history, _ = fleet
    assert fitted.horizon_days_ == HORIZON
    with pytest.raises(ValueError, match=f"fitted for up to {HORIZON} days ahead, asked for 15"):
        fitted.predict(_after(history["date"].max(), HORIZON + 1))


def test_training_rows_cover_exactly_the_horizon_given_to_fit(fleet) -> None:
    history, servers = fleet
    model = _model(GradientBoostingModel)
    model.servers_ = servers
    X, _, _ = model._training_rows(history, np.random.default_rng(0), horizon_days=9)
    assert sorted(X["horizon"].unique()) == list(range(1, 10))


def test_predict_before_fit_raises() -> None:
    with pytest.raises(RuntimeError):
        _model(GradientBoostingModel).predict(pd.date_range("2026-01-01", periods=3))


# --- round trip --------------------------------------------------------------------------------


def test_round_trip_predicts_identically(fitted: TreeModel, fleet) -> None:
    history, _ = fleet
    dates = _after(history["date"].max(), HORIZON)
    data = save_model(fitted)
    expected = fitted.predict(dates)
    loaded = load_model(data, name=fitted.name, horizon_days=HORIZON)
    assert type(loaded) is type(fitted)
    pd.testing.assert_frame_equal(loaded.predict(dates), expected, check_exact=True)
    check_roundtrip(fitted, data, dates)


def test_check_roundtrip_rejects_another_models_bytes(fitted: TreeModel, fleet) -> None:
    history, servers = fleet
    dates = _after(history["date"].max(), HORIZON)
    other = _model(type(fitted), seed=1).fit(
        history.assign(value=history["value"] * 0.5), servers, horizon_days=HORIZON
    )
    with pytest.raises(StageCheckError, match=fitted.name):
        check_roundtrip(fitted, save_model(other), dates)


def test_gradient_boosting_fits_metrics_in_workers_exactly_as_in_process() -> None:
    """Metrics fitted side by side in worker processes give the in-process model, bit for bit."""
    metrics, servers = generate_fleet(SyntheticParams(n_servers=3, days=200), seed=2)
    history, _ = build_features(metrics, servers, FeatureParams())
    history = history[["server_id", "metric", "date", "value"]]
    dates = _after(history["date"].max(), HORIZON)

    def fit(n_jobs: int) -> pd.DataFrame:
        model = GradientBoostingModel(max_rows=2000, n_jobs=n_jobs, seed=3)
        return model.fit(history, servers, horizon_days=HORIZON).predict(dates)

    in_process, in_workers = fit(1), fit(2)
    assert set(in_workers["metric"]) == {"cpu_p95", "mem_p95", "disk_p95"}
    pd.testing.assert_frame_equal(in_workers, in_process)
