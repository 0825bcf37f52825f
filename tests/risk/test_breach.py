"""Stage 06 breaches: days and dates of the first breach, and the breach probability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.risk import breach
from tests.risk.builders import HORIZON, INTERVAL, LAST_DAY, row_of


def test_linear_growth_breaches_on_the_crossing_day(fleet: dict) -> None:
    row = row_of(fleet["risk"], "s1")
    crossing = (80 - 60) / 0.5  # 60 + 0.5 h = 80
    assert abs(row["days_to_breach"] - crossing) <= 1
    assert row["breach_date"] == LAST_DAY + pd.Timedelta(days=int(row["days_to_breach"]))
    assert row["model"] == "seasonal_naive"  # the champion, not the always-breaching model
    assert row["forecast_peak"] == pytest.approx(120.0)
    assert row["peak_date"] == LAST_DAY + pd.Timedelta(days=HORIZON)
    assert row["headroom_pts"] == pytest.approx(80 - 120.0)
    assert row["risk_level"] in {"high", "medium"}
    assert row["breach_probability"] > 0.99
    assert "40 days" in row["risk_reason"]


def test_upper_bound_breach_comes_no_later_than_the_point_breach(fleet: dict) -> None:
    row = row_of(fleet["risk"], "s1")
    assert row["days_to_breach_upper"] == 30
    assert row["days_to_breach_upper"] <= row["days_to_breach"]
    breaching = fleet["risk"].dropna(subset=["days_to_breach"])
    assert (breaching["days_to_breach_upper"] <= breaching["days_to_breach"]).all()


def test_breach_probability_from_the_calibrated_interval() -> None:
    yhat = np.linspace(0, 100, 201)
    p = breach.breach_probability(yhat, yhat - 10, yhat + 5, 70.0, INTERVAL)
    assert ((p >= 0) & (p <= 1)).all()
    assert (np.diff(p) >= 0).all()
    assert breach.breach_probability(70, 60, 75, 70, INTERVAL)[()] == pytest.approx(0.5)
    assert breach.breach_probability(65, 60, 70, 70, INTERVAL)[()] == pytest.approx(0.1)
    assert breach.breach_probability(75, 70, 78, 70, INTERVAL)[()] == pytest.approx(0.9)
    # A zero-width side is a step.
    assert breach.breach_probability([65, 75], [65, 75], [65, 75], 70, INTERVAL).tolist() == [0, 1]
