"""The peers the issue's accuracy targets were set against, run on the benchmark's own holdout.

Stage 04's issue quotes peers measured on *another* synthetic fleet: Prophet with its defaults
(MASE 1.25, its own 80 % interval covering 0.60), statsforecast's AutoTheta (0.96) and the
seasonal-naive baseline (1.38). Those figures say little about our fleet, whose disks and
memory drop at times no model can know; these peers, fitted on exactly the training days our
models see and scored on the same holdout with the same MASE scale, say how hard it is:

- ``auto_theta`` and ``auto_ets``: statsforecast's AutoTheta and AutoETS, weekly season;
- ``prophet_default``: ``Prophet(interval_width=level)`` with everything else at its defaults
  (no holidays, no quarter-end window, its own sampled interval).

Each keeps its own interval at the benchmark's level (none is calibrated: that is the point of
comparing). Forecasts and intervals are clipped to 0-100 %, as ours are. statsforecast needs a
gap-free series, so the gaps the ETL left (outages longer than ``features.impute_limit_days``)
are filled by linear interpolation for it; Prophet takes the series as it is.

statsforecast needs pandas < 3: ``make peers`` installs the ``peers`` extra in a venv of its own.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

SERIES = ["server_id", "metric"]
COLUMNS = [*SERIES, "date", "model", "yhat", "yhat_lower", "yhat_upper"]


def check_installed() -> None:
    """Stop with the fix before any work when statsforecast is missing."""
    try:
        import statsforecast  # noqa: F401
    except ImportError as exc:
        raise SystemExit(
            "--peers needs statsforecast, which needs pandas < 3: run `make peers` "
            "(it installs the `peers` extra in .venv-peers)"
        ) from exc


PEER_NAMES = ("auto_theta", "auto_ets", "prophet_default")


def peer_forecasts(
    train: pd.DataFrame,
    dates: pd.DatetimeIndex,
    level: float,
    n_jobs: int,
    names: tuple[str, ...] = PEER_NAMES,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Each peer of ``names``: its forecast and own interval for each series of ``train``
    (long: server_id, metric, date, value) on ``dates`` (the days after its last day); and
    fit-and-predict seconds per model."""
    gap_free = _gap_free(train, dates[0] - pd.Timedelta(days=1))
    frames, seconds = [], {}
    for name in names:
        started = time.perf_counter()
        if name == "prophet_default":
            frames.append(_prophet_default(name, train, dates, level, n_jobs))
        else:
            frames.append(_statsforecast(name, gap_free, len(dates), level, n_jobs))
        seconds[name] = time.perf_counter() - started
    result = pd.concat(frames, ignore_index=True)
    for column in ("yhat", "yhat_lower", "yhat_upper"):
        result[column] = result[column].clip(0.0, 100.0)
    return result[COLUMNS], seconds


def _gap_free(train: pd.DataFrame, last_day: pd.Timestamp) -> pd.DataFrame:
    """statsforecast's input: each series daily from its first day to ``last_day``, gaps
    filled by linear interpolation (ends by the nearest value)."""
    parts = []
    for (server_id, metric), series in train.groupby(SERIES, sort=True):
        values = (
            series.set_index("date")["value"]
            .reindex(pd.date_range(series["date"].min(), last_day, freq="D"))
            .interpolate(limit_direction="both")
        )
        parts.append(
            pd.DataFrame(
                {"unique_id": f"{server_id}|{metric}", "ds": values.index, "y": values.to_numpy()}
            )
        )
    return pd.concat(parts, ignore_index=True)


def _statsforecast(
    name: str, gap_free: pd.DataFrame, horizon: int, level: float, n_jobs: int
) -> pd.DataFrame:
    os.environ.setdefault("NIXTLA_ID_AS_COL", "1")
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, AutoTheta

    peer = {"auto_theta": AutoTheta, "auto_ets": AutoETS}[name](season_length=7)
    percent = round(level * 100)
    column = repr(peer)
    raw = StatsForecast(models=[peer], freq="D", n_jobs=n_jobs).forecast(
        df=gap_free, h=horizon, level=[percent]
    )
    result = pd.DataFrame(
        {
            "date": raw["ds"],
            "model": name,
            "yhat": raw[column],
            "yhat_lower": raw[f"{column}-lo-{percent}"],
            "yhat_upper": raw[f"{column}-hi-{percent}"],
        }
    )
    result[SERIES] = raw["unique_id"].str.split("|", n=1, expand=True).to_numpy()
    return result


def _prophet_default(
    name: str, train: pd.DataFrame, dates: pd.DatetimeIndex, level: float, n_jobs: int
) -> pd.DataFrame:
    groups = [(key, series[["date", "value"]]) for key, series in train.groupby(SERIES)]
    n_chunks = 8 * max(1, n_jobs if n_jobs > 0 else os.cpu_count() or 1)
    chunks = [groups[i::n_chunks] for i in range(n_chunks)]
    results = Parallel(n_jobs=n_jobs)(
        delayed(_prophet_chunk)(name, chunk, dates, level) for chunk in chunks if chunk
    )
    return pd.concat([frame for chunk in results for frame in chunk], ignore_index=True)


def _prophet_chunk(
    name: str,
    chunk: list[tuple[tuple[str, str], pd.DataFrame]],
    dates: pd.DatetimeIndex,
    level: float,
) -> list[pd.DataFrame]:
    from prophet import Prophet

    # cmdstanpy resets its level on each fit: only disabling its logger silences it.
    logging.getLogger("cmdstanpy").disabled = True
    logging.getLogger("prophet").setLevel(logging.WARNING)
    # Prophet samples its interval with numpy's global generator: seeded, a rerun prints the same.
    np.random.seed(0)
    out = []
    for (server_id, metric), series in chunk:
        model = Prophet(interval_width=level)
        model.fit(pd.DataFrame({"ds": series["date"], "y": series["value"]}))
        predicted = model.predict(pd.DataFrame({"ds": dates}))
        out.append(
            pd.DataFrame(
                {
                    "server_id": server_id,
                    "metric": metric,
                    "date": dates,
                    "model": name,
                    "yhat": predicted["yhat"].to_numpy(),
                    "yhat_lower": predicted["yhat_lower"].to_numpy(),
                    "yhat_upper": predicted["yhat_upper"].to_numpy(),
                }
            )
        )
    return out


def check_complete(peers: pd.DataFrame, n_series: int, n_days: int) -> None:
    """Every peer forecast every series on every day, with finite values."""
    for name, frame in peers.groupby("model"):
        finite = np.isfinite(frame[["yhat", "yhat_lower", "yhat_upper"]].to_numpy()).all()
        if len(frame) != n_series * n_days or not finite:
            raise SystemExit(
                f"peer {name}: {len(frame)} rows (finite: {finite}); expected {n_series} series "
                f"x {n_days} days, all finite"
            )
