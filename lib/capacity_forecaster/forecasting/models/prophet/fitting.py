"""Fitting many Prophets: the series to fit, their settings, and the worker tasks.

Each series gets a linear-growth Prophet with weekly seasonality, yearly seasonality when its
history is long enough, and its holidays (``holiday_tables``). Prophet's own uncertainty
sampling is off: intervals are calibrated elsewhere, by conformal prediction. Fitting runs in
chunks of series on joblib's loky backend (``fit_chunk``); models come back from the workers as
pickled Prophet objects (under 1 ms each, against ~20 ms for a JSON round trip). Series built on
the same dates with the same settings and holidays share their training design matrix
(``SharedDesignProphet``), which Prophet would otherwise build once per fit.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from prophet import Prophet

from capacity_forecaster.core.vocabulary import SERIES_KEY
from capacity_forecaster.forecasting.models.prophet.holiday_tables import HOLIDAY_HORIZON_DAYS

SeriesKey = tuple[str, str]  # (server_id, metric)
_Mode = Literal["additive", "multiplicative"]

MIN_POINTS = 14  # fewer points than this: flat fallback
MIN_STD = 1e-9  # a series with a smaller standard deviation is constant: flat fallback
# Prophet's defaults are 10 yearly Fourier terms and 25 changepoints. On 240 synthetic 2-year
# series (two 90-day hold-outs) 6 and 15 cut fit CPU by ~20% (120 -> 96 ms mean per series)
# at no loss of accuracy (hold-out MAE 2.80 vs 2.89). 4 and 10 cut another 16 % (76 -> 64 ms
# CPU per series, pooled holidays) and forecast better on the accuracy benchmark (200 servers,
# 90-day holdout): Prophet MASE 3.183 against 3.218, median 1.177 against 1.190, CPU 0.764
# against 0.782. The rest is fixed per-fit overhead (the Stan process, its JSON data file).
YEARLY_FOURIER_ORDER = 4
N_CHANGEPOINTS = 10
FIT_ALGORITHMS = ("LBFGS", "BFGS", "Newton")  # tried in order when Stan stops abnormally
# Stan's (L-)BFGS stops when the relative gradient falls below this times machine epsilon
# (Stan's default 1e7). 1e9 costs 18 % less CPU per fit (0.089 s against 0.108 s median, 20
# servers x 3 metrics) and forecasts as well: Prophet's holdout MASE on the accuracy benchmark
# was 3.218 against 3.247 (median 1.190 against 1.188); forecasts moved by 0.14 points on
# average. 1e10 moved them 0.38 points, so it was not taken.
TOL_REL_GRAD = 1e9
# A fit takes 0.01-0.1 s. On the Bitbrains VMs one Stan optimisation once ran for 14 minutes
# without end; past this many seconds the series gets the flat fallback, with the reason,
# instead of stalling a scheduled run.
FIT_TIMEOUT_SECONDS = 30.0
MAX_CHUNK = 64  # series per joblib task: amortises process overhead, keeps progress smooth


@dataclass(frozen=True)
class FitSettings:
    """What a worker needs to build one Prophet (plain values, cheap to pickle)."""

    yearly_fourier_order: int
    n_changepoints: int


@dataclass(frozen=True)
class Series:
    """One series to fit: its key, sorted dates and values, holiday country and yearly flag."""

    server_id: str
    metric: str
    ds: np.ndarray
    y: np.ndarray
    country: str | None
    yearly: bool


def split_series(history: pd.DataFrame) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(server_id, metric, sorted dates, values) per series; non-finite values dropped."""
    missing = {*SERIES_KEY, "date", "value"} - set(history.columns)
    if missing:
        raise ValueError(f"history is missing column(s) {sorted(missing)}")
    frame = pd.DataFrame(
        {
            "server_id": history["server_id"].astype(str).to_numpy(dtype=object),
            "metric": history["metric"].astype(str).to_numpy(dtype=object),
            "date": pd.to_datetime(history["date"]).to_numpy(dtype="datetime64[ns]"),
            "value": pd.to_numeric(history["value"]).to_numpy(dtype=np.float64),
        }
    )
    frame = frame[np.isfinite(frame["value"].to_numpy())]
    if frame.empty:
        raise ValueError("history has no finite values to fit")
    duplicated = frame.duplicated([*SERIES_KEY, "date"])
    if duplicated.any():
        first = frame[duplicated].iloc[0]
        raise ValueError(
            f"history has {int(duplicated.sum())} duplicate (server_id, metric, date) rows, "
            f"e.g. {first['server_id']} {first['metric']} {first['date']:%Y-%m-%d}"
        )
    frame = frame.sort_values([*SERIES_KEY, "date"], kind="stable", ignore_index=True)
    sid = frame["server_id"].to_numpy()
    metric = frame["metric"].to_numpy()
    ds = frame["date"].to_numpy()
    y = frame["value"].to_numpy()
    starts = np.flatnonzero(np.r_[True, (sid[1:] != sid[:-1]) | (metric[1:] != metric[:-1])])
    ends = np.r_[starts[1:], len(frame)]
    return [(sid[a], metric[a], ds[a:b], y[a:b]) for a, b in zip(starts, ends, strict=True)]


