"""A robust damped-trend model with a weekly profile: numpy only, per series, near-free to fit.

Method (a classical exponential-smoothing-style decomposition, estimated robustly):

- **weekly profile**: per series and weekday, the median over the last ``PROFILE_WEEKS`` weeks
  of the value minus its centred 7-day mean, re-centred to sum to zero (additive);
- **level**: the mean of the last ``level_days`` deseasonalised values, moved forward to the
  origin by the slope (a window's mean sits at its middle day);
- **slope**: the median of the deseasonalised 7-day changes over the last ``slope_days``,
  divided by 7; a median ignores one-off drops (disk cleanups, memory restarts) that a
  least-squares slope would chase;
- **forecast**: ``level + slope * (phi + phi^2 + ... + phi^h) + profile[weekday]``, clipped
  to the physical range 0-100 % (a damped trend, Gardner & McKenzie; ``phi = 1`` is a straight
  line, ``phi = 0`` a flat level);
- **learned cleanups** (a sawtooth: disks purged when they pass their alert level): a series
  whose own history shows at least ``CLEANUP_MIN_DROPS`` large, lasting drops from about the
  same peak (within ``CLEANUP_PEAK_TOLERANCE`` points of each other and of the series' highest
  value) with similar post/pre ratios gets that peak and the median ratio; its forecast path
  grows along the damped trend until it passes the peak, is multiplied by the ratio there, and
  grows on. Other series (no cleanups, one-off drops, disks that never clean up) are forecast
  by the damped trend alone.
- **business-calendar windows** (``calendar.windows``: month end, quarter end, a payroll day,
  on the business days of each series' country): per series and window an additive effect, the
  median over the window's latest ``WINDOW_OCCURRENCES`` occurrences of its deseasonalised
  value on the window's days less the median of the ordinary business days within
  ``WINDOW_BASELINE_DAYS`` around them (and less the other windows' effects on those days, so a
  quarter's last month end counts once); added on the forecast's window days. With the
  effects, window days are left out of the weekly profile, level and slope, so a month-end
  spike lifts no other day; without them, every day counts, as before the calendar.
  A window observed in fewer than ``MIN_WINDOW_OCCURRENCES`` occurrences (a year end in a
  1.5-year history) gets no effect; one on more than ``MAX_WINDOW_SHARE`` of the days is no
  peak and is ignored altogether.

``level_days``, ``slope_days``, ``phi`` and whether to use learned cleanups and the window
effects are chosen **per metric** from a small grid on rolling origins *inside* the fit's
history (each scored only on days before the fit's last day, by mean MASE over series), so
nothing after the fit's last day is ever seen and the model adapts to a fleet's data without
hand tuning. Only the origin's state is kept (level, slope, profile, cleanup peak and ratio,
window effects per series) with the calendar and the servers' countries: saving is a few arrays.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd

from capacity_forecaster.core.calendar import server_countries
from capacity_forecaster.core.calendar_windows import days_off, window_flags
from capacity_forecaster.core.params_calendar import CalendarParams
from capacity_forecaster.core.scoring import SCALE_FLOOR
from capacity_forecaster.core.vocabulary import SERIES_KEY
from capacity_forecaster.forecasting.models.base import PREDICTION_COLUMNS, ForecastModel

logger = logging.getLogger(__name__)

# level_days, slope_days, phi, learned cleanups, window effects
Config = tuple[int, int, float, bool, bool]
PROFILE_WEEKS = 8  # weeks of history behind the weekly profile
LEVEL_DAYS = (1, 7, 28)  # candidate level windows (days)
SLOPE_DAYS = (28, 91, 182)  # candidate slope windows (days)
DAMPING = (0.0, 0.9, 0.97, 0.99, 1.0)  # candidate phi; 0: no trend
# Used when the history is too short to select on. Window effects on: the windows are the
# user's own account of their peaks, and a series without one gets an effect near zero.
DEFAULT_CONFIG: Config = (7, 91, 0.97, False, True)
SELECTION_HORIZON = 90  # days ahead each selection origin is scored on (at most)
SELECTION_ORIGINS = 3  # rolling selection origins inside the history, 28 days apart
SELECTION_STEP_DAYS = 28
MIN_SELECTION_TRAIN_DAYS = 56  # history an origin needs before it to select on
CLEANUP_MIN_DROPS = 2  # drops from about the same peak before a cleanup level is learned
CLEANUP_MIN_POINTS = 3.0  # a drop loses at least this many points in one day...
CLEANUP_MAX_RATIO = 0.92  # ...and at least 8 % of its level
CLEANUP_HOLD_DAYS = 7  # and the next days stay down (a one-day dip is not a cleanup)
CLEANUP_PEAK_TOLERANCE = 0.5  # points between the peaks of one cleanup level
CLEANUP_RATIO_SPREAD = 0.1  # largest spread of post/pre ratios of one cleanup level
# A year of month ends: enough for a median that shrugs off a few odd closes, recent enough to
# follow a spike that grows; a rarer window takes as many as the history holds, up to as many.
WINDOW_OCCURRENCES = 12
MIN_WINDOW_OCCURRENCES = 2  # fewer occurrences observed: no effect (one is an anecdote)
WINDOW_BASELINE_DAYS = 7  # calendar days each side of an occurrence for its ordinary level
OCCURRENCE_GAP_DAYS = 7  # window days further apart than this are separate occurrences
MAX_WINDOW_SHARE = 0.25  # a window on more of the days than this is no peak: ignored
# Backfitting passes over overlapping windows: each pass halves the distance to where they
# settle; after five, 0.01 points on average (0.25 at most) on a 200-server benchmark fleet.
WINDOW_PASSES = 5


@dataclass(frozen=True)
class _State:
    """Per series, what an origin knows: level, slope (points/day), weekday profile [7, n] and
    the learned cleanup peak and post/pre ratio (NaN where none is used)."""

    level: np.ndarray
    slope: np.ndarray
    profile: np.ndarray
    peak: np.ndarray | None = None
    ratio: np.ndarray | None = None
    effects: np.ndarray | None = None  # [windows, n] points added on each window's days


@dataclass(frozen=True)
class _WindowDays:
    """The business calendar's windows on a run of days: per country, ``flags`` [countries,
    windows, days] and ``business`` [countries, days] (Monday to Friday less its holidays);
    ``country`` per series its row in them."""

    flags: np.ndarray
    business: np.ndarray
    country: np.ndarray

    def days(self, start: int, stop: int) -> _WindowDays:
        """The same windows on days ``start`` to ``stop`` (exclusive) only."""
        return _WindowDays(self.flags[:, :, start:stop], self.business[:, start:stop], self.country)

    def usable(self) -> np.ndarray:
        """[countries, windows] True where the window is a peak: on at most
        ``MAX_WINDOW_SHARE`` of the days (more leaves too few ordinary days around it)."""
        return self.flags.mean(axis=2) <= MAX_WINDOW_SHARE

    def ordinary(self) -> np.ndarray:
        """[days, n] True on each series' days outside every usable window."""
        inside = (self.flags & self.usable()[:, :, None]).any(axis=1)
        return ~inside[self.country].T

    def offsets(self, effects: np.ndarray) -> np.ndarray:
        """[days, n] the sum of ``effects`` ([windows, n]) of the windows each day is in."""
        return np.einsum("nwd,wn->dn", self.flags[self.country].astype(float), effects)


