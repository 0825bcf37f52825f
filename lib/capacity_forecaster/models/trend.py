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
  line, ``phi = 0`` a flat level).

``level_days``, ``slope_days`` and ``phi`` are chosen **per metric** from a small grid on
rolling origins *inside* the fit's history (each scored only on days before the fit's last
day, by mean MASE over series), so nothing after the fit's last day is ever seen and the model
adapts to a fleet's data without hand tuning. Only the origin's state is kept (level, slope,
profile per series): saving is a few arrays.
"""

from __future__ import annotations

import io
import itertools
import logging
import time
import warnings
from dataclasses import dataclass
from typing import Self

import joblib
import numpy as np
import pandas as pd

from capacity_forecaster.metrics import SCALE_FLOOR
from capacity_forecaster.models import PREDICTION_COLUMNS

logger = logging.getLogger(__name__)

PROFILE_WEEKS = 8  # weeks of history behind the weekly profile
LEVEL_DAYS = (1, 7, 28)  # candidate level windows (days)
SLOPE_DAYS = (28, 91, 182)  # candidate slope windows (days)
DAMPING = (0.0, 0.9, 0.97, 0.99, 1.0)  # candidate phi; 0: no trend
DEFAULT_CONFIG = (7, 91, 0.97)  # used when the history is too short to select on
SELECTION_HORIZON = 90  # days ahead each selection origin is scored on (at most)
SELECTION_ORIGINS = 3  # rolling selection origins inside the history, 28 days apart
SELECTION_STEP_DAYS = 28
MIN_SELECTION_TRAIN_DAYS = 56  # history an origin needs before it to select on


@dataclass(frozen=True)
class _State:
    """Per series, what an origin knows: level, slope (points/day), weekday profile [7, n]."""

    level: np.ndarray
    slope: np.ndarray
    profile: np.ndarray


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
    centred = pd.DataFrame(recent).rolling(7, center=True, min_periods=5).mean().to_numpy()
    detrended = recent - centred
    profile = np.vstack(
        [_nan_reduce("nanmedian", detrended[recent_weekday == d]) for d in range(7)]
    )
    profile = np.nan_to_num(profile)
    return profile - profile.mean(axis=0, keepdims=True)


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


def _forecast(state: _State, horizons: np.ndarray, weekdays: np.ndarray, phi: float) -> np.ndarray:
    """[len(horizons), n] clipped forecasts."""
    trend = state.level[None, :] + _damped_steps(horizons, phi)[:, None] * state.slope[None, :]
    return np.clip(trend + state.profile[weekdays], 0.0, 100.0)


def _seasonal_naive_scale(y: np.ndarray) -> np.ndarray:
    """Per series, mean |y_t - y_{t-7}| (floored): the MASE denominator, as
    ``metrics.seasonal_naive_scale`` computes it on the long frame."""
    scale = _nan_reduce("nanmean", np.abs(y[7:] - y[:-7]))
    return np.maximum(np.nan_to_num(scale, nan=SCALE_FLOOR), SCALE_FLOOR)


def select_config(
    y: np.ndarray, weekday: np.ndarray, horizon_days: int
) -> tuple[tuple[int, int, float], dict[tuple[int, int, float], float]]:
    """The (level_days, slope_days, phi) with the lowest mean MASE over series on rolling
    origins inside ``y`` (days x n); every scored day is inside ``y``. Returns the choice and
    every candidate's score (empty when the history is too short to select on)."""
    n_days = len(y)
    horizon = min(horizon_days, SELECTION_HORIZON)
    latest = n_days - 1 - horizon
    origins = [latest - SELECTION_STEP_DAYS * k for k in range(SELECTION_ORIGINS)]
    origins = [o for o in origins if o + 1 >= MIN_SELECTION_TRAIN_DAYS]
    if not origins:
        return DEFAULT_CONFIG, {}
    scale = _seasonal_naive_scale(y)
    steps = np.arange(1, horizon + 1)
    totals: dict[tuple[int, int, float], list[float]] = {}
    for origin in origins:
        past, past_weekday = y[: origin + 1], weekday[: origin + 1]
        actual = y[origin + 1 : origin + 1 + horizon]
        for level_days, slope_days in itertools.product(LEVEL_DAYS, SLOPE_DAYS):
            # The state without damping is shared by every phi > 0 (phi only scales the slope).
            base = _state(past, past_weekday, level_days, slope_days, 1.0)
            flat = _State(
                np.nan_to_num(base.level - base.slope * (level_days - 1) / 2),
                np.zeros_like(base.slope),
                base.profile,
            )
            for phi in DAMPING:
                state = flat if phi == 0 else base
                predicted = _forecast(state, steps, weekday[origin + 1 : origin + 1 + horizon], phi)
                error = _nan_reduce("nanmean", np.abs(actual - predicted)) / scale
                totals.setdefault((level_days, slope_days, phi), []).append(
                    float(np.nanmean(error))
                )
    scores = {config: float(np.mean(values)) for config, values in totals.items()}
    return min(scores, key=scores.__getitem__), scores


class RobustTrendModel:
    """Robust damped trend plus weekly profile per series (see the module docstring)."""

    name = "robust_trend"

    def __init__(self, *, horizon_days: int = 120) -> None:
        self.horizon_days = horizon_days
        self.configs_: dict[str, tuple[int, int, float]] = {}
        self.states_: dict[str, tuple[np.ndarray, pd.Timestamp, _State]] = {}

    def fit(self, history: pd.DataFrame, servers: pd.DataFrame | None = None) -> Self:
        """Per metric: select the config on inner origins, then keep each series' final state."""
        frame = history[["server_id", "metric", "date", "value"]].dropna(subset=["value"])
        self.configs_, self.states_ = {}, {}
        for metric, series in frame.groupby("metric", sort=True):
            started = time.perf_counter()
            dates, server_ids, y = _grid(series)
            weekday = dates.day_of_week.to_numpy()
            config, scores = select_config(y, weekday, self.horizon_days)
            level_days, slope_days, phi = config
            state = _state(y, weekday, level_days, slope_days, phi)
            self.configs_[str(metric)] = config
            self.states_[str(metric)] = (server_ids, dates[-1], state)
            logger.info(
                "robust_trend %s: %d series, level %d d, slope %d d, phi %.2f (inner MASE %s) in %.2f s",
                metric,
                len(server_ids),
                level_days,
                slope_days,
                phi,
                f"{scores[config]:.3f}" if scores else "n/a: short history, default",
                time.perf_counter() - started,
            )
        return self

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
        return result.sort_values(["server_id", "metric", "date"], ignore_index=True)[
            PREDICTION_COLUMNS
        ]

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        joblib.dump(
            {
                "horizon_days": self.horizon_days,
                "configs": self.configs_,
                "states": {
                    metric: (ids, last, vars(state))
                    for metric, (ids, last, state) in self.states_.items()
                },
            },
            buffer,
            compress=3,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        saved = joblib.load(io.BytesIO(data))
        model = cls(horizon_days=saved["horizon_days"])
        model.configs_ = saved["configs"]
        model.states_ = {
            metric: (ids, last, _State(**state))
            for metric, (ids, last, state) in saved["states"].items()
        }
        return model