def skip_reason(y: np.ndarray) -> str | None:
    """Why a series is left to the flat fallback (too few points, constant), or None."""
    if len(y) < MIN_POINTS:
        return f"fewer than {MIN_POINTS} points ({len(y)})"
    if float(np.std(y)) < MIN_STD:
        return f"constant (std < {MIN_STD:g})"
    return None


def chunks(items: list[Any], n_workers: int) -> list[list[Any]]:
    """About four tasks per worker (at most ``MAX_CHUNK`` items each) for load balance."""
    if not items:
        return []
    size = max(1, min(MAX_CHUNK, math.ceil(len(items) / (4 * n_workers))))
    return [items[i : i + size] for i in range(0, len(items), size)]


@contextlib.contextmanager
def quiet_stan() -> Iterator[None]:
    """Silence cmdstanpy and Prophet's INFO chatter; restores the loggers afterwards.

    Runs inside every worker (separate processes) as well as in-process when n_jobs=1.
    """
    stan, prophet = logging.getLogger("cmdstanpy"), logging.getLogger("prophet")
    saved = (stan.disabled, stan.level, prophet.level)
    stan.disabled = True
    stan.setLevel(logging.ERROR)
    prophet.setLevel(logging.WARNING)
    try:
        yield
    finally:
        stan.disabled = saved[0]
        stan.setLevel(saved[1])
        prophet.setLevel(saved[2])