def window_days(
    dates: pd.DatetimeIndex, countries: Sequence[str | None], calendar: CalendarParams
) -> _WindowDays:
    """The windows of ``calendar`` on ``dates`` for series in ``countries`` (None: no known
    country, Monday to Friday without holidays), computed once per country."""
    unique = list(dict.fromkeys(countries))
    flags = np.zeros((len(unique), len(calendar.windows), len(dates)), dtype=bool)
    business = np.zeros((len(unique), len(dates)), dtype=bool)
    for row, country in enumerate(unique):
        by_name = window_flags(dates, country, calendar)
        for k, name in enumerate(calendar.windows):
            flags[row, k] = by_name[name]
        business[row] = (np.asarray(dates.day_of_week) < 5) & ~days_off(dates, country, calendar)
    position = {country: row for row, country in enumerate(unique)}
    return _WindowDays(flags, business, np.array([position[c] for c in countries], dtype=np.intp))


def _grid(series: pd.DataFrame) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """(daily dates, server ids, values[day, series]) with NaN on missing days."""
    wide = series.pivot_table(index="date", columns="server_id", values="value", aggfunc="last")
    dates = pd.date_range(wide.index.min(), wide.index.max(), freq="D")
    wide = wide.reindex(dates)
    return dates, wide.columns.to_numpy(dtype=object), wide.to_numpy(dtype=float)


