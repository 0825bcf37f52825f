"""Stage 06 assessment: the risk rules, the reasons and the product's check."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.params import RiskParams
from capacity_forecaster.risk import assess
from tests.risk.builders import (
    HORIZON,
    INTERVAL,
    LAST_DAY,
    champion_series,
    flat_history,
    inventory,
    row_of,
)


def test_flat_series_well_under_the_threshold_is_never_flagged(fleet: dict) -> None:
    for metric in ("cpu_p95", "mem_p95"):
        row = row_of(fleet["risk"], "s2", metric)
        assert row["risk_level"] == "low"
        assert row["breach_probability"] < 1e-6
        assert np.isnan(row["days_to_breach"])
        assert np.isnan(row["days_to_breach_upper"])
        assert pd.isna(row["breach_date"])
        assert row["breach_window"] == "" and not row["breach_window_only"]
    assert row_of(fleet["risk"], "s2")["current_p95"] == pytest.approx(40.0)


def test_only_a_likely_near_term_breach_is_high() -> None:
    """High needs the breach soon: on the forecast within high_within_days, or a probability of
    at least high_probability within those days. A likely breach far out is medium."""
    h = np.arange(1, HORIZON + 1, dtype=float)
    forecasts = pd.concat(
        [
            # The forecast stays at 77 (3 points under 80) with a wide upper side: P(breach)
            # on every day is well above 0.3, so high although the forecast never crosses.
            champion_series("near", "cpu_p95", np.full(HORIZON, 77.0), half_width=10.0),
            # The forecast crosses 80 only at h = 100: certain, but not soon.
            champion_series("late", "cpu_p95", 30 + 0.5 * h, half_width=1.0),
        ],
        ignore_index=True,
    )
    series = [("near", "cpu_p95"), ("late", "cpu_p95")]
    params = RiskParams(high_within_days=30, high_probability=0.3)
    risk = assess.assess_risk(
        forecasts, flat_history(series), inventory({"near": "low", "late": "low"}), params, INTERVAL
    )
    near, late = row_of(risk, "near"), row_of(risk, "late")
    assert np.isnan(near["days_to_breach"]) and near["breach_probability_soon"] >= 0.3
    assert near["risk_level"] == "high"
    assert late["days_to_breach"] == 100 and late["breach_probability"] >= 0.5
    assert late["breach_probability_soon"] < 0.01 and late["risk_level"] == "medium"


def test_a_server_over_its_threshold_now_is_high_even_if_the_forecast_eases() -> None:
    forecasts = champion_series("hot", "cpu_p95", np.full(HORIZON, 70.0), half_width=2.0)
    history = flat_history([("hot", "cpu_p95")], value=85.0)
    risk = assess.assess_risk(forecasts, history, inventory({"hot": "low"}), RiskParams(), INTERVAL)
    row = row_of(risk, "hot")
    assert row["current_p95"] == 85.0 and row["over_now"]
    # Breached already: 0 days, dated the history's last day, and first in the urgency order.
    assert row["days_to_breach"] == 0 and row["breach_date"] == LAST_DAY
    assert row["days_to_breach_upper"] == 0
    assert row["risk_level"] == "high" and row["urgency_rank"] == 1
    assert row["risk_reason"].startswith("over now: recent P95 85.0% against a 80% threshold")
    assess.check_risk(risk, forecasts)


def test_over_now_leads_a_nearer_forecast_breach() -> None:
    h = np.arange(1, HORIZON + 1, dtype=float)
    forecasts = pd.concat(
        [
            champion_series("soon", "cpu_p95", 78 + h, half_width=1.0),  # crosses at h = 2
            champion_series("hot", "cpu_p95", np.full(HORIZON, 82.0), half_width=1.0),
        ],
        ignore_index=True,
    )
    history = pd.concat(
        [
            flat_history([("soon", "cpu_p95")], value=70.0),
            flat_history([("hot", "cpu_p95")], value=89.3),
        ]
    )
    risk = assess.assess_risk(
        forecasts, history, inventory({"soon": "critical", "hot": "low"}), RiskParams(), INTERVAL
    )
    assert list(risk["server_id"]) == ["hot", "soon"]
    assert list(risk["days_to_breach"]) == [0, 2]


def _claims_hold(row: pd.Series, params: RiskParams) -> list[str]:
    """What in ``row``'s reason contradicts its own numbers, and whether a rule that fired is
    named for a high or medium level (empty: the reason is true)."""
    reason, wrong = row["risk_reason"], []
    found = re.search(r"over now: recent P95 ([\d.]+)% against a ([\d.]+)% threshold", reason)
    if found and not (row["over_now"] and float(found[1]) == round(row["current_p95"], 1)):
        wrong.append("over now")
    if row["over_now"] and not found:
        wrong.append("over now unsaid")
    found = re.search(r"^forecast reaches ([\d.]+)% in (\d+) days? \(([\d-]+)\)", reason)
    if found and not (
        int(found[2]) == row["days_to_breach"] and found[3] == str(row["breach_date"].date())
    ):
        wrong.append("forecast date")
    found = re.search(r"upper bound reaches ([\d.]+)% in (\d+) days? \(([\d-]+)\)", reason)
    if found and int(found[2]) != row["days_to_breach_upper"]:
        wrong.append("upper date")
    found = re.search(r"P\(breach within (\d+) days\) (\d+)%, at least (\d+)%", reason)
    if found and not (
        int(found[1]) == params.high_within_days
        and int(found[2]) == round(100 * row["breach_probability_soon"])
        and row["breach_probability_soon"] >= params.high_probability
    ):
        wrong.append("probability soon")
    found = re.search(r"P\(breach\) (\d+)%", reason)
    if found and int(found[1]) != round(100 * row["breach_probability"]):
        wrong.append("probability")
    if not found and "P(breach within" not in reason:
        wrong.append("no probability")
    found = re.search(r"peak ([\d.]+)%", reason)
    if found and float(found[1]) != round(row["forecast_peak"], 1):
        wrong.append("peak")
    if row["risk_level"] == "high" and not (
        row["over_now"]
        or (reason.startswith("forecast reaches") and row["days_to_breach"] <= 30)
        or "P(breach within" in reason
    ):
        wrong.append("no high rule named")
    return wrong


def test_no_reason_contradicts_the_numbers_in_its_row() -> None:
    """Many shapes against one threshold: levels, dates and probabilities as the reason says.
    (A high row 40 days from its breach once read "P(breach within 30 days) >= 30%" at 0.014.)"""
    rng = np.random.default_rng(7)
    h = np.arange(1, HORIZON + 1, dtype=float)
    parts, histories, criticality = [], [], {}
    for i in range(60):
        server = f"srv-{i:02d}"
        start, slope = rng.uniform(40, 90), rng.uniform(-0.1, 0.6)
        yhat = np.clip(start + slope * h, 0, 100)
        parts.append(champion_series(server, "cpu_p95", yhat, half_width=rng.uniform(0.5, 15)))
        histories.append(flat_history([(server, "cpu_p95")], value=rng.uniform(40, 95)))
        criticality[server] = "low"
    params = RiskParams(high_within_days=30, high_probability=0.3)
    forecasts = pd.concat(parts, ignore_index=True)
    risk = assess.assess_risk(
        forecasts, pd.concat(histories), inventory(criticality), params, INTERVAL
    )
    assert set(risk["risk_level"]) == {"high", "medium", "low"} and risk["over_now"].any()
    wrong = {row["server_id"]: _claims_hold(row, params) for _, row in risk.iterrows()}
    assert {k: v for k, v in wrong.items() if v} == {}


def test_check_risk_passes_on_a_good_frame(fleet: dict) -> None:
    assess.check_risk(fleet["risk"], fleet["forecasts"])


def test_check_risk_raises_on_a_missing_series(fleet: dict) -> None:
    risk = fleet["risk"][fleet["risk"]["server_id"] != "s3"]
    with pytest.raises(StageCheckError, match="without a risk row"):
        assess.check_risk(risk, fleet["forecasts"])


def test_check_risk_raises_on_a_bad_probability(fleet: dict) -> None:
    risk = fleet["risk"].copy()
    risk.loc[0, "breach_probability"] = 1.2
    with pytest.raises(StageCheckError, match="probabilities"):
        assess.check_risk(risk, fleet["forecasts"])


def test_check_risk_raises_on_a_crossing_series_without_days(fleet: dict) -> None:
    risk = fleet["risk"].copy()
    risk.loc[risk["server_id"] == "s1", "days_to_breach"] = np.nan
    with pytest.raises(StageCheckError, match="cross their threshold"):
        assess.check_risk(risk, fleet["forecasts"])
