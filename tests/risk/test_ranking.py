"""Stage 06 urgency order: level, days, probability, criticality."""

from __future__ import annotations

import numpy as np

from capacity_forecaster.risk import ranking
from tests.risk.builders import risk_rows


def test_rank_by_days_then_probability_then_criticality() -> None:
    risk = risk_rows(
        [
            ("low-risk", np.nan, 0.01, "critical", "low"),
            ("later", 40.0, 0.9, "critical", "high"),
            ("soon-likely", 10.0, 0.9, "low", "high"),
            ("soon-less-likely", 10.0, 0.6, "critical", "high"),
            ("soon-likely-critical", 10.0, 0.9, "critical", "high"),
            ("no-date", np.nan, 0.3, "critical", "medium"),
        ]
    )
    top = ranking.rank_at_risk(risk, top_n=10)
    assert top["server_id"].tolist() == [
        "soon-likely-critical",
        "soon-likely",
        "soon-less-likely",
        "later",
        "no-date",
    ]
    assert top["rank"].tolist() == [1, 2, 3, 4, 5]
    assert len(ranking.rank_at_risk(risk, top_n=2)) == 2


def test_high_ranks_before_medium_even_without_a_breach_date() -> None:
    risk = risk_rows(
        [
            ("medium-soon", 35.0, 0.25, "critical", "medium"),
            ("high-likely", np.nan, 0.45, "low", "high"),
        ]
    )
    assert ranking.rank_at_risk(risk, top_n=10)["server_id"].tolist() == [
        "high-likely",
        "medium-soon",
    ]


def test_risk_rows_carry_one_urgency_order(fleet: dict) -> None:
    risk = fleet["risk"]
    assert risk["urgency_rank"].tolist() == list(range(1, len(risk) + 1))
    levels = risk["risk_level"].map({"high": 0, "medium": 1, "low": 2})
    assert levels.is_monotonic_increasing
