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

``level_days``, ``slope_days``, ``phi`` and whether to use learned cleanups are chosen **per
metric** from a small grid on rolling origins *inside* the fit's history (each scored only on
days before the fit's last day, by mean MASE over series), so nothing after the fit's last day
is ever seen and the model adapts to a fleet's data without hand tuning. Only the origin's
state is kept (level, slope, profile, cleanup peak and ratio per series): saving is a few arrays.
"""

from __future__ import annotations

import itertools
import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd

from capacity_forecaster.core.scoring import SCALE_FLOOR
from capacity_forecaster.core.vocabulary import SERIES_KEY
from capacity_forecaster.forecasting.models.base import PREDICTION_COLUMNS, ForecastModel

logger = logging.getLogger(__name__)

Config = tuple[int, int, float, bool]  # level_days, slope_days, phi, learned cleanups
PROFILE_WEEKS = 8  # weeks of history behind the weekly profile
LEVEL_DAYS = (1, 7, 28)  # candidate level windows (days)
SLOPE_DAYS = (28, 91, 182)  # candidate slope windows (days)
DAMPING = (0.0, 0.9, 0.97, 0.99, 1.0)  # candidate phi; 0: no trend
DEFAULT_CONFIG: Config = (7, 91, 0.97, False)  # used when the history is too short to select on
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


@dataclass(frozen=True)
class _State:
    """Per series, what an origin knows: level, slope (points/day), weekday profile [7, n] and
    the learned cleanup peak and post/pre ratio (NaN where none is used)."""

    level: np.ndarray
    slope: np.ndarray
    profile: np.ndarray
    peak: np.ndarray | None = None
    ratio: np.ndarray | None = None


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


def _weekly_profile(y: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    """[7, n] additive weekday offsets from the last PROFILE_WEEKS weeks of ``y`` (days x n)."""
    days = 7 * PROFILE_WEEKS
    recent, recent_weekday = y[-(days + 3) :], weekday[-(days + 3) :]
    detrended = recent - _centred_weekly_mean(recent)
    profile = np.vstack(
        [_nan_reduce("nanmedian", detrended[recent_weekday == d]) for d in range(7)]
    )
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


def _state(
    y: np.ndarray, weekday: np.ndarray, level_days: int, slope_days: int, phi: float
) -> _State:
    """The origin's state from ``y`` (days x n, the origin being the last row)."""
    profile = _weekly_profile(y, weekday)
    z = y - profile[weekday]  # deseasonalised
    if phi > 0:
        window = z[-(slope_days + 7) :]
        slope = _nan_reduce("nanmedian", window[7:] - window[:-7]) / 7
        slope = np.nan_to_num(slope)
    else:
        slope = np.zeros(y.shape[1])
    level = _nan_reduce("nanmean", z[-level_days:])
    # Where the level window is empty, the last observed deseasonalised value stands in.
    last = pd.DataFrame(z).ffill().to_numpy()[-1]
    level = np.where(np.isfinite(level), level, last)
    level = level + slope * (level_days - 1) / 2  # from the window's middle to the origin
    return _State(level=np.nan_to_num(level), slope=slope, profile=profile)


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
    return _State(
        state.level,
        state.slope,
        state.profile,
        np.where(usable, peak, np.nan),
        np.where(usable, ratio, np.nan),
    )


