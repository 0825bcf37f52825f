"""``ProphetModel``: one Prophet per series (server x metric), fitted in parallel.

The model plans which series to fit (``fitting``), hands them to the workers in chunks, keeps
the flat fallback of the series it does not fit, predicts all of them (``predicting``) and
gives its state to ``persistence`` as Prophet's own JSON per series.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from typing import Any, Self

import joblib
import numpy as np
import pandas as pd
from prophet import Prophet
from prophet.serialize import model_to_json
from tqdm.auto import tqdm

from capacity_forecaster.core.calendar import YEARLY_CYCLE_DAYS
from capacity_forecaster.core.params_calendar import CalendarParams
from capacity_forecaster.core.workers import process_pool, worker_count
from capacity_forecaster.forecasting.models.base import ForecastModel
from capacity_forecaster.forecasting.models.prophet import fitting, holiday_tables, predicting
from capacity_forecaster.forecasting.models.prophet.fitting import (
    N_CHANGEPOINTS,
    YEARLY_FOURIER_ORDER,
    FitSettings,
    Series,
    SeriesKey,
)

logger = logging.getLogger(__name__)


class ProphetModel(ForecastModel):
    """One Prophet per (server_id, metric), fitted in parallel; predictions clipped to [0, 100]."""

    name = "prophet"
    # 2: the business calendar (its windows as holidays) replaced the quarter-end length.
    state_version = 2

    def __init__(
        self,
        *,
        n_jobs: int = -1,
        calendar: CalendarParams | None = None,
        min_yearly_days: int = YEARLY_CYCLE_DAYS,
        progress: bool = True,
    ) -> None:
        """Settings only; nothing is fitted until ``fit``.

        ``n_jobs``: joblib workers (-1: all cores). ``calendar``: the business calendar, one
        holiday per window (default: ``CalendarParams()``). ``min_yearly_days``: calendar days
        of history (first to last date, inclusive) a series needs for yearly seasonality.
        ``progress``: tqdm bar.
        """
        super().__init__()
        if n_jobs == 0:
            raise ValueError("n_jobs must be -1 (all cores) or a positive number of workers")
        if min_yearly_days < 1:
            raise ValueError(f"min_yearly_days must be at least 1, got {min_yearly_days}")
        self.calendar = CalendarParams() if calendar is None else calendar
        self.n_jobs = n_jobs
        self.min_yearly_days = min_yearly_days
        self.progress = progress
        # Fitted state: a Prophet object, or its JSON text after loading (decoded on predict).
        self._models: dict[SeriesKey, Prophet | str] = {}
        self._fallback: dict[SeriesKey, float] = {}  # last observed value of skipped series
        self._skipped: list[tuple[str, str, str]] = []
        self._yearly_off: list[SeriesKey] = []
        self._fit_settings = FitSettings(YEARLY_FOURIER_ORDER, N_CHANGEPOINTS)
        self._fitted = False

    @classmethod
    def from_settings(cls, *, calendar: CalendarParams, n_jobs: int, seed: int) -> Self:
        return cls(n_jobs=n_jobs, calendar=calendar)

    # ------------------------------------------------------------------ properties

    @property
    def fitted_series(self) -> list[SeriesKey]:
        """(server_id, metric) of every series with a fitted Prophet, sorted."""
        return sorted(self._models)

    @property
    def yearly_off(self) -> list[SeriesKey]:
        """(server_id, metric) fitted without yearly seasonality (history too short), sorted."""
        return list(self._yearly_off)

    @property
    def skipped(self) -> list[tuple[str, str, str]]:
        """(server_id, metric, reason) of series not fitted; predict returns their last value."""
        return list(self._skipped)

    def prophet_for(self, server_id: str, metric: str) -> Prophet:
        """The fitted Prophet of one series (for plots and inspection)."""
        self._check_fitted()
        key = (str(server_id), str(metric))
        if key not in self._models:
            raise KeyError(f"no fitted Prophet for series {key} (skipped or unknown)")
        model = self._models[key]
        if isinstance(model, str):
            model = predicting.decode(model)
            self._models[key] = model
        return model

    # ------------------------------------------------------------------ fit

    def _fit(self, history: pd.DataFrame, servers: pd.DataFrame, horizon_days: int) -> None:
        """Fit one Prophet per (server_id, metric) of ``history``.

        ``history``: long frame with server_id, metric, date (daily), value (percent); other
        columns are ignored, absent dates are fine, non-finite values are treated as absent.
        ``servers``: server_id, region and optionally country (ISO code), for public holidays.
        Series under ``fitting.MIN_POINTS`` points or constant are skipped (flat fallback);
        yearly seasonality needs ``min_yearly_days`` of history. Each series is fitted on its
        own data only, so the result does not depend on the other series in ``history``. The
        fit does not depend on the horizon: holidays are listed
        ``holiday_tables.HOLIDAY_HORIZON_DAYS`` past each series' end, beyond any horizon.
        """
        started = time.perf_counter()
        series = fitting.split_series(history)
        countries = holiday_tables.series_countries(servers, sorted({s[0] for s in series}))
        self._models, self._fallback, self._skipped, self._yearly_off = {}, {}, [], []
        self._fitted = False
        to_fit = self._plan(series, countries)
        n_workers = self._workers(len(to_fit))
        self._fit_parallel(to_fit, n_workers)
        failed = {(sid, m) for sid, m, reason in self._skipped if reason.startswith("fit failed")}
        self._yearly_off = sorted(set(self._yearly_off) - failed)
        self._skipped.sort()
        self._fitted = True
        self._log_fit(len(series), n_workers, time.perf_counter() - started, len(failed))

    def _plan(
        self,
        series: list[tuple[str, str, np.ndarray, np.ndarray]],
        countries: dict[str, str | None],
    ) -> list[Series]:
        """The series to fit, with their country and yearly flag; the others are skipped."""
        to_fit: list[Series] = []
        for server_id, metric, ds, y in series:
            reason = fitting.skip_reason(y)
            if reason is not None:
                self._skip(server_id, metric, reason, float(y[-1]))
                continue
            span_days = int((ds[-1] - ds[0]) // np.timedelta64(1, "D")) + 1
            yearly = span_days >= self.min_yearly_days
            if not yearly:
                self._yearly_off.append((server_id, metric))
            to_fit.append(Series(server_id, metric, ds, y, countries[server_id], yearly))
        return to_fit

    def _fit_parallel(self, to_fit: list[Series], n_workers: int) -> None:
        """Fit ``to_fit`` in chunks on ``n_workers`` processes; a failed fit is skipped."""
        frames = (
            holiday_tables.holiday_frames(
                {s.country for s in to_fit},
                min(s.ds[0] for s in to_fit),
                max(s.ds[-1] for s in to_fit),
                self.calendar,
            )
            if to_fit
            else {}
        )
        settings = self._fit_settings = FitSettings(YEARLY_FOURIER_ORDER, N_CHANGEPOINTS)
        last_values = {(s.server_id, s.metric): float(s.y[-1]) for s in to_fit}
        # Series that can share a training design (same country, yearly flag and dates) go to
        # the same chunks, where fit_chunk builds that design once.
        to_fit.sort(key=lambda s: (s.country or "", s.yearly, s.ds[0], len(s.ds), s.ds[-1]))
        calls = (
            joblib.delayed(fitting.fit_chunk)(
                chunk, {s.country: frames[s.country] for s in chunk}, settings
            )
            for chunk in fitting.chunks(to_fit, n_workers)
        )
        with self._progress(len(to_fit), "prophet fit") as bar:
            parallel = process_pool(n_workers, return_as="generator_unordered")
            done = 0
            for results in parallel(calls):
                for server_id, metric, model, error in results:
                    if model is not None:
                        self._models[(server_id, metric)] = model
                    else:
                        reason = f"fit failed: {error}"
                        self._skip(server_id, metric, reason, last_values[(server_id, metric)])
                bar.update(len(results))
                done += len(results)
                logger.info("prophet: %d/%d series fitted", done, len(to_fit))

    # ------------------------------------------------------------------ predict

    def predict(self, dates: pd.DatetimeIndex) -> pd.DataFrame:
        """``yhat`` for every series on ``dates`` (sorted, de-duplicated), clipped to [0, 100].

        Returns server_id, metric, date, yhat sorted by server_id, metric, date. Skipped series
        get their last observed value on every date (the explicit flat fallback).
        """
        self._check_fitted()
        index = pd.DatetimeIndex(dates)
        if index.tz is not None:
            raise ValueError("dates must be timezone-naive (daily dates, like the history)")
        if index.hasnans:
            raise ValueError("dates contain NaT")
        index = index.unique().sort_values()
        keys = sorted(set(self._models) | set(self._fallback))
        if len(index) == 0 or not keys:
            return predicting.empty_predictions(index.dtype)

        yhat = self._predict_models(index)
        n = len(index)
        values = [
            yhat[key] if key in yhat else np.full(n, np.clip(self._fallback[key], 0.0, 100.0))
            for key in keys
        ]
        return pd.DataFrame(
            {
                "server_id": np.repeat(np.array([k[0] for k in keys], dtype=object), n),
                "metric": np.repeat(np.array([k[1] for k in keys], dtype=object), n),
                "date": np.tile(index.to_numpy(), len(keys)),
                "yhat": np.concatenate(values).astype(np.float64),
            }
        )

    def _predict_models(self, index: pd.DatetimeIndex) -> dict[SeriesKey, np.ndarray]:
        """Clipped yhat per fitted series, in-process (``predict_many`` is ~1 ms a model).

        Models still held as JSON text (loaded, not yet used) are decoded first (~12 ms each),
        in parallel when there are enough of them to pay for the workers, and cached.
        """
        self._decode_pending()
        fitted = {key: model for key, model in self._models.items() if isinstance(model, Prophet)}
        with fitting.quiet_stan():
            yhat = predicting.predict_many(sorted(fitted.items()), index)
        return {key: np.clip(values, 0.0, 100.0) for key, values in yhat.items()}

    def _decode_pending(self) -> None:
        pending = sorted((key, text) for key, text in self._models.items() if isinstance(text, str))
        if not pending:
            return
        enough = len(pending) >= predicting.MIN_PARALLEL_DECODE
        n_workers = self._workers(len(pending)) if enough else 1
        parallel = process_pool(n_workers, return_as="generator_unordered")
        calls = (
            joblib.delayed(predicting.decode_chunk)(chunk)
            for chunk in fitting.chunks(pending, n_workers)
        )
        with self._progress(len(pending), "prophet load") as bar:
            for results in parallel(calls):
                self._models.update(results)
                bar.update(len(results))

    # ------------------------------------------------------------------ saved state

    def to_state(self) -> dict[str, Any]:
        """Settings, skipped series (with reasons and fallback values), the yearly-off list and
        each fitted series as ``prophet.serialize.model_to_json`` text."""
        self._check_fitted()
        return {
            "settings": self._settings(),
            "fit_settings": asdict(self._fit_settings),
            "skipped": [
                {"server_id": s, "metric": m, "reason": r, "last_value": self._fallback[(s, m)]}
                for s, m, r in self._skipped
            ],
            "yearly_off": [list(key) for key in self._yearly_off],
            "series": [
                {
                    "server_id": server_id,
                    "metric": metric,
                    "model": model if isinstance(model, str) else model_to_json(model),
                }
                for (server_id, metric), model in sorted(self._models.items())
            ],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        """A model back from ``to_state``; each Prophet is decoded on first use."""
        settings = state["settings"]
        model = cls(**{**settings, "calendar": CalendarParams.model_validate(settings["calendar"])})
        model._fit_settings = FitSettings(**state["fit_settings"])
        for entry in state["skipped"]:
            key = (entry["server_id"], entry["metric"])
            model._skipped.append((*key, entry["reason"]))
            model._fallback[key] = float(entry["last_value"])
        model._yearly_off = [(s, m) for s, m in state["yearly_off"]]
        for entry in state["series"]:
            model._models[(entry["server_id"], entry["metric"])] = entry["model"]
        model._fitted = True
        return model

    # ------------------------------------------------------------------ helpers

    def _settings(self) -> dict[str, Any]:
        return {
            "n_jobs": self.n_jobs,
            "calendar": self.calendar.model_dump(mode="json"),
            "min_yearly_days": self.min_yearly_days,
            "progress": self.progress,
        }

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise RuntimeError("ProphetModel is not fitted: call fit() or load_model() first")

    def _skip(self, server_id: str, metric: str, reason: str, last_value: float) -> None:
        self._skipped.append((server_id, metric, reason))
        self._fallback[(server_id, metric)] = last_value

    def _workers(self, n_tasks: int) -> int:
        return max(1, min(worker_count(self.n_jobs), n_tasks))

    def _progress(self, total: int, desc: str) -> tqdm:
        return tqdm(total=total, desc=desc, unit="series", leave=False, disable=not self.progress)

    def _log_fit(self, n_series: int, n_workers: int, seconds: float, n_failed: int) -> None:
        logger.info(
            "prophet: fitted %d of %d series in %.1f s with %d worker(s); %d skipped (flat fallback)",
            len(self._models),
            n_series,
            seconds,
            n_workers,
            len(self._skipped),
        )
        if self._yearly_off:
            logger.info(
                "prophet: yearly seasonality off for %d series: history shorter than %d days",
                len(self._yearly_off),
                self.min_yearly_days,
            )
        if n_failed:
            logger.warning(
                "prophet: %d series failed to fit and fall back to their last value, e.g. %s",
                n_failed,
                next(s for s in self._skipped if s[2].startswith("fit failed")),
            )
