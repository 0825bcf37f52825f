"""Rolling-origin backtest, its checks, champion choice and the metrics report."""

from __future__ import annotations

import json
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
from capacity_forecaster.forecasting.models.baseline import SeasonalNaiveModel
from capacity_forecaster.forecasting.models.trees import GradientBoostingModel
from capacity_forecaster.forecasting.models.trend import RobustTrendModel
from capacity_forecaster.ingest.synthetic import generate_fleet

HORIZON = 14
N_ORIGINS = 3
STEP = 14
ENABLED = ["seasonal_naive", "gradient_boosting"]
SERIES = ["server_id", "metric"]
LATE = ("srv-00004", "cpu_p95")  # starts 90 days before the end: too short at the first origin
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
    history = history[~late | (history["date"] > last - pd.Timedelta(days=90))].reset_index(
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
        "gradient_boosting": lambda: GradientBoostingModel(
            horizon_days=HORIZON, max_rows=3000, n_jobs=1, seed=0
        ),
    }


@pytest.fixture(scope="module")
def backtest(fleet) -> tuple[pd.DataFrame, dict[str, float], list[pd.Timestamp]]:
    history, servers = fleet
    origins = bt.backtest_origins(history["date"].max(), HORIZON, N_ORIGINS, STEP)
    rows, seconds = bt.run_backtest(history, servers, _factories(), origins, HORIZON)
    return rows, seconds, origins


def test_backtest_origins_spacing_and_order() -> None:
    origins = bt.backtest_origins(pd.Timestamp("2026-06-30"), 30, 3, 28)
    assert origins == [
        pd.Timestamp("2026-04-05"),
        pd.Timestamp("2026-05-03"),
        pd.Timestamp("2026-05-31"),
    ]
    assert bt.backtest_origins("2026-06-30", 14, 1, 7) == [pd.Timestamp("2026-06-16")]


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
        eligible = span[(span["max"] - span["min"]).dt.days + 1 >= bt.MIN_TRAIN_DAYS].index
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
    # 48 days of history at the first origin (< 56), 62 and 76 at the next two.
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


# --- champions -----------------------------------------------------------------------------


def _history(
    server_id: str, days: int, values: np.ndarray | float, metric: str = "cpu_p95"
) -> pd.DataFrame:
    dates = pd.date_range("2026-01-01", periods=days, freq="D")
    return pd.DataFrame({"server_id": server_id, "metric": metric, "date": dates, "value": values})


def test_choose_champions_per_metric_and_baseline_fallbacks() -> None:
    rng = np.random.default_rng(0)
    history = pd.concat(
        [
            _history("good", 100, rng.uniform(20, 60, 100)),
            _history("flat", 100, 5.0),
            _history("short", 30, rng.uniform(20, 60, 30)),
            _history("unscored", 100, rng.uniform(20, 60, 100)),
            _history("baseline-only", 100, rng.uniform(20, 60, 100)),
        ],
        ignore_index=True,
    )
    scores = pd.DataFrame(
        [
            ("good", "seasonal_naive", 1.0),
            ("good", "random_forest", 0.9),
            ("good", "gradient_boosting", 0.8),
            ("good", "prophet", 0.1),  # not enabled: never a champion
            ("flat", "seasonal_naive", 1.0),
            ("flat", "gradient_boosting", 0.5),
            ("short", "seasonal_naive", 1.0),
            ("short", "gradient_boosting", 0.5),
            ("baseline-only", "seasonal_naive", 1.2),
        ],
        columns=["server_id", "model", "mase"],
    ).assign(metric="cpu_p95")
    enabled = ["seasonal_naive", "random_forest", "gradient_boosting"]
    champions = bt.choose_champions(scores, history, enabled).set_index("server_id")

    assert list(champions.columns) == [
        "metric",
        "champion",
        "reason",
        "champion_mase",
        "baseline_mase",
    ]
    assert len(champions) == 5
    good = champions.loc["good"]
    assert good["champion"] == "gradient_boosting"
    # Chosen per metric: means over the cpu_p95 series scored (prophet is not enabled).
    assert good["reason"] == (
        "lowest mean backtest MASE on cpu_p95 across the fleet: gradient_boosting 0.60"
        " (vs random_forest 0.90, seasonal_naive 1.05)"
    )
    assert good["champion_mase"] == 0.8 and good["baseline_mase"] == 1.0

    assert champions.loc["flat", "champion"] == "seasonal_naive"
    assert champions.loc["flat", "reason"].startswith("flat series (std 0.000 points)")
    assert champions.loc["short", "champion"] == "seasonal_naive"
    assert "history of 30 days" in champions.loc["short", "reason"]
    assert str(bt.MIN_TRAIN_DAYS) in champions.loc["short", "reason"]
    assert champions.loc["unscored", "champion"] == "seasonal_naive"
    assert "not scored" in champions.loc["unscored", "reason"]
    assert champions.loc["baseline-only", "champion"] == "seasonal_naive"
    assert champions.loc["baseline-only", "reason"] == (
        "lowest mean backtest MASE on cpu_p95 across the fleet: seasonal_naive 1.05"
    )


