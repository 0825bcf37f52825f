"""Stage 04/05 Prophet model: one Prophet per series (server x metric), fitted in parallel.

Each series gets a linear-growth Prophet with weekly seasonality, yearly seasonality when its
history spans at least ``min_yearly_days`` calendar days, and two holidays: the public holidays
of its server's country (one holiday named ``public_holiday``) and the end-of-quarter window
(one named ``quarter_end``). Pooling the public holidays into one effect, rather than one per
holiday name, costs 14 % less CPU per fit (0.108 s against 0.126 s) and forecasts no worse:
on the accuracy benchmark Prophet's holdout MASE was 3.247 against 3.258 (median 1.188
against 1.208), as a holiday seen once or twice in two years gives a noisy effect of its own.
Prophet's own uncertainty sampling is off: intervals are calibrated elsewhere
by conformal prediction, so only ``yhat`` is produced, clipped to [0, 100] percent.

Explicit fallback: a series with fewer than ``MIN_POINTS`` points, a constant series, or one
whose fit raises is not modelled; it is listed in ``skipped`` with the reason and ``predict``
returns its last observed value on every date (flat), so every series still gets rows.

Fitting runs in chunks of series on joblib's loky backend. Models come back from the workers
as pickled Prophet objects (under 1 ms each, against ~20 ms for a JSON round trip); ``to_bytes`` writes
gzip-compressed JSON lines and ``from_bytes`` keeps each model as its JSON text until the
first ``predict``, which decodes it in the workers. Fitting and predicting build the seasonal
and holiday design matrix once per group of series that share it (``_SharedDesignProphet`` in
each worker's chunk, ``_predict_many``) instead of once per model, as Prophet would. No file
I/O here: bytes in, bytes out.
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import json
import logging
import math
import time
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import joblib
import numpy as np
import pandas as pd
from prophet import Prophet
from prophet.serialize import model_from_json, model_to_json
from tqdm.auto import tqdm

from capacity_forecaster.core.calendar import country_for_region, holiday_table, quarter_end_window
from capacity_forecaster.core.workers import process_pool

logger = logging.getLogger(__name__)

SeriesKey = tuple[str, str]  # (server_id, metric)

MIN_POINTS = 14  # fewer points than this: flat fallback
MIN_STD = 1e-9  # a series with a smaller standard deviation is constant: flat fallback
HOLIDAY_HORIZON_DAYS = 400  # holidays are listed this far past a series' end (covers forecasts)
QUARTER_END_HOLIDAY = "quarter_end"
PUBLIC_HOLIDAY = "public_holiday"
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
_MAX_CHUNK = 64  # series per joblib task: amortises process overhead, keeps progress smooth
_MIN_PARALLEL_DECODE = 48  # below this many models, decoding in-process is faster
_FORMAT = "capacity_forecaster.prophet"
_FORMAT_VERSION = 1
_OUTPUT_COLUMNS = ["server_id", "metric", "date", "yhat"]


@dataclass(frozen=True)
class _FitSettings:
    """What a worker needs to build one Prophet (plain values, cheap to pickle)."""

    yearly_fourier_order: int
    n_changepoints: int


@dataclass(frozen=True)
class _Series:
    """One series to fit: its key, sorted dates and values, holiday country and yearly flag."""

    server_id: str
    metric: str
    ds: np.ndarray
    y: np.ndarray
    country: str | None
    yearly: bool


class ProphetModel:
    """One Prophet per (server_id, metric), fitted in parallel; predictions clipped to [0, 100]."""

    name = "prophet"

    def __init__(
        self,
        *,
        n_jobs: int = -1,
        quarter_end_business_days: int = 5,
        min_yearly_days: int = 365,
        progress: bool = True,
    ) -> None:
        """Settings only; nothing is fitted until ``fit``.

        ``n_jobs``: joblib workers (-1: all cores). ``quarter_end_business_days``: length of the
        end-of-quarter holiday window. ``min_yearly_days``: calendar days of history (first to
        last date, inclusive) a series needs for yearly seasonality. ``progress``: tqdm bar.
        """
        if n_jobs == 0:
            raise ValueError("n_jobs must be -1 (all cores) or a positive number of workers")
        if quarter_end_business_days < 1:
            raise ValueError(
                f"quarter_end_business_days must be at least 1, got {quarter_end_business_days}"
            )
        if min_yearly_days < 1:
            raise ValueError(f"min_yearly_days must be at least 1, got {min_yearly_days}")
        self.n_jobs = n_jobs
        self.quarter_end_business_days = quarter_end_business_days
        self.min_yearly_days = min_yearly_days
        self.progress = progress
        # Fitted state: a Prophet object, or its JSON text after from_bytes (decoded on predict).
        self._models: dict[SeriesKey, Prophet | str] = {}
        self._fallback: dict[SeriesKey, float] = {}  # last observed value of skipped series
        self._skipped: list[tuple[str, str, str]] = []
        self._yearly_off: list[SeriesKey] = []
        self._fit_settings = _FitSettings(YEARLY_FOURIER_ORDER, N_CHANGEPOINTS)
        self._fitted = False

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
            model = _decode(model)
            self._models[key] = model
        return model

    # ------------------------------------------------------------------ fit

    def fit(self, history: pd.DataFrame, servers: pd.DataFrame) -> ProphetModel:
        """Fit one Prophet per (server_id, metric) of ``history``; returns self.

        ``history``: long frame with server_id, metric, date (daily), value (percent); other
        columns are ignored, absent dates are fine, non-finite values are treated as absent.
        ``servers``: server_id, region and optionally country (ISO code), for public holidays.
        Series under ``MIN_POINTS`` points or constant are skipped (flat fallback); yearly
        seasonality needs ``min_yearly_days`` of history. Each series is fitted on its own
        data only, so the result does not depend on the other series in ``history``.
        """
        started = time.perf_counter()
        series = _split_series(history)
        countries = _series_countries(servers, sorted({s[0] for s in series}))
        self._models, self._fallback, self._skipped, self._yearly_off = {}, {}, [], []
        self._fitted = False

        to_fit: list[_Series] = []
        for server_id, metric, ds, y in series:
            reason = _skip_reason(y)
            if reason is not None:
                self._skip(server_id, metric, reason, float(y[-1]))
                continue
            span_days = int((ds[-1] - ds[0]) // np.timedelta64(1, "D")) + 1
            yearly = span_days >= self.min_yearly_days
            if not yearly:
                self._yearly_off.append((server_id, metric))
            to_fit.append(_Series(server_id, metric, ds, y, countries[server_id], yearly))

        frames = (
            self._holiday_frames(
                {s.country for s in to_fit},
                min(s.ds[0] for s in to_fit),
                max(s.ds[-1] for s in to_fit),
            )
            if to_fit
            else {}
        )
        settings = self._fit_settings = _FitSettings(YEARLY_FOURIER_ORDER, N_CHANGEPOINTS)
        last_values = {(s.server_id, s.metric): float(s.y[-1]) for s in to_fit}
        n_workers = self._workers(len(to_fit))
        # Series that can share a training design (same country, yearly flag and dates) go to
        # the same chunks, where _fit_chunk builds that design once.
        to_fit.sort(key=lambda s: (s.country or "", s.yearly, s.ds[0], len(s.ds), s.ds[-1]))
        chunks = _chunks(to_fit, n_workers)
        calls = (
            joblib.delayed(_fit_chunk)(
                chunk, {s.country: frames[s.country] for s in chunk}, settings
            )
            for chunk in chunks
        )
        with tqdm(
            total=len(to_fit),
            desc="prophet fit",
            unit="series",
            leave=False,
            disable=not self.progress,
        ) as bar:
            parallel = process_pool(n_workers, return_as="generator_unordered")
            for results in parallel(calls):
                for server_id, metric, model, error in results:
                    if model is not None:
                        self._models[(server_id, metric)] = model
                    else:
                        reason = f"fit failed: {error}"
                        self._skip(server_id, metric, reason, last_values[(server_id, metric)])
                bar.update(len(results))

        failed = {(sid, m) for sid, m, reason in self._skipped if reason.startswith("fit failed")}
        self._yearly_off = sorted(set(self._yearly_off) - failed)
        self._skipped.sort()
        self._fitted = True
        self._log_fit(len(series), n_workers, time.perf_counter() - started, len(failed))
        return self

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
            return _empty_predictions(index.dtype)

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

    # ------------------------------------------------------------------ bytes

    def to_bytes(self) -> bytes:
        """All fitted series as gzip-compressed JSON lines (a header line, then one per series).

        The header holds the settings, the skipped series with their reasons and fallback
        values, and the yearly-off list; each further line is
        ``{"server_id", "metric", "model": prophet.serialize.model_to_json(m)}``.
        """
        self._check_fitted()
        header = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "settings": self._settings(),
            "fit_settings": asdict(self._fit_settings),
            "skipped": [
                {"server_id": s, "metric": m, "reason": r, "last_value": self._fallback[(s, m)]}
                for s, m, r in self._skipped
            ],
            "yearly_off": [list(key) for key in self._yearly_off],
        }
        lines = [json.dumps(header)]
        for (server_id, metric), model in sorted(self._models.items()):
            text = model if isinstance(model, str) else model_to_json(model)
            lines.append(json.dumps({"server_id": server_id, "metric": metric, "model": text}))
        # mtime=0: the same models give the same bytes (stable checksums in the manifest).
        return gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), compresslevel=6, mtime=0)

    @classmethod
    def from_bytes(cls, data: bytes) -> ProphetModel:
        """Rebuild a model written by ``to_bytes``; models are decoded lazily on first use."""
        try:
            lines = gzip.decompress(data).decode("utf-8").splitlines()
            header = json.loads(lines[0])
        except (OSError, EOFError, UnicodeDecodeError, IndexError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a saved ProphetModel (gzip JSON lines): {exc}") from None
        if header.get("format") != _FORMAT or header.get("version") != _FORMAT_VERSION:
            raise ValueError(
                f"not a saved ProphetModel: format {header.get('format')!r} "
                f"version {header.get('version')!r}, expected {_FORMAT!r} {_FORMAT_VERSION}"
            )
        model = cls(**header["settings"])
        model._fit_settings = _FitSettings(**header["fit_settings"])
        for entry in header["skipped"]:
            key = (entry["server_id"], entry["metric"])
            model._skipped.append((*key, entry["reason"]))
            model._fallback[key] = float(entry["last_value"])
        model._yearly_off = [(s, m) for s, m in header["yearly_off"]]
        for line in lines[1:]:
            if line:
                entry = json.loads(line)
                model._models[(entry["server_id"], entry["metric"])] = entry["model"]
        model._fitted = True
        return model

    # ------------------------------------------------------------------ helpers

    def _settings(self) -> dict[str, Any]:
        return {
            "n_jobs": self.n_jobs,
            "quarter_end_business_days": self.quarter_end_business_days,
            "min_yearly_days": self.min_yearly_days,
            "progress": self.progress,
        }

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise RuntimeError("ProphetModel is not fitted: call fit() or from_bytes() first")

    def _skip(self, server_id: str, metric: str, reason: str, last_value: float) -> None:
        self._skipped.append((server_id, metric, reason))
        self._fallback[(server_id, metric)] = last_value

    def _workers(self, n_tasks: int) -> int:
        return max(1, min(joblib.effective_n_jobs(self.n_jobs), n_tasks))

    def _holiday_frames(
        self, countries: set[str | None], first: np.datetime64, last: np.datetime64
    ) -> dict[str | None, pd.DataFrame]:
        """One holidays frame (ds, holiday) per country, built once per fit.

        Public holidays (as ``public_holiday``) plus the ``quarter_end`` window, from the earliest
        history date to ``HOLIDAY_HORIZON_DAYS`` past the latest; each series later takes its
        own slice.
        """
        start = pd.Timestamp(first).normalize()
        end = pd.Timestamp(last).normalize() + pd.Timedelta(days=HOLIDAY_HORIZON_DAYS)
        days = pd.date_range(start, end, freq="D")
        quarter_end = pd.DataFrame(
            {
                "ds": days[quarter_end_window(days, self.quarter_end_business_days)],
                "holiday": QUARTER_END_HOLIDAY,
            }
        )
        frames: dict[str | None, pd.DataFrame] = {}
        without_calendar = []
        for country in sorted(countries, key=lambda c: c or ""):
            parts = [quarter_end]
            if country is not None:
                table = holiday_table([country], start, end)
                if table.empty:
                    without_calendar.append(country)
                else:
                    parts.append(pd.DataFrame({"ds": table["date"], "holiday": PUBLIC_HOLIDAY}))
            frame = pd.concat(parts, ignore_index=True).drop_duplicates(["ds", "holiday"])
            frame["ds"] = pd.to_datetime(frame["ds"]).astype("datetime64[ns]")
            frame["holiday"] = frame["holiday"].astype(str)
            frames[country] = frame.sort_values(["ds", "holiday"], ignore_index=True)
        if without_calendar:
            logger.warning(
                "prophet: no public holidays found for countries %s: quarter-end window only",
                ", ".join(without_calendar),
            )
        return frames

    def _predict_models(self, index: pd.DatetimeIndex) -> dict[SeriesKey, np.ndarray]:
        """Clipped yhat per fitted series, in-process (``_predict_many`` is ~1 ms a model).

        Models that ``from_bytes`` left as JSON text are decoded first (~12 ms each), in
        parallel when there are enough of them to pay for the workers, and cached.
        """
        self._decode_pending()
        with _quiet_stan():
            yhat = _predict_many(sorted(self._models.items()), index)  # type: ignore[arg-type]
        return {key: np.clip(values, 0.0, 100.0) for key, values in yhat.items()}

    def _decode_pending(self) -> None:
        pending = sorted((key, text) for key, text in self._models.items() if isinstance(text, str))
        if not pending:
            return
        n_workers = self._workers(len(pending)) if len(pending) >= _MIN_PARALLEL_DECODE else 1
        parallel = process_pool(n_workers, return_as="generator_unordered")
        calls = (joblib.delayed(_decode_chunk)(chunk) for chunk in _chunks(pending, n_workers))
        with tqdm(
            total=len(pending),
            desc="prophet load",
            unit="series",
            leave=False,
            disable=not self.progress,
        ) as bar:
            for results in parallel(calls):
                self._models.update(results)
                bar.update(len(results))

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


# ---------------------------------------------------------------------- module helpers


def _split_series(history: pd.DataFrame) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(server_id, metric, sorted dates, values) per series; non-finite values dropped."""
    missing = {"server_id", "metric", "date", "value"} - set(history.columns)
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
    duplicated = frame.duplicated(["server_id", "metric", "date"])
    if duplicated.any():
        first = frame[duplicated].iloc[0]
        raise ValueError(
            f"history has {int(duplicated.sum())} duplicate (server_id, metric, date) rows, "
            f"e.g. {first['server_id']} {first['metric']} {first['date']:%Y-%m-%d}"
        )
    frame = frame.sort_values(["server_id", "metric", "date"], kind="stable", ignore_index=True)
    sid = frame["server_id"].to_numpy()
    metric = frame["metric"].to_numpy()
    ds = frame["date"].to_numpy()
    y = frame["value"].to_numpy()
    starts = np.flatnonzero(np.r_[True, (sid[1:] != sid[:-1]) | (metric[1:] != metric[:-1])])
    ends = np.r_[starts[1:], len(frame)]
    return [(sid[a], metric[a], ds[a:b], y[a:b]) for a, b in zip(starts, ends, strict=True)]


