"""Calendar effects: weekday load above the weekend, quarter-end surges in finance on the
calendar's quarter_end window, none without it."""

from __future__ import annotations

import pandas as pd

from capacity_forecaster.core.calendar_windows import window_flags
from capacity_forecaster.core.params_calendar import CalendarParams
from capacity_forecaster.ingest.synthetic import generate_fleet
from capacity_forecaster.ingest.synthetic.seasonality import FINANCE_BUS
from tests.ingest.synthetic.builders import NO_MONTH_END, window_days


def test_weekday_load_above_weekend_for_prod_cpu(pattern_fleet: pd.DataFrame) -> None:
    prod = pattern_fleet[pattern_fleet["environment"] == "prod"]
    weekend = prod["date"].dt.day_of_week >= 5
    assert prod.loc[~weekend, "cpu_p95"].mean() > 1.1 * prod.loc[weekend, "cpu_p95"].mean()


def _quarter_end(dates: pd.DatetimeIndex) -> pd.Series:
    # Monday to Friday without a country's holidays: close enough for a fleet-wide mean.
    return window_flags(dates, None, CalendarParams())["quarter_end"]


def test_quarter_end_spike_for_finance_units(pattern_fleet: pd.DataFrame) -> None:
    finance = pattern_fleet[pattern_fleet["business_unit"].isin(FINANCE_BUS)]
    assert finance["server_id"].nunique() >= 5
    daily = finance.groupby("date")["cpu_p95"].mean()
    in_window = _quarter_end(daily.index)
    # The surrounding business days: the three weeks before each window.
    shifted = _quarter_end(daily.index + pd.Timedelta(days=21))
    before = shifted & ~in_window & (daily.index.day_of_week < 5)
    assert in_window.sum() >= 15 and before.sum() >= 15
    assert daily[in_window].mean() > 1.1 * daily[before].mean()


def test_no_quarter_end_window_no_surge() -> None:
    # Only the surge goes: the same fleet on every other day, lower on quarter-end days.
    no_window = CalendarParams.model_validate({"windows": {"quarter_end": None}})
    keys = ["server_id", "date"]
    plain, servers = generate_fleet(NO_MONTH_END, seed=5, calendar=no_window)
    plain = plain.set_index(keys)
    surged = generate_fleet(NO_MONTH_END, seed=5)[0].set_index(keys)
    quarter_end = window_days(plain.index, servers, "quarter_end")
    changed = (surged - plain)["cpu_p95"].abs() > 1e-9
    assert changed.any() and not changed[~quarter_end].any()
    assert (surged["cpu_p95"] >= plain["cpu_p95"] - 1e-9)[quarter_end].all()