def _hand_backtest() -> pd.DataFrame:
    """One series, three origins: gradient_boosting is perfect at the first two and far off at the
    last; seasonal_naive is off by 1 everywhere. A second series exists at the last origin only."""
    origins = pd.to_datetime(["2026-01-04", "2026-01-11", "2026-01-18"])
    parts = []
    for i, origin in enumerate(origins):
        dates = pd.date_range(origin + pd.Timedelta(days=1), periods=7, freq="D")
        series = [("srv-1", "cpu_p95")] + ([("srv-2", "cpu_p95")] if i == 2 else [])
        for server_id, metric in series:
            for model, error in (
                ("gradient_boosting", 10.0 if i == 2 else 0.0),
                ("seasonal_naive", 1.0),
            ):
                parts.append(
                    pd.DataFrame(
                        {
                            "model": model,
                            "origin": origin,
                            "server_id": server_id,
                            "metric": metric,
                            "date": dates,
                            "horizon": np.arange(1, 8),
                            "yhat": 50.0 + error,
                            "actual": 50.0,
                            "scale": 1.0,
                        }
                    )
                )
    return pd.concat(parts, ignore_index=True)


def test_honest_champion_rows_choose_on_the_other_origins() -> None:
    backtest = _hand_backtest()
    origins = sorted(backtest["origin"].unique())
    in_sample = bt.score_series(backtest).set_index(["model", "server_id"])["mase"]
    # In sample, seasonal_naive wins (1.0 against gradient_boosting's 10/3).
    assert in_sample[("seasonal_naive", "srv-1")] < in_sample[("gradient_boosting", "srv-1")]

    # A long, varied history for both series, so neither falls back for shortness or flatness.
    days = pd.date_range("2025-01-01", periods=120, freq="D")
    history = pd.concat(
        pd.DataFrame(
            {
                "server_id": sid,
                "metric": metric,
                "date": days,
                "value": 40 + 10 * np.sin(np.arange(120)),
            }
        )
        for sid, metric in backtest[["server_id", "metric"]]
        .drop_duplicates()
        .itertuples(index=False)
    )
    honest = bt.honest_champion_rows(backtest, history, ["seasonal_naive", "gradient_boosting"])
    assert (honest["model"] == "champion").all()
    srv1 = honest[honest["server_id"] == "srv-1"].groupby("origin")["yhat"].first()
    # Origins 1 and 2: chosen on {2, 3} / {1, 3}, seasonal_naive (1 < 5); origin 3: chosen on
    # {1, 2}, gradient_boosting (0 < 1), which then misses by 10 there.
    assert srv1.to_dict() == {origins[0]: 51.0, origins[1]: 51.0, origins[2]: 60.0}
    # A series never scored on the other origins falls back to the baseline.
    srv2 = honest[honest["server_id"] == "srv-2"]
    assert len(srv2) == 7 and (srv2["yhat"] == 51.0).all()
    assert len(honest) == 4 * 7


def test_evaluate_report_is_json_with_models_metrics_and_champions(backtest, fleet) -> None:
    rows, seconds, origins = backtest
    history, _ = fleet
    report, series_scores, champions = bt.evaluate(rows, history, ENABLED, 0.8, origins, seconds)

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


