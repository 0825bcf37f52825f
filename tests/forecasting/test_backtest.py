"""Rolling-origin backtest, its checks, the season rows, the metrics report and ``run``."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from capacity_forecaster.cleaning.features import build_features
from capacity_forecaster.core import catalog, scoring
from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.params import FeatureParams, SyntheticParams
from capacity_forecaster.forecasting import backtest as bt
from capacity_forecaster.forecasting import backtest_plan, evaluation, intervals
from capacity_forecaster.forecasting.models.baseline import SeasonalNaiveModel
from capacity_forecaster.forecasting.models.trees import GradientBoostingModel
from capacity_forecaster.forecasting.models.trend import RobustTrendModel
from capacity_forecaster.ingest.synthetic import generate_fleet

HORIZON = 14
N_ORIGINS = 3
STEP = 14
ENABLED = ["seasonal_naive", "gradient_boosting"]
SERIES = ["server_id", "metric"]
LATE = ("srv-00004", "cpu_p95")  # starts 52 days before the end: too short at the first origin
IMPUTED_DAYS = (10, 30)  # days before the end marked as imputed on srv-00001 cpu


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    # HistGradientBoosting ignores n_jobs (OpenMP, one thread per core): keep it to one.
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def fleet() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(history, servers): 4 servers x cpu and memory, ~270 days, one late series, two imputed days."""
    raw, servers = generate_fleet(SyntheticParams(n_servers=4, days=300), seed=2)
    features, _ = build_features(raw, servers, FeatureParams())
    history = features.loc[
        features["metric"].isin(["cpu_p95", "mem_p95"]), [*SERIES, "date", "value", "is_imputed"]
    ]
    last = history["date"].max()
    late = (history["server_id"] == LATE[0]) & (history["metric"] == LATE[1])
    history = history[~late | (history["date"] > last - pd.Timedelta(days=52))].reset_index(
        drop=True
    )
    history["is_imputed"] = False  # only the days marked below, so the test knows them all
    for days in IMPUTED_DAYS:
        mark = (
            (history["server_id"] == "srv-00001")
            & (history["metric"] == "cpu_p95")
            & (history["date"] == last - pd.Timedelta(days=days))
        )
        assert mark.sum() == 1
        history.loc[mark, "is_imputed"] = True
    return history, servers


def _factories() -> dict:
    return {
        "seasonal_naive": SeasonalNaiveModel,
        "gradient_boosting": lambda: GradientBoostingModel(max_rows=3000, n_jobs=1, seed=0),
    }


@pytest.fixture(scope="module")
def backtest(fleet) -> tuple[pd.DataFrame, dict[str, float], list[pd.Timestamp]]:
    history, servers = fleet
    origins = backtest_plan.backtest_origins(history["date"].max(), HORIZON, N_ORIGINS, STEP)
    rows, seconds = bt.run_backtest(history, servers, _factories(), origins, horizon_days=HORIZON)
    return rows, seconds, origins


def test_backtest_origins_spacing_and_order() -> None:
    origins = backtest_plan.backtest_origins(pd.Timestamp("2026-06-30"), 30, 3, 28)
    assert origins == [
        pd.Timestamp("2026-04-05"),
        pd.Timestamp("2026-05-03"),
        pd.Timestamp("2026-05-31"),
    ]
    assert backtest_plan.backtest_origins("2026-06-30", 14, 1, 7) == [pd.Timestamp("2026-06-16")]


def test_every_model_and_origin_with_horizons_1_to_h(backtest) -> None:
    rows, seconds, origins = backtest
    assert set(seconds) == set(ENABLED)
    assert all(s > 0 for s in seconds.values())
    assert {
        "model",
        "origin",
        "server_id",
        "metric",
        "date",
        "horizon",
        "yhat",
        "actual",
        "scale",
    } <= set(rows.columns)
    for name in ENABLED:
        for origin in origins:
            part = rows[(rows["model"] == name) & (rows["origin"] == origin)]
            assert sorted(part["horizon"].unique()) == list(range(1, HORIZON + 1)), (name, origin)
            assert ((part["date"] - origin).dt.days == part["horizon"]).all()
    assert origins[-1] + pd.Timedelta(days=HORIZON) == rows["date"].max()
    assert not rows.duplicated(["model", "origin", "server_id", "metric", "date"]).any()
    assert np.isfinite(rows[["yhat", "actual", "scale"]].to_numpy()).all()
    bt.check_backtest(rows, ENABLED, N_ORIGINS)


