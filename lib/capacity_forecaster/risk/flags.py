"""What a series' history and the calendar add: the recent P95, the busiest month, the
business-calendar windows a breach falls in, and a flag for a forecast peak in a seasonal high.

A window (``calendar.windows``: month end, quarter end, the user's own) is taken on the
server's country, whose holidays move it. A breach that happens only on window days (the
month-end spikes of a bank fleet) is named so: the reason then says which window, since the
days between are safe and the fix may be scheduling rather than capacity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from capacity_forecaster.core.calendar import server_countries
from capacity_forecaster.core.calendar_windows import rows_by_country, windows_of_dates
from capacity_forecaster.core.params_calendar import CalendarParams
from capacity_forecaster.core.vocabulary import SERIES_KEY

__all__ = ["day_windows", "history_stats", "window_only_breaches", "with_calendar_flags"]

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


def day_windows(
    frame: pd.DataFrame, date_column: str, servers: pd.DataFrame, calendar: CalendarParams
) -> np.ndarray:
    """Per row, the windows its ``date_column`` falls in for its server's country, joined by
    ', ' ('' for none or no date)."""
    names = np.full(len(frame), "", dtype=object)
    dates = pd.to_datetime(frame[date_column])
    known = dates.notna().to_numpy()
    if not known.any() or not calendar.windows:
        return names
    countries = frame.loc[known, "server_id"].map(server_countries(servers))
    names[known] = rows_by_country(
        dates[known],
        countries,
        lambda days, country: np.asarray(windows_of_dates(days, country, calendar), dtype=object),
    )
    return names


def window_only_breaches(champion: pd.DataFrame, windows: np.ndarray) -> pd.Series:
    """Per series (indexed by SERIES), True when the forecast reaches the threshold on window
    days only (else the upper bound, for a series whose forecast never does); ``windows`` are
    the champion rows' windows (``day_windows``)."""
    in_window = pd.Series(windows != "", index=champion.index)
    point = champion["yhat"] >= champion["threshold"]
    upper = champion["yhat_upper"] >= champion["threshold"]
    keys = [champion["server_id"], champion["metric"]]
    crosses = point.groupby(keys).any()
    judged = point.where(crosses.reindex(pd.MultiIndex.from_arrays(keys)).to_numpy(), upper)
    outside = (judged & ~in_window).groupby(keys).any()
    any_crossing = judged.groupby(keys).any()
    result = any_crossing & ~outside
    result.index.names = SERIES
    return result.rename("breach_window_only")


def with_calendar_flags(
    risk: pd.DataFrame,
    servers: pd.DataFrame,
    calendar: CalendarParams,
    window_only: pd.Series,
) -> pd.DataFrame:
    """Adds ``breach_window`` (the windows the first breach, on the forecast else the upper
    bound, falls in: 'month_end, quarter_end'; '' for none), ``breach_window_only``
    (``window_only``: it reaches the threshold on window days only) and ``seasonal_peak``
    (the forecast peaks in the series' busiest month or in a window)."""
    first_breach = risk["breach_date"].fillna(risk["breach_date_upper"])
    risk["breach_window"] = day_windows(
        risk.assign(first_breach=first_breach), "first_breach", servers, calendar
    )
    only = window_only.reindex(pd.MultiIndex.from_frame(risk[SERIES]))
    risk["breach_window_only"] = (
        only.fillna(False).astype(bool).to_numpy() & (risk["breach_window"] != "").to_numpy()
    )
    peak_windows = day_windows(risk, "peak_date", servers, calendar)
    risk["seasonal_peak"] = (risk["peak_date"].dt.month == risk["busiest_month"]).to_numpy() | (
        peak_windows != ""
    )
    return risk
