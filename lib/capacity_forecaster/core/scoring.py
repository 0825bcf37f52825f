"""Forecast accuracy: MAE, RMSE, MAPE, sMAPE, MASE and interval coverage.

MASE divides a forecast's MAE by the in-sample MAE of the weekly seasonal-naive forecast
(``|y_t - y_{t-7}|`` on the training history, calendar-aligned), so 1.0 means "as good as
repeating last week, one step ahead"; below 1 beats it. MAPE skips actuals below
``MAPE_FLOOR`` percent, where a ratio to a near-zero utilisation means nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from capacity_forecaster.core.vocabulary import SERIES_KEY

SEASON_DAYS = 7
MAPE_FLOOR = 1.0  # percent utilisation
SCALE_FLOOR = 0.05  # percent points: a flat series must not make MASE explode


def mae(actual: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(actual) - np.asarray(predicted))))


def rmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(actual) - np.asarray(predicted)) ** 2)))


def mape(actual: np.ndarray, predicted: np.ndarray, floor: float = MAPE_FLOOR) -> float:
    """Mean absolute percentage error (percent) over actuals of at least ``floor``; NaN if none."""
    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    keep = np.abs(actual) >= floor
    if not keep.any():
        return float("nan")
    return float(100 * np.mean(np.abs(actual[keep] - predicted[keep]) / np.abs(actual[keep])))


def smape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Symmetric MAPE (percent, 0-200); a point where both are 0 counts as 0."""
    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    denominator = np.abs(actual) + np.abs(predicted)
    ratio = np.divide(
        2 * np.abs(actual - predicted),
        denominator,
        out=np.zeros_like(denominator),
        where=denominator > 0,
    )
    return float(100 * np.mean(ratio))


def mase(actual: np.ndarray, predicted: np.ndarray, scale: float) -> float:
    """MAE divided by the in-sample seasonal-naive MAE ``scale``."""
    return mae(actual, predicted) / max(float(scale), SCALE_FLOOR)


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of actuals inside [lower, upper]."""
    actual = np.asarray(actual, dtype=float)
    return float(np.mean((actual >= np.asarray(lower)) & (actual <= np.asarray(upper))))


def seasonal_naive_scale(history: pd.DataFrame, season: int = SEASON_DAYS) -> pd.Series:
    """Per series, the in-sample MAE of ``y_t - y_{t-season}`` on the calendar (MASE's denominator).

    ``history`` is long (server_id, metric, date, value). Series with no pair ``season`` days
    apart are absent from the result (callers fall back to ``SCALE_FLOOR``). The result is
    floored at ``SCALE_FLOOR``.
    """
    frame = history[[*SERIES_KEY, "date", "value"]]
    earlier = frame.assign(date=frame["date"] + pd.Timedelta(days=season)).rename(
        columns={"value": "earlier"}
    )
    paired = frame.merge(earlier, on=[*SERIES_KEY, "date"], how="inner")
    scale = (
        (paired["value"] - paired["earlier"]).abs().groupby([paired[k] for k in SERIES_KEY]).mean()
    )
    return scale.clip(lower=SCALE_FLOOR).rename("scale")


def score(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Accuracy of forecast rows grouped by ``by``.

    ``frame`` needs actual, yhat, scale (the series' seasonal-naive scale) and, for coverage,
    yhat_lower and yhat_upper. MASE here is the grouped MAE of scaled errors, i.e. the mean
    over rows of ``|e| / scale``, which equals per-series MASE for a single series.
    """
    error = frame["actual"] - frame["yhat"]
    scaled = error.abs() / frame["scale"].clip(lower=SCALE_FLOOR)
    both = frame["actual"].abs() + frame["yhat"].abs()
    work = pd.DataFrame(
        {
            **{k: frame[k] for k in by},
            "abs_error": error.abs(),
            "sq_error": error**2,
            "pct_error": (100 * error.abs() / frame["actual"].abs()).where(
                frame["actual"].abs() >= MAPE_FLOOR
            ),
            "s_error": (200 * error.abs() / both).where(both > 0, 0.0),
            "scaled_error": scaled,
        }
    )
    has_interval = {"yhat_lower", "yhat_upper"} <= set(frame.columns)
    if has_interval:
        work["covered"] = (
            (frame["actual"] >= frame["yhat_lower"]) & (frame["actual"] <= frame["yhat_upper"])
        ).astype(float)
        work["width"] = frame["yhat_upper"] - frame["yhat_lower"]
    grouped = work.groupby(by, sort=True)
    result = pd.DataFrame(
        {
            "n": grouped.size(),
            "mae": grouped["abs_error"].mean(),
            "rmse": np.sqrt(grouped["sq_error"].mean()),
            "mape": grouped["pct_error"].mean(),
            "smape": grouped["s_error"].mean(),
            "mase": grouped["scaled_error"].mean(),
        }
    )
    if has_interval:
        result["coverage"] = grouped["covered"].mean()
        result["interval_width"] = grouped["width"].mean()
    return result.reset_index()
