"""When and how likely each series breaches its threshold, from its champion forecast.

Breach probability. The calibrated central interval at level ``interval`` gives two quantiles
(``yhat_lower`` at (1 - interval)/2, ``yhat_upper`` at (1 + interval)/2). The forecast error is
modelled as a split normal centred on ``yhat`` taken as the median: above ``yhat`` a normal with
``sigma_up = (yhat_upper - yhat) / z``, below it one with ``sigma_down = (yhat - yhat_lower) / z``,
``z = Phi^-1((1 + interval) / 2)``, each half carrying probability 1/2. So both interval bounds
are reproduced exactly, P(value > threshold) is 0.5 at ``yhat == threshold`` and (1 - interval)/2
at ``threshold == yhat_upper``. A zero-width side is a step (0 above ``yhat``, 1 below it).
The daily probabilities of one series are strongly correlated (one level error moves every day
together), so the series' ``breach_probability`` is the maximum over the horizon, taken as a fair
estimate of P(any breach within the horizon); the true value lies between that maximum and
the union bound.

Breach dates. ``days_to_breach`` is the first horizon where the forecast reaches the threshold,
``days_to_breach_upper`` the first where the interval's upper bound does (NaN: never).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from capacity_forecaster.core.vocabulary import SERIES_KEY

__all__ = ["breach_probability", "series_breaches"]

SERIES = list(SERIES_KEY)


def breach_probability(
    yhat: Any, lower: Any, upper: Any, threshold: Any, interval: float
) -> np.ndarray:
    """P(value > threshold) per row from a calibrated central interval, as a split normal.

    ``yhat`` is the median; above it the spread is ``(upper - yhat) / z``, below it
    ``(yhat - lower) / z`` with ``z = Phi^-1((1 + interval) / 2)``. A zero-width side is a
    0/1 step (0.5 exactly at ``threshold == yhat``). NaN inputs give NaN.
    """
    if not 0 < interval < 1:
        raise ValueError(f"interval must be in (0, 1), got {interval}")
    yhat, lower, upper, threshold = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (yhat, lower, upper, threshold))
    )
    z = float(ndtri((1 + interval) / 2))
    above = threshold >= yhat
    sigma = np.where(above, upper - yhat, yhat - lower).clip(min=0) / z
    gap = threshold - yhat
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(sigma > 0, gap / sigma, np.sign(gap) * np.inf)
    score = np.where(gap == 0, 0.0, score)
    return 1.0 - ndtr(score)


def series_breaches(champion: pd.DataFrame, high_within_days: int) -> pd.DataFrame:
    """One row per series from its champion rows (sorted by series and horizon, with
    ``threshold`` and the daily ``probability``): model, threshold, forecast peak and its date,
    headroom, breach probability over the horizon and over the first ``high_within_days``, and
    the first breach of the forecast and of the upper bound (days and date)."""
    grouped = champion.groupby(SERIES, sort=False)
    risk = grouped.first()[["model", "threshold"]].reset_index()
    risk["forecast_peak"] = grouped["yhat"].max().to_numpy()
    risk["peak_date"] = champion.loc[grouped["yhat"].idxmax(), "date"].to_numpy()
    risk["headroom_pts"] = risk["threshold"] - risk["forecast_peak"]
    risk["breach_probability"] = grouped["probability"].max().to_numpy()
    soon = champion[champion["horizon"] <= high_within_days].groupby(SERIES)["probability"].max()
    risk["breach_probability_soon"] = (
        soon.reindex(pd.MultiIndex.from_frame(risk[SERIES])).fillna(0.0).to_numpy()
    )
    keys = risk[SERIES]
    point = _first_where(champion, champion["yhat"] >= champion["threshold"], keys)
    upper = _first_where(champion, champion["yhat_upper"] >= champion["threshold"], keys)
    risk["days_to_breach"] = point["horizon"].astype(float).to_numpy()
    risk["breach_date"] = pd.to_datetime(point["date"]).to_numpy()
    risk["days_to_breach_upper"] = upper["horizon"].astype(float).to_numpy()
    risk["breach_date_upper"] = pd.to_datetime(upper["date"]).to_numpy()
    return risk


def _first_where(frame: pd.DataFrame, mask: pd.Series, keys: pd.DataFrame) -> pd.DataFrame:
    """Per series in ``keys``, horizon and date of the first row (frame is sorted by horizon)
    where mask holds; NaN where it never does."""
    columns = ["horizon", "date"]
    hits = frame.loc[mask, [*SERIES, *columns]].drop_duplicates(SERIES, keep="first")
    return keys.merge(hits, on=SERIES, how="left")[columns]
