"""Accuracy metrics against values computed by hand on tiny arrays."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.core import scoring

ACTUAL = np.array([10.0, 0.0, 4.0, 2.0])
PREDICTED = np.array([12.0, 1.0, 1.0, 2.0])
# errors -2, -1, 3, 0


def test_mae_and_rmse_by_hand() -> None:
    assert scoring.mae(ACTUAL, PREDICTED) == pytest.approx((2 + 1 + 3 + 0) / 4)
    assert scoring.rmse(ACTUAL, PREDICTED) == pytest.approx(math.sqrt((4 + 1 + 9 + 0) / 4))


def test_mape_skips_actuals_below_the_floor() -> None:
    # The zero actual is skipped: (2/10 + 3/4 + 0/2) / 3.
    assert scoring.mape(ACTUAL, PREDICTED) == pytest.approx(100 * (0.2 + 0.75 + 0.0) / 3)
    # 0.5 is under the 1 % floor too; only the 4.0 actual counts.
    assert scoring.mape([0.5, 4.0], [5.0, 5.0]) == pytest.approx(25.0)
    assert math.isnan(scoring.mape([0.0, 0.5], [1.0, 1.0]))


def test_smape_counts_both_zero_points_as_zero() -> None:
    # Terms: both zero -> 0; 2*10/30; 2*5/5 = 2.
    value = scoring.smape([0.0, 10.0, 0.0], [0.0, 20.0, 5.0])
    assert value == pytest.approx(100 * (0 + 20 / 30 + 2) / 3)
    assert scoring.smape([0.0, 0.0], [0.0, 0.0]) == 0.0


# A 21-day series, three weeks; day 10 (week 1, weekday 3) is missing.
WEEK_0 = [10, 11, 12, 13, 14, 15, 16]
WEEK_1 = [11, 13, 15, 13, 14, 19, 16]  # vs week 0: 1 2 3 (0) 0 4 0
WEEK_2 = [11, 10, 15, 17, 14, 19, 22]  # vs week 1: 0 3 0 (4) 0 0 6
MISSING_DAY = 10
# Without day 10, the pairs (10, 3) and (17, 10) are gone: 12 pairs, sum 10 + 9.
HAND_SCALE = 19 / 12


def _series_with_gap() -> pd.DataFrame:
    values = np.array(WEEK_0 + WEEK_1 + WEEK_2, dtype=float)
    dates = pd.date_range("2026-01-05", periods=21, freq="D")
    frame = pd.DataFrame(
        {"server_id": "srv-1", "metric": "cpu_p95", "date": dates, "value": values}
    )
    return frame.drop(index=MISSING_DAY).reset_index(drop=True)


def test_seasonal_naive_scale_is_calendar_aligned_with_a_missing_day() -> None:
    history = _series_with_gap()
    scale = scoring.seasonal_naive_scale(history)
    assert scale.loc[("srv-1", "cpu_p95")] == pytest.approx(HAND_SCALE)


def test_seasonal_naive_scale_per_series_and_floored() -> None:
    dates = pd.date_range("2026-01-05", periods=21, freq="D")
    flat = pd.DataFrame({"server_id": "srv-2", "metric": "cpu_p95", "date": dates, "value": 30.0})
    same_server_other_metric = _series_with_gap().assign(
        metric="mem_p95", value=lambda f: f["value"] * 2
    )
    history = pd.concat([_series_with_gap(), flat, same_server_other_metric], ignore_index=True)
    scale = scoring.seasonal_naive_scale(history)
    assert scale.loc[("srv-1", "cpu_p95")] == pytest.approx(HAND_SCALE)
    assert scale.loc[("srv-1", "mem_p95")] == pytest.approx(2 * HAND_SCALE)
    assert scale.loc[("srv-2", "cpu_p95")] == scoring.SCALE_FLOOR


def test_seasonal_naive_scale_of_a_series_without_pairs_is_not_a_number() -> None:
    dates = pd.date_range("2026-01-05", periods=5, freq="D")
    short = pd.DataFrame({"server_id": "srv-3", "metric": "cpu_p95", "date": dates, "value": 1.0})
    scale = scoring.seasonal_naive_scale(pd.concat([_series_with_gap(), short], ignore_index=True))
    # The docstring says NaN; the series is left out instead. Either way no number is made up.
    assert ("srv-3", "cpu_p95") not in scale.index or math.isnan(scale.loc[("srv-3", "cpu_p95")])


def test_mase_divides_by_the_hand_scale_and_floors_it() -> None:
    actual, predicted = [20.0, 22.0, 18.0], [21.0, 20.0, 18.0]  # MAE 1
    assert scoring.mase(actual, predicted, HAND_SCALE) == pytest.approx(1.0 / HAND_SCALE)
    assert scoring.mase(actual, predicted, 0.001) == pytest.approx(1.0 / scoring.SCALE_FLOOR)


def test_coverage_counts_the_bounds_as_inside() -> None:
    actual = [1.0, 2.0, 3.0, 4.0, 5.0]
    lower = [0.0, 2.5, 3.0, 0.0, 6.0]
    upper = [2.0, 3.0, 3.0, 3.0, 7.0]
    # inside, below, on both bounds, above, below
    assert scoring.coverage(actual, lower, upper) == pytest.approx(2 / 5)


def _score_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": ["a", "a", "a", "a", "b", "b"],
            "server_id": ["s1", "s1", "s1", "s1", "s1", "s1"],
            "actual": [10.0, 0.0, 4.0, 2.0, 0.0, 50.0],
            "yhat": [12.0, 1.0, 1.0, 2.0, 0.0, 40.0],
            "scale": [2.0, 2.0, 2.0, 2.0, 0.01, 0.01],
            "yhat_lower": [9.0, 0.0, 2.0, 2.0, 0.0, 45.0],
            "yhat_upper": [13.0, 0.5, 3.5, 3.0, 0.0, 48.0],
        }
    )


def test_score_per_group_equals_hand_values() -> None:
    scores = scoring.score(_score_frame(), ["model"]).set_index("model")
    a, b = scores.loc["a"], scores.loc["b"]

    assert a["n"] == 4
    assert a["mae"] == pytest.approx(1.5)
    assert a["rmse"] == pytest.approx(math.sqrt(3.5))
    assert a["mape"] == pytest.approx(100 * (0.2 + 0.75 + 0.0) / 3)
    # |e| / (|a| + |y|) * 200: 4/22, 2/1, 6/5, 0/4 -> mean
    assert a["smape"] == pytest.approx(100 * (4 / 22 + 2 + 6 / 5 + 0) / 4)
    assert a["mase"] == pytest.approx(1.5 / 2.0)
    assert a["coverage"] == pytest.approx(3 / 4)  # 4 is above [2, 3.5]; 2 sits on a bound
    assert a["interval_width"] == pytest.approx((4 + 0.5 + 1.5 + 1) / 4)

    assert b["n"] == 2
    assert b["mae"] == pytest.approx(5.0)
    assert b["rmse"] == pytest.approx(math.sqrt(50.0))
    assert b["mape"] == pytest.approx(20.0)  # the zero actual is skipped
    assert b["smape"] == pytest.approx(100 * (0 + 20 / 90) / 2)  # both-zero point counts 0
    assert b["mase"] == pytest.approx(5.0 / scoring.SCALE_FLOOR)  # scale floored
    assert b["coverage"] == pytest.approx(1 / 2)  # 50 is above [45, 48]


def test_score_matches_the_single_series_functions() -> None:
    frame = _score_frame()
    scores = scoring.score(frame, ["model", "server_id"]).set_index("model")
    for model, rows in frame.groupby("model"):
        actual, yhat = rows["actual"].to_numpy(), rows["yhat"].to_numpy()
        got = scores.loc[model]
        assert got["mae"] == pytest.approx(scoring.mae(actual, yhat))
        assert got["rmse"] == pytest.approx(scoring.rmse(actual, yhat))
        assert got["mape"] == pytest.approx(scoring.mape(actual, yhat))
        assert got["smape"] == pytest.approx(scoring.smape(actual, yhat))
        assert got["mase"] == pytest.approx(scoring.mase(actual, yhat, rows["scale"].iloc[0]))
        assert got["coverage"] == pytest.approx(
            scoring.coverage(actual, rows["yhat_lower"].to_numpy(), rows["yhat_upper"].to_numpy())
        )


def test_score_without_intervals_has_no_coverage() -> None:
    frame = _score_frame().drop(columns=["yhat_lower", "yhat_upper"])
    scores = scoring.score(frame, ["model"])
    assert "coverage" not in scores
    assert list(scores["model"]) == ["a", "b"]
