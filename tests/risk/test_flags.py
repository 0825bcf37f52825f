"""Stage 06 calendar flags: the business-calendar windows a breach falls in, breaches on
window days only, and seasonal peaks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from capacity_forecaster.core.calendar_windows import window_flags
from capacity_forecaster.core.params import RiskParams
from capacity_forecaster.core.params_calendar import CalendarParams
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


def test_a_breach_in_the_last_business_days_of_a_quarter_names_its_windows() -> None:
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
    # The last two business days of September and of its quarter; not the year's.
    assert q["breach_window"] == "month_end, quarter_end"
    assert not q["breach_window_only"]  # it stays over after the window
    assert m["breach_window"] == "" and not m["breach_window_only"]


def test_a_series_over_only_on_month_end_days_gets_the_first_one_and_a_reason_naming_it() -> None:
    h = np.arange(1, HORIZON + 1)
    dates = LAST_DAY + pd.to_timedelta(h, unit="D")
    # eu-west-1 is Ireland: 2026-08-31 is a Monday and a business day there.
    month_end = window_flags(dates, "IE", CalendarParams())["month_end"]
    spiky = np.where(month_end, 86.0, 50.0)
    forecasts = pd.concat(
        [
            champion_series("spiky", "cpu_p95", spiky, half_width=1.0),
            champion_series("calm", "cpu_p95", np.full(HORIZON, 50.0), half_width=1.0),
        ],
        ignore_index=True,
    )
    history = flat_history([("spiky", "cpu_p95"), ("calm", "cpu_p95")])
    risk = assess.assess_risk(
        forecasts, history, inventory({"spiky": "high", "calm": "high"}), RiskParams(), INTERVAL
    )
    spiky_row, calm = row_of(risk, "spiky"), row_of(risk, "calm")
    assert spiky_row["breach_date"] == pd.Timestamp("2026-07-30")  # Thursday; the 31st is Friday
    assert spiky_row["breach_window"] == "month_end" and spiky_row["breach_window_only"]
    assert spiky_row["breach_probability"] > 0.99
    assert "(2026-07-30, month end days only)" in spiky_row["risk_reason"]
    assert calm["breach_window"] == "" and not calm["breach_window_only"]
    assert np.isnan(calm["days_to_breach"])


def test_no_windows_in_the_calendar_flags_no_window() -> None:
    h = np.arange(1, HORIZON + 1)
    dates = LAST_DAY + pd.to_timedelta(h, unit="D")
    forecasts = champion_series(
        "q", "cpu_p95", np.where(dates >= pd.Timestamp("2026-09-29"), 85.0, 50.0), half_width=1.0
    )
    none = CalendarParams(windows={"month_end": None, "quarter_end": None, "year_end": None})
    risk = assess.assess_risk(
        forecasts,
        flat_history([("q", "cpu_p95")]),
        inventory({"q": "high"}),
        RiskParams(),
        INTERVAL,
        calendar=none,
    )
    assert row_of(risk, "q")["breach_window"] == ""


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
