"""Predicting with many fitted Prophets at once, and decoding saved ones.

``Prophet.predict`` rebuilds the seasonal and holiday design matrix for every model; here it is
built once per group of models that share it (``predict_many``). Saved models are kept as
Prophet's own JSON until the first predict, which decodes them (``decode_chunk``, in workers
when there are enough of them).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import pandas as pd
from prophet import Prophet
from prophet.serialize import model_from_json

from capacity_forecaster.forecasting.models.base import PREDICTION_COLUMNS
from capacity_forecaster.forecasting.models.prophet.fitting import SeriesKey, quiet_stan

logger = logging.getLogger(__name__)

MIN_PARALLEL_DECODE = 48  # below this many models, decoding in-process is faster


def empty_predictions(date_dtype: Any) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "server_id": pd.Series(dtype=object),
            "metric": pd.Series(dtype=object),
            "date": pd.Series(dtype=date_dtype),
            "yhat": pd.Series(dtype=np.float64),
        }
    )[PREDICTION_COLUMNS]


def decode(text: str) -> Prophet:
    model = model_from_json(text)
    model.stan_backend = None
    return model


def decode_chunk(items: list[tuple[SeriesKey, str]]) -> list[tuple[SeriesKey, Prophet]]:
    """Worker task: Prophet models back from their JSON text."""
    with quiet_stan():
        return [(key, decode(text)) for key, text in items]


def predict_many(
    prophets: list[tuple[SeriesKey, Prophet]], dates: pd.DatetimeIndex
) -> dict[SeriesKey, np.ndarray]:
    """Prophet's ``yhat`` for many fitted models on the same dates.

    ``Prophet.predict`` rebuilds the seasonal and holiday design matrix for every model, which
    is ~95 % of its cost (every holiday row is matched against the dates in Python). That
    matrix depends only on the dates and on the model's seasonalities and holidays, so it is
    built once per group of models that share them (a handful per fleet: countries x yearly
    on/off), and each model adds its own trend and ``X @ beta`` exactly as Prophet does
    (``predict_trend`` and ``predict_seasonal_components``; no uncertainty sampling, no
    regressors). The first model of each group is checked against ``Prophet.predict``; a
    group that differs (a future Prophet computing differently) falls back to it.
    """
    future = pd.DataFrame({"ds": dates})
    groups: dict[str, list[tuple[SeriesKey, Prophet]]] = {}
    for key, prophet in prophets:
        groups.setdefault(_design_signature(prophet, dates), []).append((key, prophet))
    out: dict[SeriesKey, np.ndarray] = {}
    for members in groups.values():
        out.update(_predict_group(members, future))
    return out


def _predict_group(
    members: list[tuple[SeriesKey, Prophet]], future: pd.DataFrame
) -> dict[SeriesKey, np.ndarray]:
    """``yhat`` of models that share one design matrix on ``future``; Prophet's own predict
    for every one of them when the first model's shared-design result differs from it."""
    first_key, first = members[0]
    frame = first.setup_dataframe(future.copy())
    features, _, component_cols, _ = first.make_all_seasonality_features(frame)
    design = (
        features.to_numpy(dtype=np.float64),
        component_cols["additive_terms"].to_numpy(dtype=np.float64),
        component_cols["multiplicative_terms"].to_numpy(dtype=np.float64),
    )
    reference = first.predict(future)["yhat"].to_numpy(dtype=np.float64)
    if not np.allclose(_yhat(first, future, design), reference, rtol=1e-9, atol=1e-9):
        logger.warning(
            "prophet: the shared-design predict differs from Prophet.predict for %s; "
            "predicting its %d model(s) one by one",
            first_key,
            len(members),
        )
        return {
            key: prophet.predict(future)["yhat"].to_numpy(dtype=np.float64)
            for key, prophet in members
        }
    out = {first_key: reference}
    for key, prophet in members[1:]:
        out[key] = _yhat(prophet, future, design)
    return out


def _yhat(
    prophet: Prophet, future: pd.DataFrame, design: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> np.ndarray:
    """``trend * (1 + multiplicative terms) + additive terms``, as ``Prophet.predict`` sums them."""
    features, additive, multiplicative = design
    beta = np.asarray(prophet.params["beta"], dtype=np.float64)  # (samples, columns)
    trend = np.asarray(prophet.predict_trend(prophet.setup_dataframe(future.copy())))
    additive_terms = np.nanmean(features @ (beta * additive).T, axis=1) * prophet.y_scale
    multiplicative_terms = np.nanmean(features @ (beta * multiplicative).T, axis=1)
    return trend * (1.0 + multiplicative_terms) + additive_terms


def _design_signature(prophet: Prophet, dates: pd.DatetimeIndex) -> str:
    """What Prophet's design matrix on ``dates`` depends on, as a text key.

    Seasonalities, modes and prior scales; the holiday names seen in training; the holiday
    kinds (name, windows, prior scale) over all rows, which make the columns; and the holiday
    rows whose window can touch ``dates``, which fill them. Equal keys give equal matrices.
    """
    holidays = prophet.holidays
    kinds: list[Any] = []
    rows: list[Any] = []
    if holidays is not None and len(holidays):
        days = pd.to_datetime(holidays["ds"]).to_numpy(dtype="datetime64[D]")
        lower, upper = (
            np.nan_to_num(pd.to_numeric(holidays[c], errors="coerce").to_numpy(dtype=np.float64))
            if c in holidays
            else np.zeros(len(holidays))
            for c in ("lower_window", "upper_window")
        )
        first, last = dates[[0, -1]].to_numpy(dtype="datetime64[D]")
        near = (days + upper.astype("timedelta64[D]") >= first) & (
            days + lower.astype("timedelta64[D]") <= last
        )
        rows = holidays[near].astype(str).to_numpy().tolist()
        others = [holidays[c].astype(str).tolist() for c in holidays.columns if c != "ds"]
        kinds = sorted(set(zip(*others, strict=True)))
    names = prophet.train_holiday_names
    return json.dumps(
        [
            sorted((name, sorted(props.items())) for name, props in prophet.seasonalities.items()),
            None if names is None else sorted(names.astype(str)),
            None if holidays is None else list(holidays.columns),
            kinds,
            rows,
            prophet.holidays_mode,
            prophet.holidays_prior_scale,
            prophet.country_holidays,
            sorted(prophet.extra_regressors),
        ],
        default=str,
    )