class SharedDesignProphet(Prophet):
    """A Prophet whose fit can borrow its training design matrix from an identical earlier fit.

    ``Prophet.fit`` builds the seasonal and holiday features of its training dates
    (``make_all_seasonality_features``): 14 ms of a 53 ms fit, in pandas and a Python loop over
    the holiday rows. Series built with the same settings and holidays on the same dates get
    exactly the same matrix, so ``fit_chunk`` keeps one per ``design_key`` in
    ``shared_designs`` and lends copies to the other fits. Only the fit's call is shared
    (``train_holiday_names`` is still unset then); predicting builds its own, as Prophet does.
    A fitted one is saved and loaded back as a plain Prophet.
    """

    def __init__(
        self, *, shared_designs: dict[Hashable, Any] | None, design_key: Hashable, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.shared_designs = shared_designs
        self.design_key = design_key

    def make_all_seasonality_features(
        self, df: pd.DataFrame
    ) -> tuple[pd.DataFrame, list[float], pd.DataFrame, dict[_Mode, list[str]]]:
        shared = self.shared_designs
        if shared is None or self.train_holiday_names is not None:
            return super().make_all_seasonality_features(df)
        if self.design_key not in shared:
            design = super().make_all_seasonality_features(df)
            shared[self.design_key] = (design, self.train_holiday_names)
        (features, prior_scales, component_cols, modes), holiday_names = shared[self.design_key]
        # The fit's call also records the holiday names it saw; predicting relies on them.
        self.train_holiday_names = None if holiday_names is None else holiday_names.copy()
        # Copies, so that no fit can change what the next one borrows.
        return features.copy(), list(prior_scales), component_cols.copy(), copy.deepcopy(modes)


def fit_one(
    series: Series,
    holidays: pd.DataFrame,
    settings: FitSettings,
    shared_designs: dict[Hashable, Any] | None = None,
) -> Prophet:
    """Fit one Prophet; holidays are sliced to this series' span (plus the forecast horizon).

    Stan's L-BFGS occasionally stops on a failed line search (about 1 % of our fits). Prophet
    then falls back to Newton, which takes 1-3 s instead of 0.1 s; BFGS from the same start
    nearly always succeeds in ~0.1 s, so it is tried first and Newton only last.
    ``shared_designs`` (see ``SharedDesignProphet``) lets series on the same dates share
    their training design; the key is everything the design depends on here.
    """
    end = series.ds[-1] + np.timedelta64(HOLIDAY_HORIZON_DAYS, "D")
    ds = holidays["ds"].to_numpy()
    own = holidays[(ds >= series.ds[0]) & (ds <= end)].reset_index(drop=True)
    history = pd.DataFrame({"ds": series.ds, "y": series.y})
    design_key = (series.country, series.yearly, settings, series.ds.tobytes())
    for algorithm in FIT_ALGORITHMS:
        model = SharedDesignProphet(
            shared_designs=shared_designs,
            design_key=design_key,
            growth="linear",
            n_changepoints=settings.n_changepoints,
            # Yearly is added below as the same Fourier seasonality Prophet's built-in one uses
            # (period 365.25), which avoids its per-series warning for histories under two years.
            yearly_seasonality=False,
            weekly_seasonality=True,
            daily_seasonality=False,
            holidays=own if not own.empty else None,
            uncertainty_samples=0,
        )
        if series.yearly:
            model.add_seasonality(
                name="yearly", period=365.25, fourier_order=settings.yearly_fourier_order
            )
        if model.stan_backend is not None:  # None only when no Stan backend loaded at all
            model.stan_backend.set_options(newton_fallback=False)
        started = time.monotonic()
        try:
            tolerance = {"tol_rel_grad": TOL_REL_GRAD} if algorithm != "Newton" else {}
            # A TimeoutError is not retried with another algorithm: it would hang as long.
            model.fit(history, algorithm=algorithm, timeout=FIT_TIMEOUT_SECONDS, **tolerance)
            break
        except RuntimeError as error:
            # cmdstanpy's timer kills Stan before it flags the timeout, so a loaded machine can
            # report the kill as a failed optimisation: past the limit, it is the timeout.
            if time.monotonic() - started >= FIT_TIMEOUT_SECONDS:
                raise TimeoutError(f"Stan fit past {FIT_TIMEOUT_SECONDS:g} s") from error
            if algorithm == FIT_ALGORITHMS[-1]:
                raise
    # Only params, history and settings are needed to predict; the Stan handles and the
    # shared designs are not (and must not travel back with the model).
    model.stan_fit = None
    model.stan_backend = None
    model.shared_designs = model.design_key = None
    return model


def fit_chunk(
    chunk: list[Series], holidays: dict[str | None, pd.DataFrame], settings: FitSettings
) -> list[tuple[str, str, Prophet | None, str | None]]:
    """Worker task: fit a chunk of series; a failed fit returns its error text instead."""
    out: list[tuple[str, str, Prophet | None, str | None]] = []
    shared_designs: dict[Hashable, Any] = {}
    with quiet_stan():
        for series in chunk:
            try:
                model = fit_one(series, holidays[series.country], settings, shared_designs)
            except Exception as exc:  # one bad series must not sink the fleet: flat fallback
                out.append((series.server_id, series.metric, None, f"{type(exc).__name__}: {exc}"))
            else:
                out.append((series.server_id, series.metric, model, None))
    return out