def test_rows_are_exactly_the_observed_days_of_eligible_series(backtest, fleet) -> None:
    rows, _, origins = backtest
    history, _ = fleet
    expected = []
    for origin in origins:
        train = history[history["date"] <= origin]
        span = train.groupby(SERIES)["date"].agg(["min", "max"])
        eligible = span[
            (span["max"] - span["min"]).dt.days + 1 >= backtest_plan.MIN_TRAIN_DAYS
        ].index
        window = history[
            (history["date"] > origin)
            & (history["date"] <= origin + pd.Timedelta(days=HORIZON))
            & ~history["is_imputed"]
        ]
        window = window.set_index(SERIES).loc[lambda f, e=eligible: f.index.isin(e)].reset_index()
        expected.append(window.assign(origin=origin))
    expected = pd.concat(expected, ignore_index=True)
    for name in ENABLED:
        got = rows[rows["model"] == name]
        key = ["origin", *SERIES, "date"]
        merged = got.merge(expected, on=key, how="outer", indicator=True)
        assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"][key]
        np.testing.assert_array_equal(merged["actual"].to_numpy(), merged["value"].to_numpy())


def test_imputed_days_are_not_scored(backtest, fleet) -> None:
    rows, _, _ = backtest
    history, _ = fleet
    imputed = history.loc[history["is_imputed"], [*SERIES, "date"]]
    assert len(imputed) == len(IMPUTED_DAYS)
    assert rows.merge(imputed, on=[*SERIES, "date"]).empty


def test_series_with_too_little_history_are_left_out_at_that_origin(backtest) -> None:
    rows, _, origins = backtest
    late = (rows["server_id"] == LATE[0]) & (rows["metric"] == LATE[1])
    # 10 days of history at the first origin (< 14), 24 and 38 at the next two.
    assert rows.loc[late, "origin"].nunique() == 2
    assert origins[0] not in set(rows.loc[late, "origin"])
    assert rows[rows["origin"] == origins[0]].groupby(SERIES).ngroups == 7
    assert rows[rows["origin"] == origins[1]].groupby(SERIES).ngroups == 8


def test_scale_is_the_training_windows_seasonal_naive_mae(backtest, fleet) -> None:
    rows, _, origins = backtest
    history, _ = fleet
    for origin in origins:
        expected = scoring.seasonal_naive_scale(history[history["date"] <= origin])
        got = rows[(rows["origin"] == origin)].groupby(SERIES)["scale"].first()
        pd.testing.assert_series_equal(got, expected.loc[got.index], check_names=False)


def test_check_backtest_raises_on_a_missing_origin_and_bad_values(backtest) -> None:
    rows, _, origins = backtest
    missing = rows[~((rows["model"] == "gradient_boosting") & (rows["origin"] == origins[1]))]
    with pytest.raises(StageCheckError, match="gradient_boosting scored at 2 of 3 origins"):
        bt.check_backtest(missing, ENABLED, N_ORIGINS)
    with pytest.raises(StageCheckError, match="random_forest scored at 0 of 3"):
        bt.check_backtest(rows, [*ENABLED, "random_forest"], N_ORIGINS)
    for bad in (np.nan, np.inf, 100.5, -0.1):
        broken = rows.copy()
        broken.loc[broken.index[5], "yhat"] = bad
        with pytest.raises(StageCheckError, match=r"1 forecasts NaN/inf or outside 0-100"):
            bt.check_backtest(broken, ENABLED, N_ORIGINS)


def test_evaluate_report_is_json_with_models_metrics_and_champions(backtest, fleet) -> None:
    rows, seconds, origins = backtest
    history, _ = fleet
    report, series_scores, champions = evaluation.evaluate(
        rows, history, ENABLED, 0.8, origins, seconds, horizon_days=HORIZON
    )

    text = json.dumps(report, allow_nan=False)
    assert json.loads(text) == json.loads(json.dumps(report, allow_nan=False))
    assert report["horizon_days"] == HORIZON
    assert report["origins"] == [o.date().isoformat() for o in origins]
    assert report["series"] == history.groupby(SERIES).ngroups == 8
    assert {m["model"] for m in report["models"]} == {*ENABLED, "champion"}
    assert {(m["model"], m["metric"]) for m in report["models_by_metric"]} == {
        (model, metric) for model in [*ENABLED, "champion"] for metric in ("cpu_p95", "mem_p95")
    }
    baseline = next(m for m in report["models"] if m["model"] == "seasonal_naive")
    assert baseline["beats_baseline_share"] == 0.0
    for model in report["models"]:
        assert 0.0 <= model["coverage"] <= 1.0
        assert model["series"] == 8
    assert sum(report["champions"].values()) == 8
    assert set(report["champions"]) <= set(ENABLED)

    assert set(series_scores["model"]) == {*ENABLED, "champion"}
    assert series_scores["coverage"].between(0, 1).all()
    assert len(champions) == 8 and not champions.duplicated(SERIES).any()
    assert champions["champion"].isin(ENABLED).all()
    assert champions["reason"].str.len().gt(0).all()


