"""Stage 06 assessment: the risk rules, the reasons and the product's check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.params import RiskParams
from capacity_forecaster.risk import assess
from tests.risk.builders import HORIZON, INTERVAL, champion_series, flat_history, inventory, row_of


def test_flat_series_well_under_the_threshold_is_never_flagged(fleet: dict) -> None:
    for metric in ("cpu_p95", "mem_p95"):
        row = row_of(fleet["risk"], "s2", metric)
        assert row["risk_level"] == "low"
        assert row["breach_probability"] < 1e-6
        assert np.isnan(row["days_to_breach"])
        assert np.isnan(row["days_to_breach_upper"])
        assert pd.isna(row["breach_date"])
        assert not row["eoq_breach"]
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
    assert row["current_p95"] == 85.0 and np.isnan(row["days_to_breach"])
    assert row["risk_level"] == "high"
    assert row["risk_reason"].startswith("already at 85.0% (recent P95), over 80%")


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
