"""The cleaning step: outliers replaced, then short gaps filled, business events left alone.

Each server's holidays and the days of the business calendar's non-monthly windows (quarter
end, year end, dated events) are protected from the outlier test: real business load (or its
absence) is the signal, not noise, and those days come too rarely to be compared with their
other occurrences. Monthly effects need no protection: the outlier test compares each day with
the same place in the surrounding months (``outliers``).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from capacity_forecaster.cleaning.calendar_features import (
    holiday_rows,
    month_places,
    row_countries,
    window_rows,
)
from capacity_forecaster.cleaning.grid import series_bounds
from capacity_forecaster.cleaning.imputation import interpolate_short_gaps
from capacity_forecaster.cleaning.outliers import MAD_FLOOR, hampel
from capacity_forecaster.core.params import FeatureParams
from capacity_forecaster.core.params_calendar import CalendarParams

logger = logging.getLogger(__name__)

VALUE_COLUMNS = ("value", "value_raw", "is_outlier", "is_imputed")  # after clean_series


def clean_series(
    long: pd.DataFrame,
    params: FeatureParams,
    servers: pd.DataFrame,
    calendar: CalendarParams,
) -> pd.DataFrame:
    """Add ``value_raw``, ``is_outlier``, ``is_imputed``; clean ``value``.

    Outliers (Hampel, see ``outliers.flag_outliers``) are replaced by the same weekday's rolling
    median (the daily window's where that has too few values; the median of their place in the
    month where that place has a level of its own, such as a month end). Protected, per the
    server's country: its holidays and the days of ``calendar``'s non-monthly windows
    (``protected_rows``). Then interior NaN runs of at most ``impute_limit_days`` days are
    filled by linear interpolation; longer runs stay NaN entirely.
    """
    start, end = series_bounds(long)
    raw = long["value"].to_numpy(dtype=np.float64, na_value=np.nan)
    countries = row_countries(long, servers, warn=False)  # the calendar step warns
    protected = protected_rows(long, countries, calendar)
    places = month_places(long, countries, calendar)
    flags, replacement = hampel(
        long, params.outlier_window, params.outlier_mad_threshold, protected, MAD_FLOOR, places
    )
    despiked = np.where(flags, replacement, raw)
    value = interpolate_short_gaps(despiked, start, end, params.impute_limit_days)
    imputed = np.isnan(despiked) & ~np.isnan(value)
    logger.info(
        "clean_series: %d outliers replaced (%d rows protected), %d of %d missing days imputed "
        "(gaps <= %d days)",
        int(flags.sum()),
        int(protected.sum()),
        int(imputed.sum()),
        int(np.isnan(raw).sum()),
        params.impute_limit_days,
    )
    return long.assign(value=value, value_raw=raw, is_outlier=flags, is_imputed=imputed)


def protected_rows(
    long: pd.DataFrame, countries: np.ndarray, calendar: CalendarParams
) -> np.ndarray:
    """Rows the outlier test leaves alone: holidays, and days of the non-monthly windows
    (quarter_end, year_end, dates), in each row's country (``countries``)."""
    protected = holiday_rows(long, countries, calendar)
    for name, flags in window_rows(long, countries, calendar).items():
        if not calendar.windows[name].monthly:
            protected |= flags
    return protected