def test_origins_of_a_caller_that_leave_too_little_training_are_refused() -> None:
    dates = pd.date_range("2026-03-03", periods=120, freq="D")
    history = pd.DataFrame({"server_id": "a", "metric": "cpu_p95", "date": dates, "value": 1.0})
    origins = backtest_plan.backtest_origins(dates[-1], horizon_days=90, n_origins=3, step_days=28)
    with pytest.raises(StageCheckError, match=r"120 days of history .* need 160"):
        bt.check_history_length(history, origins, horizon_days=90)
    enough = pd.DataFrame(
        {"server_id": "a", "metric": "cpu_p95", "value": 1.0,
         "date": pd.date_range(dates[-1] - pd.Timedelta(days=159), dates[-1], freq="D")}
    )  # fmt: skip
    bt.check_history_length(enough, origins, horizon_days=90)  # exactly enough


# --- intervals calibrated on the same season a year earlier ------------------------------------


@pytest.fixture(scope="module")
def long_fleet() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(history, servers): 3 servers x cpu and memory over ~500 days: long enough for a season
    origin 52 weeks before the oldest backtest origin."""
    raw, servers = generate_fleet(SyntheticParams(n_servers=3, days=520), seed=3)
    features, _ = build_features(raw, servers, FeatureParams())
    history = features.loc[
        features["metric"].isin(["cpu_p95", "mem_p95"]), [*SERIES, "date", "value", "is_imputed"]
    ]
    return history.reset_index(drop=True), servers


def _never_fitted() -> None:
    pytest.fail("a model outside SEASON_CALIBRATED was fitted for the season backtest")


def _season_factories() -> dict:
    return {
        "seasonal_naive": SeasonalNaiveModel,
        "robust_trend": RobustTrendModel,
        "prophet": _never_fitted,  # fits the year: never refitted a year earlier
    }


def test_season_origins_are_52_weeks_before_each_origin_and_the_last_day(long_fleet) -> None:
    history, _ = long_fleet
    last = history["date"].max()
    origins = backtest_plan.backtest_origins(last, HORIZON, N_ORIGINS, STEP)
    mapping = bt.season_origins(history, origins, HORIZON)
    assert list(mapping) == [*origins, last]
    assert all((target - season).days == 364 for target, season in mapping.items())
    # Too little history before the oldest of them: none.
    oldest = mapping[origins[0]]
    short = history[history["date"] > oldest - pd.Timedelta(days=backtest_plan.MIN_TRAIN_DAYS - 1)]
    assert bt.season_origins(short, origins, HORIZON) is None
    assert (
        bt.season_origins(
            history[history["date"] > oldest - pd.Timedelta(days=backtest_plan.MIN_TRAIN_DAYS)],
            origins,
            HORIZON,
        )
        == mapping
    )  # exactly enough
    with pytest.raises(ValueError, match="400-day horizon"):
        bt.season_origins(history, origins, 400)


def test_season_backtest_refits_only_the_year_less_models_and_scores_before_each_origin(
    long_fleet,
) -> None:
    history, servers = long_fleet
    last = history["date"].max()
    origins = backtest_plan.backtest_origins(last, HORIZON, N_ORIGINS, STEP)
    rows = bt.run_season_backtest(
        history, servers, _season_factories(), origins, horizon_days=HORIZON
    )

    assert set(rows["model"]) == {"seasonal_naive", "robust_trend"}
    for model, part in rows.groupby("model"):
        assert sorted(part["for_origin"].unique()) == [*origins, last], model
        assert ((part["for_origin"] - part["origin"]).dt.days == 364).all()
        assert set(part["metric"]) == {"cpu_p95", "mem_p95"}
        assert sorted(part["horizon"].unique()) == list(range(1, HORIZON + 1))
        # Calibration residuals come from a year earlier: never from the days they calibrate.
        assert (part["date"] < part["for_origin"] - pd.Timedelta(days=364 - HORIZON - 1)).all()
    # They are the plain backtest at those origins.
    season = sorted(rows["origin"].unique())
    plain, _ = bt.run_backtest(
        history, servers, {"seasonal_naive": SeasonalNaiveModel}, season, horizon_days=HORIZON
    )
    naive = rows[rows["model"] == "seasonal_naive"].drop(columns="for_origin")
    pd.testing.assert_frame_equal(
        naive.sort_values(["origin", *SERIES, "date"]).reset_index(drop=True),
        plain.sort_values(["origin", *SERIES, "date"]).reset_index(drop=True),
    )


def test_season_backtest_falls_back_when_history_is_short_or_a_metric_is_missing(
    fleet, long_fleet, caplog
) -> None:
    # ~270 days: no season a year before the backtest origins.
    history, servers = fleet
    origins = backtest_plan.backtest_origins(history["date"].max(), HORIZON, N_ORIGINS, STEP)
    with caplog.at_level("INFO", logger="capacity_forecaster.forecasting.backtest"):
        rows = bt.run_season_backtest(
            history, servers, _season_factories(), origins, horizon_days=HORIZON
        )
    assert rows.empty and {"model", "origin", "for_origin"} <= set(rows.columns)
    catalog.check_table(catalog.SEASON_BACKTEST, rows)  # typed, so it can be written as it is
    assert "needs 420 days of history" in caplog.text  # 42 between origins + 364 + 14

    # Memory recorded only in the last 300 days: the seasons a year earlier have none to score.
    history, servers = long_fleet
    last = history["date"].max()
    late_memory = (history["metric"] == "mem_p95") & (
        history["date"] <= last - pd.Timedelta(days=300)
    )
    origins = backtest_plan.backtest_origins(last, HORIZON, N_ORIGINS, STEP)
    caplog.clear()
    with caplog.at_level("INFO", logger="capacity_forecaster.forecasting.backtest"):
        rows = bt.run_season_backtest(
            history[~late_memory], servers, _season_factories(), origins, horizon_days=HORIZON
        )
    assert rows.empty
    assert "robust_trend, seasonal_naive calibrated on the backtest origins" in caplog.text
    assert "there is no mem_p95 series to score" in caplog.text


def test_run_says_where_each_models_intervals_come_from(long_fleet) -> None:
    history, servers = long_fleet
    factories = {"seasonal_naive": SeasonalNaiveModel, "robust_trend": RobustTrendModel}
    result = bt.run(
        history,
        servers,
        factories,
        horizon_days=HORIZON,
        n_origins=N_ORIGINS,
        step_days=STEP,
        interval=0.8,
    )
    report = result.report
    assert set(result.season["model"]) == set(factories)
    assert set(report["interval_calibration"]) == set(factories)
    assert all(
        "same season a year earlier" in text for text in report["interval_calibration"].values()
    )
    without, _, _ = evaluation.evaluate(
        result.results,
        history,
        list(factories),
        0.8,
        result.origins,
        result.fit_seconds,
        horizon_days=HORIZON,
    )
    assert all("backtest origins" in text for text in without["interval_calibration"].values())
    # Coverage is measured with the intervals each origin would have had from its season.
    assert result.series_scores["coverage"].between(0, 1).all()
    seasonal = {m["model"]: m["coverage"] for m in report["models"]}
    plain = {m["model"]: m["coverage"] for m in without["models"]}
    assert seasonal["robust_trend"] != plain["robust_trend"]
    assert seasonal["seasonal_naive"] != plain["seasonal_naive"]
    # The forecast's intervals come from the season rows 52 weeks before the last day.
    expected = intervals.forecast_calibration(
        result.results, 0.8, result.season, history["date"].max()
    )
    pd.testing.assert_frame_equal(result.calibration, expected)


def test_run_is_the_backtest_its_check_and_evaluate_in_one_call(backtest, fleet) -> None:
    rows, _, origins = backtest
    history, servers = fleet
    result = bt.run(
        history,
        servers,
        _factories(),
        horizon_days=HORIZON,
        n_origins=N_ORIGINS,
        step_days=STEP,
        interval=0.8,
    )
    assert result.horizon_days == HORIZON and result.origins == origins
    pd.testing.assert_frame_equal(result.results, rows)
    assert result.season.empty  # ~270 days: no season a year before the origins
    report, series_scores, champions = evaluation.evaluate(
        rows, history, ENABLED, 0.8, origins, result.fit_seconds, result.season,
        horizon_days=HORIZON,
    )  # fmt: skip
    assert result.report == {**report, "backtest": result.plan.describe()}
    assert result.report["horizon_days"] == HORIZON and not result.plan.adjustments
    pd.testing.assert_frame_equal(result.series_scores, series_scores)
    pd.testing.assert_frame_equal(result.champions, champions)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.horizon_days = 7  # type: ignore[misc]


def test_run_shortens_the_backtest_to_the_history_and_refuses_none_at_all(fleet) -> None:
    history, servers = fleet  # ~270 days: 180 + 56 between origins + 14 to train is 250
    result = bt.run(
        history,
        servers,
        {"seasonal_naive": SeasonalNaiveModel},
        horizon_days=250,
        n_origins=3,
        step_days=28,
        interval=0.8,
    )
    assert result.plan.shortened and result.report["horizon_days"] == 250
    assert result.report["backtest"]["scored_horizon_days"] == result.plan.horizon_days < 250
    assert result.results["horizon"].max() == result.plan.horizon_days
    too_short = history[history["date"] > history["date"].max() - pd.Timedelta(days=21)]
    with pytest.raises(StageCheckError, match=r"21 days of history .* at least 22"):
        bt.run(
            too_short,
            servers,
            {"seasonal_naive": SeasonalNaiveModel},
            horizon_days=90,
            n_origins=3,
            step_days=28,
            interval=0.8,
        )