def _nan_reduce(how: str, values: np.ndarray, axis: int = 0) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN, as wanted
        return getattr(np, how)(values, axis=axis)


def _nanmedian(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """``np.nanmedian(values, axis)`` (NaN where a slice has no value) by one sort: numpy's
    own takes a masked-array path on short axes, five times slower on these arrays."""
    ordered = np.sort(values, axis=axis)  # NaN sorts last
    count = np.sum(~np.isnan(values), axis=axis, keepdims=True)
    low = np.take_along_axis(ordered, np.maximum(count - 1, 0) // 2, axis)
    high = np.take_along_axis(ordered, np.maximum(count, 1) // 2, axis)
    return np.squeeze((low + high) / 2, axis=axis)


def _weekly_profile(y: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    """[7, n] additive weekday offsets from the last PROFILE_WEEKS weeks of ``y`` (days x n)."""
    days = 7 * PROFILE_WEEKS
    recent, recent_weekday = y[-(days + 3) :], weekday[-(days + 3) :]
    detrended = recent - _centred_weekly_mean(recent)
    profile = np.vstack([_nanmedian(detrended[recent_weekday == d]) for d in range(7)])
    profile = np.nan_to_num(profile)
    return profile - profile.mean(axis=0, keepdims=True)


def _centred_weekly_mean(y: np.ndarray, min_periods: int = 5) -> np.ndarray:
    """Per column of ``y`` (days x n), the mean of the non-NaN values of the 7 days centred on
    each day (fewer at the edges), NaN where fewer than ``min_periods``: pandas'
    ``rolling(7, center=True, min_periods=5).mean()``, by cumulative sums over all columns at
    once (pandas loops over the columns, which cost robust_trend most of its fit time)."""
    valid = np.isfinite(y)
    zero = np.zeros((1, y.shape[1]))
    sums = np.vstack([zero, np.cumsum(np.where(valid, y, 0.0), axis=0)])
    counts = np.vstack([zero, np.cumsum(valid, axis=0)])
    day = np.arange(len(y))
    start, stop = np.clip(day - 3, 0, len(y)), np.clip(day + 4, 0, len(y))
    total, count = sums[stop] - sums[start], counts[stop] - counts[start]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count >= min_periods, total / count, np.nan)


def _seasonal_parts(
    y: np.ndarray, weekday: np.ndarray, windows: _WindowDays, use_windows: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """``(ordinary, profile, z, effects)`` of ``y`` (days x n): the days the weekly profile,
    level and slope are estimated on, the profile [7, n], ``y`` less it (every day), and the
    window effects [windows, n]. With window effects, the windows' days are left out of the
    others; without, every day counts, as before the calendar, and ``effects`` is None."""
    ordinary = windows.ordinary() if use_windows else np.ones(y.shape, dtype=bool)
    profile = _weekly_profile(np.where(ordinary, y, np.nan), weekday)
    z = y - profile[weekday]
    effects = _window_effects(z, ordinary, windows) if use_windows else None
    return ordinary, profile, z, effects


def _state(
    z: np.ndarray,
    ordinary: np.ndarray,
    profile: np.ndarray,
    level_days: int,
    slope_days: int,
    phi: float,
) -> _State:
    """The origin's state from the deseasonalised ``z`` (days x n, the origin being the last
    row), its level and slope from the ``ordinary`` days only (a spike lifts no other day)."""
    plain = np.where(ordinary, z, np.nan)
    if phi > 0:
        window = plain[-(slope_days + 7) :]
        slope = _nanmedian(window[7:] - window[:-7]) / 7
        slope = np.nan_to_num(slope)
    else:
        slope = np.zeros(z.shape[1])
    level = _nan_reduce("nanmean", plain[-level_days:])
    # Where the level window is empty, the last observed ordinary value stands in (any value
    # for a series seen on window days only).
    last = pd.DataFrame(plain).ffill().to_numpy()[-1].copy()
    unseen = ~np.isfinite(last)
    if unseen.any():
        last[unseen] = pd.DataFrame(z[:, unseen]).ffill().to_numpy()[-1]
    level = np.where(np.isfinite(level), level, last)
    level = level + slope * (level_days - 1) / 2  # from the window's middle to the origin
    return _State(level=np.nan_to_num(level), slope=slope, profile=profile)


def _occurrences(flags: np.ndarray) -> list[np.ndarray]:
    """Day positions of each of the latest ``WINDOW_OCCURRENCES`` occurrences of a window
    (``flags`` [days]): runs of its days at most ``OCCURRENCE_GAP_DAYS`` apart."""
    days = np.flatnonzero(flags)
    if len(days) == 0:
        return []
    runs = np.split(days, np.flatnonzero(np.diff(days) > OCCURRENCE_GAP_DAYS) + 1)
    return runs[-WINDOW_OCCURRENCES:]


def _padded(runs: list[list[np.ndarray]], fill: int) -> np.ndarray:
    """[len(runs), most occurrences, longest] day positions, ``fill`` where there are none."""
    longest = max((len(days) for run in runs for days in run), default=0)
    out = np.full((len(runs), max(map(len, runs), default=0), longest), fill, dtype=np.intp)
    for i, run in enumerate(runs):
        for o, days in enumerate(run):
            out[i, o, : len(days)] = days
    return out


def _window_effects(z: np.ndarray, ordinary: np.ndarray, windows: _WindowDays) -> np.ndarray:
    """[windows, n] each window's additive effect per series of ``z`` (deseasonalised, days x
    n), in points; 0 for a window observed in fewer than ``MIN_WINDOW_OCCURRENCES``
    occurrences, or not usable (see the module docstring).

    Per occurrence, the mean over its days of ``z`` less the median of the ordinary business
    days within ``WINDOW_BASELINE_DAYS`` of it, less the other windows' effects on those days;
    the effect is the median over occurrences. Overlapping windows (month end and quarter end)
    are separated by backfitting: each re-estimated with the others' latest effects off.
    """
    n_days = len(z)
    effects = np.zeros((windows.flags.shape[1], z.shape[1]))
    usable = windows.usable()
    for row in range(len(windows.flags)):
        kinds = np.flatnonzero(usable[row])
        runs = [_occurrences(windows.flags[row, k]) for k in kinds]
        if not any(runs):
            continue
        columns = np.flatnonzero(windows.country == row)
        # Day positions [windows, occurrences, days], padded with n_days: a row of NaN.
        days = _padded(runs, n_days)
        spans = _padded(
            [
                [
                    np.arange(max(0, d[0] - WINDOW_BASELINE_DAYS), d[-1] + WINDOW_BASELINE_DAYS + 1)
                    for d in run
                ]
                for run in runs
            ],
            n_days,
        )
        nan_row = np.full((1, len(columns)), np.nan)
        values = np.vstack([z[:, columns], nan_row])
        ordinary_days = ordinary[:, columns] & windows.business[row][:, None]
        base = np.vstack([np.where(ordinary_days, z[:, columns], np.nan), nan_row])
        level = _nanmedian(base[np.minimum(spans, n_days)], axis=2)
        excess = values[days] - level[:, :, None, :]  # [windows, occurrences, days, n]
        flags = np.hstack([windows.flags[row], np.zeros((len(windows.flags[row]), 1), bool)])
        in_window = flags[:, days].astype(float)  # [all windows, windows, occurrences, days]
        for _ in range(WINDOW_PASSES):
            for i, k in enumerate(kinds):
                # Every window's effect on these days, this one's (on all of them) less.
                others = np.einsum("wod,wn->odn", in_window[:, i], effects[:, columns])
                means = _nan_reduce("nanmean", excess[i] - (others - effects[k, columns]), axis=1)
                seen = np.isfinite(means).sum(axis=0)
                median = _nanmedian(means)
                effects[k, columns] = np.where(seen >= MIN_WINDOW_OCCURRENCES, median, 0.0)
    return effects


def _damped_steps(horizons: np.ndarray, phi: float) -> np.ndarray:
    """phi + phi^2 + ... + phi^h for each h (h for phi = 1)."""
    h = np.asarray(horizons, dtype=float)
    if phi >= 1.0:
        return h
    if phi <= 0.0:
        return np.zeros_like(h)
    return phi * (1 - phi**h) / (1 - phi)


def sharp_drops(y: np.ndarray) -> np.ndarray:
    """[days - 1, n] True where ``y`` (days x n) drops from one day to the next by at least
    ``CLEANUP_MIN_POINTS`` and 8 % and stays down for ``CLEANUP_HOLD_DAYS`` days: a disk cleanup,
    a memory restart. Row ``i`` is the drop from day ``i`` to day ``i + 1``; a drop across a gap
    counts on the gap's first day."""
    return _sharp_drops(pd.DataFrame(y).ffill().to_numpy())


def _sharp_drops(filled: np.ndarray) -> np.ndarray:
    """``sharp_drops`` of an already forward-filled ``filled`` (days x n)."""
    pre, post = filled[:-1], filled[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        # The level must stay down for the next days: the max of the following days, not the
        # next one alone, separates a cleanup from a one-day dip.
        after = (
            pd.DataFrame(filled[::-1])
            .rolling(CLEANUP_HOLD_DAYS, min_periods=1)
            .max()
            .to_numpy()[::-1][1:]
        )
        return (
            (pre - post >= CLEANUP_MIN_POINTS)
            & (post / pre <= CLEANUP_MAX_RATIO)
            & (after <= pre * CLEANUP_MAX_RATIO)
        )


def _cleanups(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per series of ``y`` (days x n), the learned cleanup peak and post/pre ratio, NaN where the
    history shows no consistent cleanup level (see the module docstring)."""
    filled = pd.DataFrame(y).ffill().to_numpy()
    pre, post = filled[:-1], filled[1:]
    drop = _sharp_drops(filled)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = post / pre
    peak = np.full(y.shape[1], np.nan)
    learned_ratio = np.full(y.shape[1], np.nan)
    highest = _nan_reduce("nanmax", y)
    for j in np.flatnonzero(drop.sum(axis=0) >= CLEANUP_MIN_DROPS):
        days = np.flatnonzero(drop[:, j])
        top = pre[days, j].max()
        # A disk cleaned at its alert level never got above it: the level is the highest value
        # the series reached, and drops lower down are ad hoc purges that happened to start alike.
        near = days[pre[days, j] >= top - CLEANUP_PEAK_TOLERANCE]
        ratios = ratio[near, j]
        if (
            len(near) >= CLEANUP_MIN_DROPS
            and highest[j] <= top + CLEANUP_PEAK_TOLERANCE
            and ratios.max() - ratios.min() <= CLEANUP_RATIO_SPREAD
        ):
            peak[j] = top
            learned_ratio[j] = np.median(ratios)
    return peak, learned_ratio


def _with_cleanups(state: _State, peak: np.ndarray, ratio: np.ndarray) -> _State:
    """``state`` with the cleanup level where it is learned and the series has not already
    outgrown it (a disk above its old peak has a new policy, or none)."""
    usable = np.isfinite(peak) & (state.level <= peak + CLEANUP_PEAK_TOLERANCE)
    return dataclasses.replace(
        state, peak=np.where(usable, peak, np.nan), ratio=np.where(usable, ratio, np.nan)
    )


def _forecast(
    state: _State,
    horizons: np.ndarray,
    weekdays: np.ndarray,
    phi: float,
    offsets: np.ndarray | float = 0.0,
) -> np.ndarray:
    """[len(horizons), n] clipped forecasts; ``offsets`` [len(horizons), n]: the window
    effects on those days (``_WindowDays.offsets``)."""
    return np.clip(_path(state, horizons, phi) + state.profile[weekdays] + offsets, 0.0, 100.0)


def _path(state: _State, horizons: np.ndarray, phi: float) -> np.ndarray:
    """[len(horizons), n] the damped trend, cut at learned cleanup levels: the forecast before
    the weekly profile and the window effects."""
    trend = state.level[None, :] + _damped_steps(horizons, phi)[:, None] * state.slope[None, :]
    if state.peak is not None and state.ratio is not None and len(horizons):
        cleaned = np.flatnonzero(np.isfinite(state.peak))
        if len(cleaned):
            trend[:, cleaned] = _cut_paths(
                state.level[cleaned],
                state.slope[cleaned],
                state.peak[cleaned],
                state.ratio[cleaned],
                horizons,
                phi,
            )
    return trend


def _cut_paths(
    level: np.ndarray,
    slope: np.ndarray,
    peak: np.ndarray,
    ratio: np.ndarray,
    horizons: np.ndarray,
    phi: float,
) -> np.ndarray:
    """[len(horizons), n] damped paths of series with a cleanup level, cut by their ratio each
    time they pass their peak.

    The path is walked day by day. The cuts add up as an offset on the closed form, so a path
    that never reaches its peak, like every series without a cleanup level, is exactly the
    closed form of ``_path``.
    """
    steps = np.arange(1, int(np.max(horizons)) + 1)
    path = level[None, :] + _damped_steps(steps, phi)[:, None] * slope[None, :]
    offset = np.zeros(len(level))
    for k in range(len(steps)):
        x = path[k] - offset
        offset = np.where(x > peak, offset + x * (1 - ratio), offset)
        path[k] -= offset
    return path[np.asarray(horizons, dtype=int) - 1]


def _countries(servers: pd.DataFrame, server_ids: np.ndarray) -> dict[str, str | None]:
    """Each server's holiday country (``core.calendar.server_countries``); None where the
    servers frame does not know it (its windows then fall on Monday to Friday)."""
    known = pd.Series(dtype=object)
    if "server_id" in servers.columns and {"region", "country"} & set(servers.columns):
        known = server_countries(servers)
    # An unknown country comes as None or, as pandas 3 has it, NaN.
    return {s: c if isinstance(c := known.get(s), str) else None for s in server_ids}


def _seasonal_naive_scale(y: np.ndarray) -> np.ndarray:
    """Per series, mean |y_t - y_{t-7}| (floored): the MASE denominator, as
    ``metrics.seasonal_naive_scale`` computes it on the long frame."""
    scale = _nan_reduce("nanmean", np.abs(y[7:] - y[:-7]))
    return np.maximum(np.nan_to_num(scale, nan=SCALE_FLOOR), SCALE_FLOOR)


def select_config(
    y: np.ndarray, weekday: np.ndarray, windows: _WindowDays, horizon_days: int
) -> tuple[Config, dict[Config, float]]:
    """The (level_days, slope_days, phi, cleanups, window effects) with the lowest mean MASE
    over series on rolling origins inside ``y`` (days x n); every scored day is inside ``y``,
    and the cleanup levels and window effects at each origin are learned from the days up to
    it. ``windows``: the calendar's windows on ``y``'s days.
    Returns the choice and every candidate's score (empty when the history is too short to
    select on); on a tie the candidate without cleanups, then without window effects, wins."""
    n_days = len(y)
    horizon = min(horizon_days, SELECTION_HORIZON)
    latest = n_days - 1 - horizon
    origins = [latest - SELECTION_STEP_DAYS * k for k in range(SELECTION_ORIGINS)]
    origins = [o for o in origins if o + 1 >= MIN_SELECTION_TRAIN_DAYS]
    if not origins:
        return DEFAULT_CONFIG, {}
    scale = _seasonal_naive_scale(y)
    steps = np.arange(1, horizon + 1)
    totals: dict[Config, list[float]] = {}
    for origin in origins:
        past, past_weekday = y[: origin + 1], weekday[: origin + 1]
        actual = y[origin + 1 : origin + 1 + horizon]
        future_weekday = weekday[origin + 1 : origin + 1 + horizon]
        future_windows = windows.days(origin + 1, origin + 1 + horizon)
        peak, ratio = _cleanups(past)
        for use_windows in (False, True):
            ordinary, profile, z, effects = _seasonal_parts(
                past, past_weekday, windows.days(0, origin + 1), use_windows
            )
            offsets = 0.0 if effects is None else future_windows.offsets(effects)
            for level_days, slope_days in itertools.product(LEVEL_DAYS, SLOPE_DAYS):
                # The state without damping is shared by every phi > 0 (phi only scales the
                # slope).
                base = _state(z, ordinary, profile, level_days, slope_days, 1.0)
                flat = _State(
                    np.nan_to_num(base.level - base.slope * (level_days - 1) / 2),
                    np.zeros_like(base.slope),
                    base.profile,
                )
                cut = _with_cleanups(base, peak, ratio)
                for phi, cleanups in itertools.product(DAMPING, (False, True)):
                    if phi == 0 and cleanups:
                        continue  # a flat path never reaches a peak it is not already above
                    state = flat if phi == 0 else cut if cleanups else base
                    predicted = _forecast(state, steps, future_weekday, phi, offsets)
                    error = _nan_reduce("nanmean", np.abs(actual - predicted)) / scale
                    totals.setdefault(
                        (level_days, slope_days, phi, cleanups, use_windows), []
                    ).append(float(np.nanmean(error)))
    scores = {config: float(np.mean(values)) for config, values in totals.items()}
    return min(scores, key=scores.__getitem__), scores


class RobustTrendModel(ForecastModel):
    """Robust damped trend plus weekly profile per series (see the module docstring)."""

    name = "robust_trend"
    # 2: the business calendar: window effects per series, the calendar and the countries.
    state_version = 2

    def __init__(self, calendar: CalendarParams | None = None) -> None:
        """``calendar``: the business calendar whose windows get an effect (default:
        ``CalendarParams()``)."""
        super().__init__()
        self.calendar = CalendarParams() if calendar is None else calendar
        self.configs_: dict[str, Config] = {}
        self.states_: dict[str, tuple[np.ndarray, pd.Timestamp, _State]] = {}
        self.countries_: dict[str, str | None] = {}  # server_id: holiday country (None: unknown)

    @classmethod
    def from_settings(cls, *, calendar: CalendarParams, n_jobs: int, seed: int) -> Self:
        return cls(calendar=calendar)

    def _fit(self, history: pd.DataFrame, servers: pd.DataFrame, horizon_days: int) -> None:
        """Per metric: select the config on inner origins scored up to ``horizon_days`` ahead
        (at most ``SELECTION_HORIZON``), then keep each series' final state."""
        frame = history[[*SERIES_KEY, "date", "value"]].dropna(subset=["value"])
        self.configs_, self.states_ = {}, {}
        self.countries_ = _countries(servers, frame["server_id"].unique())
        for metric, series in frame.groupby("metric", sort=True):
            started = time.perf_counter()
            dates, server_ids, y = _grid(series)
            weekday = dates.day_of_week.to_numpy()
            windows = window_days(dates, [self.countries_[s] for s in server_ids], self.calendar)
            config, scores = select_config(y, weekday, windows, horizon_days)
            level_days, slope_days, phi, cleanups, use_windows = config
            ordinary, profile, z, effects = _seasonal_parts(y, weekday, windows, use_windows)
            state = _state(z, ordinary, profile, level_days, slope_days, phi)
            learned = _with_cleanups(state, *_cleanups(y))
            if cleanups:
                state = learned
            state = dataclasses.replace(state, effects=effects)
            self.configs_[str(metric)] = config
            self.states_[str(metric)] = (server_ids, dates[-1], state)
            logger.info(
                "robust_trend %s: %d series, level %d d, slope %d d, phi %.2f, "
                "learned cleanup level on %d series (%s), %s (inner MASE %s) in %.2f s",
                metric,
                len(server_ids),
                level_days,
                slope_days,
                phi,
                int(np.isfinite(learned.peak).sum()) if learned.peak is not None else 0,
                "used" if cleanups else "not used: no better on inner origins",
                "no window effects: no better on inner origins"
                if effects is None
                else f"window effects on {int((effects != 0).any(axis=0).sum())} series",
                f"{scores[config]:.3f}" if scores else "n/a: short history, default",
                time.perf_counter() - started,
            )

    def predict(self, dates: pd.DatetimeIndex) -> pd.DataFrame:
        """Forecast the given days after each metric's last history day."""
        if not self.states_:
            raise RuntimeError("RobustTrendModel.predict called before fit")
        dates = pd.DatetimeIndex(dates)
        frames = []
        for metric, (server_ids, last_date, state) in self.states_.items():
            horizons = np.asarray((dates - last_date).days, dtype=int)
            if (horizons < 1).any():
                raise ValueError(
                    f"robust_trend: forecast dates must come after the history's last day {last_date.date()}"
                )
            phi = self.configs_[metric][2]
            offsets: np.ndarray | float = 0.0
            if state.effects is not None:
                countries = [self.countries_.get(s) for s in server_ids]
                offsets = window_days(dates, countries, self.calendar).offsets(state.effects)
            yhat = _forecast(state, horizons, dates.day_of_week.to_numpy(), phi, offsets)
            frames.append(
                pd.DataFrame(
                    {
                        "server_id": np.repeat(server_ids, len(dates)),
                        "metric": metric,
                        "date": np.tile(dates.values, len(server_ids)),
                        "yhat": yhat.T.reshape(-1),
                    }
                )
            )
        result = pd.concat(frames, ignore_index=True)
        return result.sort_values([*SERIES_KEY, "date"], ignore_index=True)[PREDICTION_COLUMNS]

    def to_state(self) -> dict[str, Any]:
        return {
            "calendar": self.calendar.model_dump(mode="json"),
            "countries": self.countries_,
            "configs": self.configs_,
            "states": {
                metric: (ids, last, vars(state))
                for metric, (ids, last, state) in self.states_.items()
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        model = cls(calendar=CalendarParams.model_validate(state["calendar"]))
        model.countries_ = state["countries"]
        model.configs_ = state["configs"]
        model.states_ = {
            metric: (ids, last, _State(**fields))
            for metric, (ids, last, fields) in state["states"].items()
        }
        return model
