"""Champion choice per metric with its fallbacks, and the honestly chosen champion's rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from capacity_forecaster.forecasting import evaluation


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
            _history("short", 10, rng.uniform(20, 60, 10)),
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
    champions = evaluation.choose_champions(scores, history, enabled).set_index("server_id")

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
    assert "history of 10 days" in champions.loc["short", "reason"]
    assert str(evaluation.MIN_TRAIN_DAYS) in champions.loc["short", "reason"]
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
    in_sample = evaluation.score_series(backtest).set_index(["model", "server_id"])["mase"]
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
    honest = evaluation.honest_champion_rows(
        backtest, history, ["seasonal_naive", "gradient_boosting"]
    )
    assert (honest["model"] == "champion").all()
    srv1 = honest[honest["server_id"] == "srv-1"].groupby("origin")["yhat"].first()
    # Origins 1 and 2: chosen on {2, 3} / {1, 3}, seasonal_naive (1 < 5); origin 3: chosen on
    # {1, 2}, gradient_boosting (0 < 1), which then misses by 10 there.
    assert srv1.to_dict() == {origins[0]: 51.0, origins[1]: 51.0, origins[2]: 60.0}
    # A series never scored on the other origins falls back to the baseline.
    srv2 = honest[honest["server_id"] == "srv-2"]
    assert len(srv2) == 7 and (srv2["yhat"] == 51.0).all()
    assert len(honest) == 4 * 7


def test_a_series_idle_at_zero_has_no_mape_and_its_scores_still_write() -> None:
    # MAPE is undefined where every actual is under the floor (a VM idling at 0 %).
    from capacity_forecaster.core import catalog, scoring

    frame = pd.DataFrame(
        {
            "model": "seasonal_naive",
            "server_id": "idle",
            "metric": "cpu_p95",
            "actual": [0.0, 0.0, 0.0],
            "yhat": [0.5, 0.0, 0.2],
            "scale": [1.0, 1.0, 1.0],
            "yhat_lower": [0.0, 0.0, 0.0],
            "yhat_upper": [1.0, 1.0, 1.0],
        }
    )
    scores = scoring.score(frame, ["model", "server_id", "metric"])
    assert scores["mape"].isna().all() and scores["mase"].notna().all()
    schema = catalog.SERIES_SCORES.table
    assert schema is not None and schema.problems(scores) == []
