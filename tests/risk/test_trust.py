"""Trust grades: each weakness costs the steps the module states, and a D at risk says so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.core.vocabulary import TRUST_GRADES, TRUST_MEANINGS
from capacity_forecaster.risk.trust import trust_grades, with_trust

FULL = {"scored_horizon_days": 90, "forecast_horizon_days": 90}


def _history(series: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """Per server: (days in span, days missing at the span's middle), metric cpu_p95."""
    frames = []
    for server, (days, missing) in series.items():
        dates = pd.date_range("2025-01-01", periods=days, freq="D")
        imputed = np.zeros(days, dtype=bool)
        imputed[days // 2 : days // 2 + missing] = True
        frames.append(
            pd.DataFrame(
                {"server_id": server, "metric": "cpu_p95", "date": dates, "is_imputed": imputed}
            )
        )
    return pd.concat(frames, ignore_index=True)


def _champions(rows: dict[str, tuple[float, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "server_id": s,
                "metric": "cpu_p95",
                "champion": "prophet",
                "champion_mase": c,
                "baseline_mase": b,
            }
            for s, (c, b) in rows.items()
        ]
    )


def _scores(coverage: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"model": "prophet", "server_id": s, "metric": "cpu_p95", "coverage": c}
            for s, c in coverage.items()
        ]
    )


def _grades(history, champions, scores, backtest=FULL) -> dict[str, tuple[str, str]]:
    frame = trust_grades(history, champions, scores, backtest, 0.8)
    return {r.server_id: (r.trust_grade, r.trust_note) for r in frame.itertuples()}


def test_each_weakness_costs_its_steps() -> None:
    history = _history(
        {"a": (400, 0), "b": (120, 0), "c": (400, 40), "d": (400, 0), "e": (400, 120)}
    )
    champions = _champions(
        {"a": (0.6, 1.0), "b": (0.6, 1.0), "c": (1.1, 1.0), "d": (np.nan, 1.0), "e": (0.6, 1.0)}
    )
    scores = _scores({"a": 0.8, "b": 0.74, "c": 0.8, "d": 0.5, "e": 0.8})
    grades = _grades(history, champions, scores)
    assert grades["a"] == ("A", "no weakness")
    assert grades["b"] == ("B", "120 days of history")  # coverage 0.74 is within 0.15
    # 10 % missing (1 step) and no better than the baseline (1 step): C
    assert grades["c"] == (
        "C",
        "10% of days missing; no better than seasonal-naive in the backtest",
    )
    # not backtested (2) and intervals 0.30 off (2): D
    assert grades["d"] == ("D", "not backtested; intervals covered 50% against 80%")
    assert grades["e"] == ("C", "30% of days missing")  # badly gappy: two steps


def test_a_short_backtest_on_a_short_history_is_a_d_and_an_urgent_one_says_so() -> None:
    history = _history({"new": (30, 0)})
    grades = trust_grades(
        history,
        _champions({"new": (0.7, 1.0)}),
        _scores({"new": 0.8}),
        {"scored_horizon_days": 8, "forecast_horizon_days": 30},
        0.8,
    )
    assert grades.loc[0, "trust_grade"] == "D"
    assert grades.loc[0, "trust_note"] == "30 days of history; backtested 8 of 30 days ahead"
    risk = pd.DataFrame(
        {
            "server_id": ["new"],
            "metric": ["cpu_p95"],
            "risk_level": ["high"],
            "risk_reason": ["breach in 5 days"],
        }
    )
    graded = with_trust(risk, grades)
    assert graded.loc[0, "risk_reason"] == (
        "breach in 5 days; trust D: the date rests on too little "
        "(30 days of history; backtested 8 of 30 days ahead)"
    )


def test_a_series_without_figures_is_least_trusted_and_every_grade_has_a_meaning() -> None:
    risk = pd.DataFrame(
        {"server_id": ["x"], "metric": ["cpu_p95"], "risk_level": ["low"], "risk_reason": ["fine"]}
    )
    empty = pd.DataFrame(columns=["server_id", "metric", "trust_grade", "trust_note"])
    graded = with_trust(risk, empty)
    assert graded.loc[0, "trust_grade"] == "D" and graded.loc[0, "risk_reason"] == "fine"
    assert set(TRUST_MEANINGS) == set(TRUST_GRADES)


@pytest.mark.parametrize("coverage", [np.nan])
def test_unmeasured_coverage_costs_one_step(coverage: float) -> None:
    grades = _grades(
        _history({"a": (400, 0)}), _champions({"a": (0.6, 1.0)}), _scores({"a": coverage})
    )
    assert grades["a"] == ("B", "interval coverage not measured")
