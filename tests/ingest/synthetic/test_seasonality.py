"""Calendar effects: weekday load above the weekend, quarter-end spikes in finance."""

from __future__ import annotations

import pandas as pd

from capacity_forecaster.core.calendar import quarter_end_window
from capacity_forecaster.ingest.synthetic.seasonality import FINANCE_BUS


def test_weekday_load_above_weekend_for_prod_cpu(pattern_fleet: pd.DataFrame) -> None:
    prod = pattern_fleet[pattern_fleet["environment"] == "prod"]
    weekend = prod["date"].dt.day_of_week >= 5
    assert prod.loc[~weekend, "cpu_p95"].mean() > 1.1 * prod.loc[weekend, "cpu_p95"].mean()


def test_quarter_end_spike_for_finance_units(pattern_fleet: pd.DataFrame) -> None:
    finance = pattern_fleet[pattern_fleet["business_unit"].isin(FINANCE_BUS)]
    assert finance["server_id"].nunique() >= 5
    daily = finance.groupby("date")["cpu_p95"].mean()
    in_window = quarter_end_window(daily.index, 5)
    # The surrounding business days: the three weeks before each window.
    shifted = quarter_end_window(daily.index + pd.Timedelta(days=21), 5)
    before = shifted & ~in_window & (daily.index.day_of_week < 5)
    assert in_window.sum() >= 15 and before.sum() >= 15
    assert daily[in_window].mean() > 1.1 * daily[before].mean()
