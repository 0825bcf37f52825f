"""Stage 05: forecasts of every model with calibrated intervals, champions marked, and their check."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from capacity_forecaster.cleaning.features import build_features
from capacity_forecaster.core import scoring
from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.params import FeatureParams, SyntheticParams
from capacity_forecaster.forecasting import backtest as bt
from capacity_forecaster.forecasting import backtest_plan, evaluation, forecast, intervals
from capacity_forecaster.forecasting.models.baseline import SeasonalNaiveModel
from capacity_forecaster.forecasting.models.trees import GradientBoostingModel
from capacity_forecaster.ingest.synthetic import generate_fleet

HORIZON = (
    21  # longer than the backtest's 14 days: the last bucket borrows the widest calibrated one
)
BACKTEST_HORIZON = 14
MODELS = ["seasonal_naive", "gradient_boosting"]
SERIES = ["server_id", "metric"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    # HistGradientBoosting ignores n_jobs (OpenMP, one thread per core): keep it to one.
    with threadpool_limits(limits=1):
        yield


def _gradient_boosting() -> GradientBoostingModel:
    return GradientBoostingModel(max_rows=3000, n_jobs=1, seed=0)


@pytest.fixture(scope="module")
def stage() -> dict:
    """Everything 05_forecast gets from earlier stages, for 3 servers x cpu and memory."""
    raw, servers = generate_fleet(SyntheticParams(n_servers=3, days=250), seed=4)
    features, _ = build_features(raw, servers, FeatureParams())
    history = features.loc[
        features["metric"].isin(["cpu_p95", "mem_p95"]), [*SERIES, "date", "value", "is_imputed"]
    ]
    history = history.reset_index(drop=True)
    factories = {"seasonal_naive": SeasonalNaiveModel, "gradient_boosting": _gradient_boosting}
    origins = backtest_plan.backtest_origins(history["date"].max(), BACKTEST_HORIZON, 2, 14)
    backtest, _ = bt.run_backtest(
        history, servers, factories, origins, horizon_days=BACKTEST_HORIZON
    )
    calibration = intervals.calibrate(backtest, 0.8)
    champions = evaluation.choose_champions(evaluation.score_series(backtest), history, MODELS)
    fitted = {
        name: make().fit(history, servers, horizon_days=HORIZON) for name, make in factories.items()
    }
    frame = forecast.build_forecasts(fitted, history, calibration, champions, HORIZON)
    return {
        "history": history,
        "calibration": calibration,
        "champions": champions,
        "fitted": fitted,
        "frame": frame,
    }


def test_validated_horizon_is_the_one_04_fitted_the_models_for() -> None:
    assert forecast.validated_horizon({"horizon_days": 120, "series": 3}, 120) == 120


def test_a_params_horizon_other_than_the_validated_one_is_refused_in_one_line() -> None:
    with pytest.raises(StageCheckError) as caught:
        forecast.validated_horizon({"horizon_days": 120}, 90)
    message = str(caught.value)
    assert "\n" not in message
    for part in (
        "forecast.horizon_days is 90",
        "fitted for 120 days",
        "models/metrics.json horizon_days",
        "rerun from 04_train",
    ):
        assert part in message, part
    with pytest.raises(StageCheckError, match="does not state horizon_days"):
        forecast.validated_horizon({"series": 3}, 90)


def test_horizon_dates() -> None:
    dates = forecast.horizon_dates(pd.Timestamp("2026-06-30"), 3)
    assert list(dates) == list(pd.to_datetime(["2026-07-01", "2026-07-02", "2026-07-03"]))


def test_every_series_date_and_model_with_one_champion(stage: dict) -> None:
    frame, history = stage["frame"], stage["history"]
    last = history["date"].max()
    n_series = history.groupby(SERIES).ngroups
    assert n_series == 6

    assert list(frame.columns) == forecast.FORECAST_COLUMNS
    assert len(frame) == n_series * HORIZON * len(MODELS)
    assert not frame.duplicated([*SERIES, "model", "date"]).any()
    assert set(frame["model"]) == set(MODELS)
    for (_, _, _), rows in frame.groupby([*SERIES, "model"]):
        assert list(rows["date"]) == list(forecast.horizon_dates(last, HORIZON))
        assert list(rows["horizon"]) == list(range(1, HORIZON + 1))
    assert ((frame["date"] - last).dt.days == frame["horizon"]).all()

    per_day = frame.groupby([*SERIES, "date"])["is_champion"].sum()
    assert (per_day == 1).all()
    champion_model = frame[frame["is_champion"]].groupby(SERIES)["model"].unique()
    expected = stage["champions"].set_index(SERIES)["champion"]
    assert champion_model.map(lambda m: list(m)).to_dict() == {
        key: [value] for key, value in expected.items()
    }

    assert np.isfinite(frame[["yhat", "yhat_lower", "yhat_upper"]].to_numpy()).all()
    assert ((frame["yhat_lower"] <= frame["yhat"]) & (frame["yhat"] <= frame["yhat_upper"])).all()
    assert frame[["yhat", "yhat_lower", "yhat_upper"]].stack().between(0, 100).all()

    summary = forecast.check_forecasts(frame, history, HORIZON, MODELS)
    assert summary["rows"] == len(frame)
    assert summary["series"] == n_series
    assert summary["horizon_days"] == HORIZON
    assert summary["first_date"] == (last + pd.Timedelta(days=1)).date().isoformat()


def test_forecasts_are_the_fitted_models_predictions(stage: dict) -> None:
    frame, history = stage["frame"], stage["history"]
    dates = forecast.horizon_dates(history["date"].max(), HORIZON)
    for name, model in stage["fitted"].items():
        expected = model.predict(dates).sort_values([*SERIES, "date"], ignore_index=True)
        got = frame[frame["model"] == name].sort_values([*SERIES, "date"], ignore_index=True)
        np.testing.assert_array_equal(got["yhat"].to_numpy(), expected["yhat"].to_numpy())


def test_days_past_the_calibrated_horizon_use_the_widest_bucket(stage: dict) -> None:
    frame, history = stage["frame"], stage["history"]
    assert stage["calibration"]["bucket"].max() == 1  # the backtest covered 1..14 days
    scale = scoring.seasonal_naive_scale(history).rename("scale").reset_index()
    rows = frame.merge(scale, on=SERIES)
    rows = rows[(rows["yhat_upper"] < 100) & (rows["yhat_lower"] > 0) & (rows["horizon"] >= 8)]
    assert (rows["horizon"] > BACKTEST_HORIZON).any() and (
        rows["horizon"] <= BACKTEST_HORIZON
    ).any()
    offset = (rows["yhat_upper"] - rows["yhat"]) / rows["scale"].clip(lower=scoring.SCALE_FLOOR)
    # Days 8-14 (bucket 1) and 15-21 (beyond it) share one set of offsets per model and metric.
    assert offset.groupby([rows["model"], rows["metric"]]).std().max() < 1e-9


def _check_fails(frame: pd.DataFrame, history: pd.DataFrame, match: str) -> None:
    with pytest.raises(StageCheckError, match=match):
        forecast.check_forecasts(frame, history, HORIZON, MODELS)


def test_check_forecasts_names_each_problem(stage: dict) -> None:
    frame, history = stage["frame"], stage["history"]

    missing_day = frame.drop(index=frame.index[(frame["model"] == "gradient_boosting")][3])
    _check_fails(
        missing_day,
        history,
        rf"gradient_boosting: {6 * HORIZON - 1} rows, expected 6 series x {HORIZON} days",
    )

    nan = frame.copy()
    nan.loc[7, "yhat"] = np.nan
    _check_fails(nan, history, "1 rows with NaN/inf")

    crossed = frame.copy()
    crossed.loc[7, "yhat_lower"] = crossed.loc[7, "yhat"] + 1.0
    _check_fails(crossed, history, "lower <= yhat <= upper does not hold")

    too_high = frame.copy()
    too_high.loc[7, "yhat_upper"] = 120.0
    _check_fails(too_high, history, "outside the physical range 0-100")

    short = frame[frame["date"] < frame["date"].max()]
    _check_fails(short, history, "dates span")


def test_a_series_without_a_champion_fails_the_check(stage: dict) -> None:
    history, champions = stage["history"], stage["champions"]
    without = champions.iloc[1:]
    frame = forecast.build_forecasts(
        stage["fitted"], history, stage["calibration"], without, HORIZON
    )
    assert frame.groupby(SERIES)["is_champion"].any().sum() == 5
    _check_fails(frame, history, "5 of 6 series have exactly one champion")

    two = stage["frame"].copy()
    two.loc[two["server_id"] == two["server_id"].iloc[0], "is_champion"] = True
    _check_fails(two, history, "have exactly one champion")


def test_a_missing_day_hidden_by_a_duplicate_fails_the_check(stage: dict) -> None:
    frame, history = stage["frame"], stage["history"]
    series = (frame["server_id"] == frame["server_id"].iloc[0]) & (
        frame["metric"] == frame["metric"].iloc[0]
    )
    rows = frame.index[series & (frame["model"] == "gradient_boosting")]
    broken = frame.copy()
    broken.loc[rows[5], ["date", "horizon"]] = broken.loc[rows[4], ["date", "horizon"]].to_numpy()
    with pytest.raises(StageCheckError):
        forecast.check_forecasts(broken, history, HORIZON, MODELS)


def test_days_past_a_shortened_backtest_are_flagged_with_wider_intervals(stage) -> None:
    scored = 20
    frame = forecast.build_forecasts(
        stage["fitted"], stage["history"], stage["calibration"], stage["champions"], HORIZON, scored
    )
    assert (frame["beyond_backtest"] == (frame["horizon"] > scored)).all()
    assert not stage["frame"]["beyond_backtest"].any()  # the full horizon scored: none
    width = (frame["yhat_upper"] - frame["yhat_lower"]).groupby(frame["beyond_backtest"]).mean()
    full = stage["frame"]
    full_width = (full["yhat_upper"] - full["yhat_lower"]).groupby(frame["beyond_backtest"]).mean()
    assert width[True] > full_width[True] and width[False] == pytest.approx(full_width[False])
