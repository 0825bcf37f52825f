"""Small constructed series with known answers, shared by the stage 03 tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from capacity_forecaster.core.calendar_windows import window_flags
from capacity_forecaster.core.params import FeatureParams
from capacity_forecaster.core.params_calendar import CalendarParams
from capacity_forecaster.core.vocabulary import METRICS

PARAMS = FeatureParams()
CALENDAR = CalendarParams()  # month_end (2 business days), quarter_end (5), year_end (5)
NO_WINDOWS = CalendarParams(windows={"month_end": None, "quarter_end": None, "year_end": None})
SERVERS = pd.DataFrame({"server_id": ["s1", "s2"], "region": ["us-east-1", "us-east-1"]})


def wiggle(n: int, level: float = 50.0, amplitude: float = 1.0) -> np.ndarray:
    """A deterministic, gently noisy series."""
    return level + amplitude * np.sin(np.arange(n) * 2.3)


def business_hours(n: int, start: str = "2025-04-07") -> np.ndarray:
    """A business-hours server: ~60 % on weekdays, ~20 % at the weekend, gently noisy."""
    weekend = pd.date_range(start, periods=n, freq="D").day_of_week >= 5
    return np.where(weekend, 20.0, 60.0) + np.sin(np.arange(n) * 2.3)


def metrics_frame(start: str, values: np.ndarray, server: str = "s1") -> pd.DataFrame:
    """Wide metrics for one server: the same values for every metric."""
    dates = pd.date_range(start, periods=len(values), freq="D")
    frame = pd.DataFrame({"date": dates, "server_id": server})
    for metric in METRICS:
        frame[metric] = values
    return frame


def series(
    start: str, values: np.ndarray, server: str = "s1", metric: str = "cpu_p95"
) -> pd.DataFrame:
    """One long series on a complete daily grid."""
    dates = pd.date_range(start, periods=len(values), freq="D")
    return pd.DataFrame({"server_id": server, "metric": metric, "date": dates, "value": values})


def month_end_days(start: str, n: int) -> np.ndarray:
    """True on the last two business days of each month in the US (the servers' country)."""
    dates = pd.date_range(start, periods=n, freq="D")
    return window_flags(dates, "US", CALENDAR)["month_end"]
