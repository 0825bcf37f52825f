"""Calendar effects: how far each series rises in each window of the business calendar.

Measured on the raw values (``value_raw``), so cleaning cannot erase what it measures: per
server x metric x window, the window's days against the other business days of the same
months. Written by stage 03 as processed/calendar_effects.parquet for the report to name the
servers whose load peaks at month or quarter end.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from capacity_forecaster.cleaning.calendar_features import (
    business_day_rows,
    row_countries,
    window_rows,
)
from capacity_forecaster.core import catalog
from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.params_calendar import CalendarParams
from capacity_forecaster.core.vocabulary import SERIES_KEY

logger = logging.getLogger(__name__)

EFFECT_COLUMNS = ("server_id", "metric", "window", "uplift_pts", "occurrences", "share_up", "clear")
# A clear recurring uplift: seen often enough, nearly every time, and bigger than both a few
# points and the series' own day-to-day wobble.
MIN_OCCURRENCES = 3
MIN_SHARE_UP = 0.75
MIN_UPLIFT_PTS = 3.0
WHERE = catalog.CALENDAR_EFFECTS.key


def calendar_effects(
    frame: pd.DataFrame, servers: pd.DataFrame, calendar: CalendarParams
) -> pd.DataFrame:
    """Per server x metric x window of ``calendar``: the uplift of the window's days over the
    other business days of the same months, from ``frame``'s ``value_raw``.

    An occurrence is a month with a raw value both on a window day and on another business day
    (of the server's country); its uplift is the mean on the window's days minus the mean on
    the month's other business days. ``uplift_pts`` is the median uplift over occurrences,
    ``share_up`` the share of occurrences with a positive uplift (both empty with no
    occurrence). ``clear`` (a clear recurring uplift): at least ``MIN_OCCURRENCES``
    occurrences, ``share_up`` >= ``MIN_SHARE_UP`` and ``uplift_pts`` >= the larger of
    ``MIN_UPLIFT_PTS`` points and the series' day-to-day noise (the median absolute change of
    its raw value from one day to the next). Windows may overlap: a quarter's last days are its
    month's end too, so a month-end uplift also shows, diluted, as a quarter-end one.
    """
    if len(frame) == 0 or not calendar.windows:
        return _typed(pd.DataFrame({c: pd.Series(dtype=object) for c in EFFECT_COLUMNS}))
    series_ids = frame[list(SERIES_KEY)].drop_duplicates().sort_values(list(SERIES_KEY))
    series_ids = series_ids.reset_index(drop=True)
    series = pd.MultiIndex.from_frame(series_ids).get_indexer(
        pd.MultiIndex.from_frame(frame[list(SERIES_KEY)])
    )
    raw = frame["value_raw"].to_numpy(dtype=np.float64, na_value=np.nan)
    seen = ~np.isnan(raw)
    countries = row_countries(frame, servers, warn=False)
    business = business_day_rows(frame, countries, calendar) & seen
    month_codes, months = pd.factorize(pd.DatetimeIndex(frame["date"]).to_period("M"))
    occurrence = series.astype(np.int64) * len(months) + month_codes

    tables = []
    for name, inside in window_rows(frame, countries, calendar).items():
        uplift = _uplift_per_occurrence(raw, occurrence, inside & seen, business & ~inside)
        tables.append(_per_series(uplift, len(months), len(series_ids)).assign(window=name))
    effects = pd.concat(tables, ignore_index=True)
    code = effects.pop("series").to_numpy()
    effects = series_ids.iloc[code].reset_index(drop=True).join(effects)
    needed = np.maximum(MIN_UPLIFT_PTS, _day_to_day_noise(frame, series, raw)[code])
    effects["clear"] = (
        (effects["occurrences"] >= MIN_OCCURRENCES)
        & (effects["share_up"] >= MIN_SHARE_UP)
        & (effects["uplift_pts"] >= needed)
    )
    effects = _typed(effects[list(EFFECT_COLUMNS)])
    logger.info(
        "calendar_effects: %d series x %d windows, %d clear uplifts",
        len(series_ids),
        len(calendar.windows),
        int(effects["clear"].sum()),
    )
    return effects


def check_calendar_effects(
    effects: pd.DataFrame, features: pd.DataFrame, calendar: CalendarParams
) -> None:
    """Stage 03 post-conditions on the calendar effects: one row per series of ``features``
    and window of ``calendar``, and ``clear`` only where occurrences and uplift say so."""
    problems = []
    expected = features.groupby(list(SERIES_KEY)).ngroups * len(calendar.windows)
    if len(effects) != expected:
        problems.append(f"{len(effects)} rows, expected {expected} (series x windows)")
    duplicates = int(effects.duplicated([*SERIES_KEY, "window"]).sum())
    if duplicates:
        problems.append(f"{duplicates} duplicate (server_id, metric, window) row(s)")
    unfounded = effects["clear"] & (
        (effects["occurrences"] < MIN_OCCURRENCES) | ~(effects["uplift_pts"] >= MIN_UPLIFT_PTS)
    )
    if unfounded.any():
        problems.append(f"{int(unfounded.sum())} clear row(s) without the occurrences or uplift")
    if problems:
        raise StageCheckError(f"{WHERE}: " + "; ".join(problems))


def _uplift_per_occurrence(
    raw: np.ndarray, occurrence: np.ndarray, inside: np.ndarray, others: np.ndarray
) -> pd.Series:
    """Mean of the ``inside`` rows minus mean of the ``others`` rows, per occurrence code that
    has both."""
    size = int(occurrence.max()) + 1
    values = np.where(np.isnan(raw), 0.0, raw)
    n_in = np.bincount(occurrence, weights=inside, minlength=size)
    n_out = np.bincount(occurrence, weights=others, minlength=size)
    sum_in = np.bincount(occurrence, weights=values * inside, minlength=size)
    sum_out = np.bincount(occurrence, weights=values * others, minlength=size)
    both = np.flatnonzero((n_in > 0) & (n_out > 0))
    return pd.Series(sum_in[both] / n_in[both] - sum_out[both] / n_out[both], index=both)


def _per_series(uplift: pd.Series, n_months: int, n_series: int) -> pd.DataFrame:
    """Median uplift, occurrences and share up per series code (every series, even unseen)."""
    by_series = uplift.groupby(uplift.index // n_months)
    table = pd.DataFrame(
        {
            "uplift_pts": by_series.median(),
            "occurrences": by_series.size(),
            "share_up": by_series.apply(lambda u: float((u > 0).mean())),
        }
    ).reindex(range(n_series))
    table["occurrences"] = table["occurrences"].fillna(0).astype(np.int64)
    return table.rename_axis("series").reset_index()


def _day_to_day_noise(frame: pd.DataFrame, series: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Per series code, the median absolute change of the raw value between consecutive days
    (0 where no two consecutive days were seen)."""
    order = np.lexsort((frame["date"].to_numpy(), series))
    s, v = series[order], raw[order]
    day = frame["date"].to_numpy().astype("datetime64[D]").astype(np.int64)[order]
    consecutive = (s[1:] == s[:-1]) & (np.diff(day) == 1)
    change = np.abs(np.diff(v))[consecutive]
    owner = s[1:][consecutive]
    noise = pd.Series(change).groupby(owner).median()  # NaN changes are skipped
    return noise.reindex(range(int(series.max()) + 1)).fillna(0.0).to_numpy()


def _typed(effects: pd.DataFrame) -> pd.DataFrame:
    return effects.astype(
        {
            "server_id": "str",
            "metric": "str",
            "window": "str",
            "uplift_pts": np.float64,
            "occurrences": np.int64,
            "share_up": np.float64,
            "clear": bool,
        }
    ).reset_index(drop=True)