def _series_countries(servers: pd.DataFrame, server_ids: Sequence[str]) -> dict[str, str | None]:
    """Holiday country per server: its ``country`` when set, else the one of its region."""
    if "server_id" not in servers.columns:
        raise ValueError("servers is missing column 'server_id'")
    if "region" not in servers.columns and "country" not in servers.columns:
        raise ValueError("servers needs a 'region' or a 'country' column")
    ids = servers["server_id"].astype(str).to_numpy()
    given = (
        servers["country"] if "country" in servers.columns else pd.Series(None, index=servers.index)
    )
    regions = (
        servers["region"] if "region" in servers.columns else pd.Series(None, index=servers.index)
    )
    by_server: dict[str, str | None] = {}
    for server_id, country, region in zip(ids, given, regions, strict=True):
        if country is None or pd.isna(country) or not str(country).strip():
            country = None if region is None or pd.isna(region) else country_for_region(region)
        by_server.setdefault(server_id, None if country is None else str(country).strip().upper())
    unknown = [s for s in server_ids if s not in by_server]
    countries = {s: by_server.get(s) for s in server_ids}
    if unknown:
        logger.warning(
            "prophet: %d server(s) missing from the servers frame (no public holidays), e.g. %s",
            len(unknown),
            ", ".join(unknown[:5]),
        )
    no_country = [s for s, c in countries.items() if c is None and s not in set(unknown)]
    if no_country:
        logger.info(
            "prophet: no holiday country for %d server(s) (unknown region), e.g. %s: "
            "quarter-end window only",
            len(no_country),
            ", ".join(no_country[:5]),
        )
    return countries


