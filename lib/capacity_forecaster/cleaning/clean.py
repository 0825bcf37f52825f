"""The cleaning step: outliers replaced, then short gaps filled, business events left alone.

Quarter-end windows and each server's public holidays are protected from the outlier test:
real business load (or its absence) is the signal, not noise.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from capacity_forecaster.cleaning.calendar_features import by_date, holiday_rows
from capacity_forecaster.cleaning.grid import series_bounds
from capacity_forecaster.cleaning.imputation import interpolate_short_gaps
from capacity_forecaster.cleaning.outliers import MAD_FLOOR, hampel
from capacity_forecaster.core.calendar import quarter_end_window
from capacity_forecaster.core.params import FeatureParams

logger = logging.getLogger(__name__)

VALUE_COLUMNS = ("value", "value_raw", "is_outlier", "is_imputed")  # after clean_series


def clean_series(long: pd.DataFrame, params: FeatureParams, servers: pd.DataFrame) -> pd.DataFrame:
    """Add ``value_raw``, ``is_outlier``, ``is_imputed``; clean ``value``.

    Outliers (Hampel, see ``outliers.flag_outliers``) are replaced by the same weekday's rolling
    median (the daily window's where that has too few values), so a flagged weekend day of a
    business-hours server gets a weekend value. Quarter-end windows and the server's public
    holidays are protected: real business load (or its absence) is the signal, not noise. Then
    interior NaN runs of at most ``impute_limit_days`` days are filled by linear interpolation;
    longer runs stay NaN entirely.
    """
    start, end = series_bounds(long)
    raw = long["value"].to_numpy(dtype=np.float64, na_value=np.nan)
    eoq = by_date(long["date"], lambda d: quarter_end_window(d, params.quarter_end_business_days))
    protected = eoq | holiday_rows(long, servers, warn=False)  # the calendar step warns
    flags, replacement = hampel(
        long, params.outlier_window, params.outlier_mad_threshold, protected, MAD_FLOOR
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