def test_history_too_short_for_the_backtest_names_the_numbers_and_params() -> None:
    dates = pd.date_range("2026-03-03", periods=120, freq="D")
    history = pd.DataFrame({"server_id": "a", "metric": "cpu_p95", "date": dates, "value": 1.0})
    origins = bt.backtest_origins(dates[-1], horizon_days=90, n_origins=3, step_days=28)
    with pytest.raises(StageCheckError) as caught:
        bt.check_history_length(history, origins, horizon_days=90)
    message = str(caught.value)
    assert "120 days of history" in message and "needs 202" in message
    for key in ("models.backtest_origins", "models.backtest_step_days", "forecast.horizon_days"):
        assert key in message
    longer = pd.DataFrame(
        {"server_id": "a", "metric": "cpu_p95", "value": 1.0,
         "date": pd.date_range(dates[-1] - pd.Timedelta(days=201), dates[-1], freq="D")}
    )  # fmt: skip
    bt.check_history_length(longer, origins, horizon_days=90)  # exactly enough


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
        "robust_trend": lambda: RobustTrendModel(horizon_days=HORIZON),
        "gradient_boosting": _never_fitted,
    }


def test_season_origins_are_52_weeks_before_each_origin_and_the_last_day(long_fleet) -> None:
    history, _ = long_fleet
    last = history["date"].max()
    origins = bt.backtest_origins(last, HORIZON, N_ORIGINS, STEP)
    mapping = bt.season_origins(history, origins, HORIZON)
    assert list(mapping) == [*origins, last]
    assert all((target - season).days == 364 for target, season in mapping.items())
    # Too little history before the oldest of them: none.
    oldest = mapping[origins[0]]
    short = history[history["date"] > oldest - pd.Timedelta(days=bt.MIN_TRAIN_DAYS - 1)]
    assert bt.season_origins(short, origins, HORIZON) is None
    assert (
        bt.season_origins(
            history[history["date"] > oldest - pd.Timedelta(days=bt.MIN_TRAIN_DAYS)],
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
    origins = bt.backtest_origins(last, HORIZON, N_ORIGINS, STEP)
    rows = bt.run_season_backtest(history, servers, _season_factories(), origins, HORIZON)

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
        history, servers, {"seasonal_naive": SeasonalNaiveModel}, season, HORIZON
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
    origins = bt.backtest_origins(history["date"].max(), HORIZON, N_ORIGINS, STEP)
    with caplog.at_level("INFO", logger="capacity_forecaster.forecasting.backtest"):
        rows = bt.run_season_backtest(history, servers, _season_factories(), origins, HORIZON)
    assert rows.empty and {"model", "origin", "for_origin"} <= set(rows.columns)
    assert "needs 462 days of history" in caplog.text  # 42 between origins + 364 + 56

    # Memory recorded only in the last 300 days: the seasons a year earlier have none to score.
    history, servers = long_fleet
    last = history["date"].max()
    late_memory = (history["metric"] == "mem_p95") & (
        history["date"] <= last - pd.Timedelta(days=300)
    )
    origins = bt.backtest_origins(last, HORIZON, N_ORIGINS, STEP)
    caplog.clear()
    with caplog.at_level("INFO", logger="capacity_forecaster.forecasting.backtest"):
        rows = bt.run_season_backtest(
            history[~late_memory], servers, _season_factories(), origins, HORIZON
        )
    assert rows.empty
    assert "robust_trend, seasonal_naive calibrated on the backtest origins" in caplog.text
    assert "there is no mem_p95 series to score" in caplog.text


def test_evaluate_says_where_each_models_intervals_come_from(long_fleet) -> None:
    history, servers = long_fleet
    origins = bt.backtest_origins(history["date"].max(), HORIZON, N_ORIGINS, STEP)
    factories = {
        "seasonal_naive": SeasonalNaiveModel,
        "robust_trend": _season_factories()["robust_trend"],
    }
    rows, seconds = bt.run_backtest(history, servers, factories, origins, HORIZON)
    season = bt.run_season_backtest(history, servers, factories, origins, HORIZON)
    report, series_scores, _ = bt.evaluate(
        rows, history, list(factories), 0.8, origins, seconds, season
    )
    assert set(report["interval_calibration"]) == set(factories)
    assert all(
        "same season a year earlier" in text for text in report["interval_calibration"].values()
    )
    without, _, _ = bt.evaluate(rows, history, list(factories), 0.8, origins, seconds)
    assert all("backtest origins" in text for text in without["interval_calibration"].values())
    # Coverage is measured with the intervals each origin would have had from its season.
    assert series_scores["coverage"].between(0, 1).all()
    seasonal = {m["model"]: m["coverage"] for m in report["models"]}
    plain = {m["model"]: m["coverage"] for m in without["models"]}
    assert seasonal["robust_trend"] != plain["robust_trend"]
    assert seasonal["seasonal_naive"] != plain["seasonal_naive"]