def _skip_reason(y: np.ndarray) -> str | None:
    if len(y) < MIN_POINTS:
        return f"fewer than {MIN_POINTS} points ({len(y)})"
    if float(np.std(y)) < MIN_STD:
        return f"constant (std < {MIN_STD:g})"
    return None


def _chunks(items: list[Any], n_workers: int) -> list[list[Any]]:
    """About four tasks per worker (at most ``_MAX_CHUNK`` items each) for load balance."""
    if not items:
        return []
    size = max(1, min(_MAX_CHUNK, math.ceil(len(items) / (4 * n_workers))))
    return [items[i : i + size] for i in range(0, len(items), size)]


def _empty_predictions(date_dtype: Any) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "server_id": pd.Series(dtype=object),
            "metric": pd.Series(dtype=object),
            "date": pd.Series(dtype=date_dtype),
            "yhat": pd.Series(dtype=np.float64),
        }
    )[_OUTPUT_COLUMNS]


@contextlib.contextmanager
def _quiet_stan() -> Iterator[None]:
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


class _SharedDesignProphet(Prophet):
    """A Prophet whose fit can borrow its training design matrix from an identical earlier fit.

    ``Prophet.fit`` builds the seasonal and holiday features of its training dates
    (``make_all_seasonality_features``): 14 ms of a 53 ms fit, in pandas and a Python loop over
    the holiday rows. Series built with the same settings and holidays on the same dates get
    exactly the same matrix, so ``_fit_chunk`` keeps one per ``design_key`` in
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
    ) -> tuple[pd.DataFrame, list[float], pd.DataFrame, dict[str, list[str]]]:
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


def _fit_one(
    series: _Series,
    holidays: pd.DataFrame,
    settings: _FitSettings,
    shared_designs: dict[Hashable, Any] | None = None,
) -> Prophet:
    """Fit one Prophet; holidays are sliced to this series' span (plus the forecast horizon).

    Stan's L-BFGS occasionally stops on a failed line search (about 1 % of our fits). Prophet
    then falls back to Newton, which takes 1-3 s instead of 0.1 s; BFGS from the same start
    nearly always succeeds in ~0.1 s, so it is tried first and Newton only last.
    ``shared_designs`` (see ``_SharedDesignProphet``) lets series on the same dates share
    their training design; the key is everything the design depends on here.
    """
    end = series.ds[-1] + np.timedelta64(HOLIDAY_HORIZON_DAYS, "D")
    ds = holidays["ds"].to_numpy()
    own = holidays[(ds >= series.ds[0]) & (ds <= end)].reset_index(drop=True)
    history = pd.DataFrame({"ds": series.ds, "y": series.y})
    design_key = (series.country, series.yearly, settings, series.ds.tobytes())
    for algorithm in FIT_ALGORITHMS:
        model = _SharedDesignProphet(
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
        model.stan_backend.set_options(newton_fallback=False)
        try:
            tolerance = {"tol_rel_grad": TOL_REL_GRAD} if algorithm != "Newton" else {}
            model.fit(history, algorithm=algorithm, **tolerance)
            break
        except RuntimeError:
            if algorithm == FIT_ALGORITHMS[-1]:
                raise
    # Only params, history and settings are needed to predict; the Stan handles and the
    # shared designs are not (and must not travel back with the model).
    model.stan_fit = None
    model.stan_backend = None
    model.shared_designs = model.design_key = None
    return model


def _fit_chunk(
    chunk: list[_Series], holidays: dict[str | None, pd.DataFrame], settings: _FitSettings
) -> list[tuple[str, str, Prophet | None, str | None]]:
    """Worker task: fit a chunk of series; a failed fit returns its error text instead."""
    out: list[tuple[str, str, Prophet | None, str | None]] = []
    shared_designs: dict[Hashable, Any] = {}
    with _quiet_stan():
        for series in chunk:
            try:
                model = _fit_one(series, holidays[series.country], settings, shared_designs)
            except Exception as exc:  # one bad series must not sink the fleet: flat fallback
                out.append((series.server_id, series.metric, None, f"{type(exc).__name__}: {exc}"))
            else:
                out.append((series.server_id, series.metric, model, None))
    return out


def _decode(text: str) -> Prophet:
    model = model_from_json(text)
    model.stan_backend = None
    return model


def _decode_chunk(items: list[tuple[SeriesKey, str]]) -> list[tuple[SeriesKey, Prophet]]:
    """Worker task: Prophet models back from their JSON text."""
    with _quiet_stan():
        return [(key, _decode(text)) for key, text in items]


def _predict_many(
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
            for key, prophet in members:
                out[key] = prophet.predict(future)["yhat"].to_numpy(dtype=np.float64)
            continue
        out[first_key] = reference
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