def _forecast(state: _State, horizons: np.ndarray, weekdays: np.ndarray, phi: float) -> np.ndarray:
    """[len(horizons), n] clipped forecasts."""
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
    return np.clip(trend + state.profile[weekdays], 0.0, 100.0)


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
    closed form of ``_forecast``.
    """
    steps = np.arange(1, int(np.max(horizons)) + 1)
    path = level[None, :] + _damped_steps(steps, phi)[:, None] * slope[None, :]
    offset = np.zeros(len(level))
    for k in range(len(steps)):
        x = path[k] - offset
        offset = np.where(x > peak, offset + x * (1 - ratio), offset)
        path[k] -= offset
    return path[np.asarray(horizons, dtype=int) - 1]


def _seasonal_naive_scale(y: np.ndarray) -> np.ndarray:
    """Per series, mean |y_t - y_{t-7}| (floored): the MASE denominator, as
    ``metrics.seasonal_naive_scale`` computes it on the long frame."""
    scale = _nan_reduce("nanmean", np.abs(y[7:] - y[:-7]))
    return np.maximum(np.nan_to_num(scale, nan=SCALE_FLOOR), SCALE_FLOOR)


def select_config(
    y: np.ndarray, weekday: np.ndarray, horizon_days: int
) -> tuple[Config, dict[Config, float]]:
    """The (level_days, slope_days, phi, cleanups) with the lowest mean MASE over series on
    rolling origins inside ``y`` (days x n); every scored day is inside ``y``, and the cleanup
    levels at each origin are learned from the days up to it. Returns the choice and every
    candidate's score (empty when the history is too short to select on); on a tie the
    candidate without cleanups wins."""
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
        peak, ratio = _cleanups(past)
        for level_days, slope_days in itertools.product(LEVEL_DAYS, SLOPE_DAYS):
            # The state without damping is shared by every phi > 0 (phi only scales the slope).
            base = _state(past, past_weekday, level_days, slope_days, 1.0)
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
                predicted = _forecast(state, steps, future_weekday, phi)
                error = _nan_reduce("nanmean", np.abs(actual - predicted)) / scale
                totals.setdefault((level_days, slope_days, phi, cleanups), []).append(
                    float(np.nanmean(error))
                )
    scores = {config: float(np.mean(values)) for config, values in totals.items()}
    return min(scores, key=scores.__getitem__), scores


class RobustTrendModel(ForecastModel):
    """Robust damped trend plus weekly profile per series (see the module docstring)."""

    name = "robust_trend"

    def __init__(self) -> None:
        super().__init__()
        self.configs_: dict[str, Config] = {}
        self.states_: dict[str, tuple[np.ndarray, pd.Timestamp, _State]] = {}

    def _fit(self, history: pd.DataFrame, servers: pd.DataFrame, horizon_days: int) -> None:
        """Per metric: select the config on inner origins scored up to ``horizon_days`` ahead
        (at most ``SELECTION_HORIZON``), then keep each series' final state."""
        frame = history[[*SERIES_KEY, "date", "value"]].dropna(subset=["value"])
        self.configs_, self.states_ = {}, {}
        for metric, series in frame.groupby("metric", sort=True):
            started = time.perf_counter()
            dates, server_ids, y = _grid(series)
            weekday = dates.day_of_week.to_numpy()
            config, scores = select_config(y, weekday, horizon_days)
            level_days, slope_days, phi, cleanups = config
            state = _state(y, weekday, level_days, slope_days, phi)
            learned = _with_cleanups(state, *_cleanups(y))
            if cleanups:
                state = learned
            self.configs_[str(metric)] = config
            self.states_[str(metric)] = (server_ids, dates[-1], state)
            logger.info(
                "robust_trend %s: %d series, level %d d, slope %d d, phi %.2f, "
                "learned cleanup level on %d series (%s) (inner MASE %s) in %.2f s",
                metric,
                len(server_ids),
                level_days,
                slope_days,
                phi,
                int(np.isfinite(learned.peak).sum()) if learned.peak is not None else 0,
                "used" if cleanups else "not used: no better on inner origins",
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
            yhat = _forecast(state, horizons, dates.day_of_week.to_numpy(), phi)
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
            "configs": self.configs_,
            "states": {
                metric: (ids, last, vars(state))
                for metric, (ids, last, state) in self.states_.items()
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        model = cls()
        model.configs_ = state["configs"]
        model.states_ = {
            metric: (ids, last, _State(**fields))
            for metric, (ids, last, fields) in state["states"].items()
        }
        return model
