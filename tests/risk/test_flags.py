"""Stage 06 calendar flags: end-of-quarter breaches and seasonal peaks."""

from __future__ import annotations

import numpy as np
import pandas as pd

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


def test_eoq_breach_in_the_last_business_days_of_a_quarter() -> None:
    h = np.arange(1, HORIZON + 1)
    dates = LAST_DAY + pd.to_timedelta(h, unit="D")

    def stepping_on(day: str) -> np.ndarray:
        return np.where(dates >= pd.Timestamp(day), 85.0, 50.0)

    forecasts = pd.concat(
        [
            champion_series("q", "cpu_p95", stepping_on("2026-09-29"), half_width=1.0),  # Tuesday
            champion_series("m", "cpu_p95", stepping_on("2026-08-12"), half_width=1.0),
        ],
        ignore_index=True,
    )
    history = flat_history([("q", "cpu_p95"), ("m", "cpu_p95")])
    risk = assess.assess_risk(
        forecasts, history, inventory({"q": "high", "m": "high"}), RiskParams(), INTERVAL
    )
    q, m = row_of(risk, "q"), row_of(risk, "m")
    assert q["breach_date"] == pd.Timestamp("2026-09-29")
    assert q["eoq_breach"]
    assert not m["eoq_breach"]


def test_seasonal_peak_in_the_busiest_month() -> None:
    history = flat_history([("a", "cpu_p95"), ("b", "cpu_p95")])
    busy = history["date"].dt.month == 8
    history.loc[busy, "value"] = 70.0
    h = np.arange(1, HORIZON + 1)
    dates = LAST_DAY + pd.to_timedelta(h, unit="D")
    forecasts = pd.concat(
        [
            champion_series(
                "a", "cpu_p95", np.where(dates == "2026-08-14", 60.0, 50.0)
            ),  # peak in Aug
            champion_series(
                "b", "cpu_p95", np.where(dates == "2026-07-14", 60.0, 50.0)
            ),  # peak in Jul
        ],
        ignore_index=True,
    )
    risk = assess.assess_risk(
        forecasts, history, inventory({"a": "low", "b": "low"}), RiskParams(), INTERVAL
    )
    assert row_of(risk, "a")["seasonal_peak"]
    assert not row_of(risk, "b")["seasonal_peak"]
