"""What a series' history and the calendar add: the recent P95, the busiest month, and flags
for a breach at a quarter's end and for a forecast peak in a seasonal high."""

from __future__ import annotations

import numpy as np
import pandas as pd

from capacity_forecaster.core.calendar import quarter_end_window
from capacity_forecaster.core.vocabulary import SERIES_KEY

__all__ = ["history_stats", "with_calendar_flags"]

SERIES = list(SERIES_KEY)


def history_stats(history: pd.DataFrame, lookback_days: int) -> pd.DataFrame:
    """Per series: P95 of the last ``lookback_days`` of values, the last day it covers
    (``last_date``), and the busiest calendar month."""
    dates = pd.to_datetime(history["date"])
    last = dates.groupby([history["server_id"], history["metric"]]).transform("max")
    recent = history.loc[dates > last - pd.Timedelta(days=lookback_days)]
    current = recent.groupby(SERIES)["value"].quantile(0.95).rename("current_p95")
    last_date = dates.groupby([history["server_id"], history["metric"]]).max().rename("last_date")
    last_date.index.names = SERIES
    monthly_mean = history.groupby([*SERIES, dates.dt.month.rename("month")])["value"].mean()
    monthly = monthly_mean.dropna().reset_index()
    busiest = monthly.loc[monthly.groupby(SERIES)["value"].idxmax(), [*SERIES, "month"]]
    busiest_month = busiest.set_index(SERIES)["month"].rename("busiest_month")
    return pd.concat([current, last_date, busiest_month], axis=1).reset_index()


def with_calendar_flags(risk: pd.DataFrame, business_days: int) -> pd.DataFrame:
    """Adds ``eoq_breach`` (the first breach, on the forecast else the upper bound, falls in
    the last ``business_days`` business days of a quarter) and ``seasonal_peak`` (the forecast
    peaks in the series' busiest month or at a quarter's end)."""
    risk["eoq_breach"] = _in_quarter_end_window(
        risk["breach_date"].fillna(risk["breach_date_upper"]), business_days
    )
    risk["seasonal_peak"] = (
        risk["peak_date"].dt.month == risk["busiest_month"]
    ).to_numpy() | _in_quarter_end_window(risk["peak_date"], business_days)
    return risk


def _in_quarter_end_window(dates: pd.Series, business_days: int) -> np.ndarray:
    """quarter_end_window that tolerates NaT (False there)."""
    result = np.zeros(len(dates), dtype=bool)
    known = dates.notna().to_numpy()
    if known.any():
        result[known] = quarter_end_window(pd.DatetimeIndex(dates[known]), business_days)
    return result
