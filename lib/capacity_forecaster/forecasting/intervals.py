"""Prediction intervals by split-conformal calibration on backtest residuals.

No model's own interval is trusted blind (Prophet's nominal 80 % covered ~60 % in trials).
Instead, per model, metric and horizon bucket, we take the backtest's scaled residuals
``(actual - yhat) / scale`` (scale: the series' in-sample seasonal-naive MAE, so a quiet and a
volatile server share one calibration) and use their empirical quantiles at
``(1 - level) / 2`` and ``(1 + level) / 2`` as the interval's offsets. Residuals grow with the
horizon, hence the buckets. Coverage is then *measured*, never assumed: ``cross_validate``
calibrates each backtest origin's intervals on residuals it did not produce and reports how
often actuals fell inside.

Where the residuals come from depends on the model. A model that fits the yearly cycle
(Prophet) errs about as much in every season, so the recent backtest origins calibrate it
(each origin on the other ones; the forecast on all of them). A model that does not errs more
in some seasons, so it is calibrated on the same season a year earlier: the rows of
``backtest.run_season_backtest``, each marked with the origin (``for_origin``) it calibrates.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from capacity_forecaster.core.scoring import SCALE_FLOOR

logger = logging.getLogger(__name__)

HORIZON_EDGES = (0, 7, 14, 30, 60, 90, 120, 150, 180)
MIN_RESIDUALS = 50  # per bucket; fewer and the bucket borrows from the whole model x metric pool
# Past the scored horizon, interval width grows as horizon ** exponent, the exponent measured on
# the scored days and held between a random walk's spread (0.5) and a drift's error (1).
MIN_GROWTH, MAX_GROWTH = 0.5, 1.0
CALIBRATION_KEYS = ["model", "metric", "bucket"]


def horizon_bucket(horizon: pd.Series | np.ndarray) -> np.ndarray:
    """Bucket index of each horizon (days ahead, 1-based)."""
    return np.searchsorted(np.asarray(HORIZON_EDGES[1:]), np.asarray(horizon), side="left")


def calibrate(backtest: pd.DataFrame, level: float) -> pd.DataFrame:
    """Quantiles of scaled residuals per model, metric and horizon bucket.

    ``backtest`` needs model, metric, horizon, actual, yhat, scale. Returns model, metric,
    bucket, q_lower, q_upper, n and horizon_mean (the mean days ahead of the bucket's
    residuals, from which ``growth_exponents`` reads how fast the errors grow).
    """
    alpha = (1 - level) / 2
    work = pd.DataFrame(
        {
            "model": backtest["model"],
            "metric": backtest["metric"],
            "bucket": horizon_bucket(backtest["horizon"]),
            "horizon": backtest["horizon"].astype(float),
            "residual": (backtest["actual"] - backtest["yhat"])
            / backtest["scale"].clip(lower=SCALE_FLOOR),
        }
    ).dropna()
    grouped = work.groupby(CALIBRATION_KEYS)["residual"]
    table = pd.DataFrame(
        {
            "q_lower": grouped.quantile(alpha),
            "q_upper": grouped.quantile(1 - alpha),
            "n": grouped.size(),
            "horizon_mean": work.groupby(CALIBRATION_KEYS)["horizon"].mean(),
        }
    ).reset_index()
    pooled = work.groupby(["model", "metric"])["residual"]
    pool = pd.DataFrame(
        {"p_lower": pooled.quantile(alpha), "p_upper": pooled.quantile(1 - alpha)}
    ).reset_index()
    table = table.merge(pool, on=["model", "metric"], how="left")
    thin = table["n"] < MIN_RESIDUALS
    table.loc[thin, "q_lower"] = table.loc[thin, "p_lower"]
    table.loc[thin, "q_upper"] = table.loc[thin, "p_upper"]
    # An interval must contain its point forecast.
    table["q_lower"] = table["q_lower"].clip(upper=0.0)
    table["q_upper"] = table["q_upper"].clip(lower=0.0)
    return table.drop(columns=["p_lower", "p_upper"])


def apply(
    forecasts: pd.DataFrame, calibration: pd.DataFrame, scored_horizon_days: int | None = None
) -> pd.DataFrame:
    """Add yhat_lower / yhat_upper to forecast rows (model, metric, horizon, yhat, scale).

    Buckets beyond the calibrated horizons use the widest calibrated bucket; a model or metric
    with no calibration at all is an error (its intervals would be made up). Past
    ``scored_horizon_days`` (the days the backtest scored, when a short history scored fewer
    than the forecast runs) no residual was ever measured: the offsets then grow with the
    horizon as fast as the measured ones grew over the scored days (``growth_exponents``: at
    least as a random walk's spread, sqrt(h), at most in proportion to h), rather than staying
    at the width of the last day measured.
    """
    buckets = horizon_bucket(forecasts["horizon"])
    widest = calibration.groupby(["model", "metric"])["bucket"].max().rename("widest").reset_index()
    keys = (
        forecasts[["model", "metric"]]
        .assign(bucket=buckets)
        .merge(widest, on=["model", "metric"], how="left")
    )
    missing = keys["widest"].isna()
    if missing.any():
        pairs = keys.loc[missing, ["model", "metric"]].drop_duplicates().itertuples(index=False)
        raise ValueError(f"no interval calibration for {', '.join(f'{m}/{x}' for m, x in pairs)}")
    keys["bucket"] = np.minimum(keys["bucket"], keys["widest"]).astype(int)
    offsets = keys.merge(_every_bucket(calibration), on=CALIBRATION_KEYS, how="left")
    scale = forecasts["scale"].clip(lower=SCALE_FLOOR).to_numpy()
    if scored_horizon_days is not None:
        exponent = (
            forecasts[["model", "metric"]]
            .merge(growth_exponents(calibration), on=["model", "metric"], how="left")["exponent"]
            .fillna(MIN_GROWTH)
            .to_numpy()
        )
        scale = scale * extension_factor(
            forecasts["horizon"].to_numpy(), scored_horizon_days, exponent
        )
    yhat = forecasts["yhat"].to_numpy()
    result = forecasts.copy()
    result["yhat_lower"] = np.clip(yhat + offsets["q_lower"].to_numpy() * scale, 0.0, 100.0)
    result["yhat_upper"] = np.clip(yhat + offsets["q_upper"].to_numpy() * scale, 0.0, 100.0)
    result["yhat_lower"] = np.minimum(result["yhat_lower"], result["yhat"])
    result["yhat_upper"] = np.maximum(result["yhat_upper"], result["yhat"])
    return result


def extension_factor(
    horizon: np.ndarray, scored_horizon_days: int, exponent: float | np.ndarray = 0.5
) -> np.ndarray:
    """How much wider an interval is drawn past the backtest's scored horizon: 1 up to it,
    (horizon / scored_horizon_days) ** exponent beyond (0.5: a random walk's sqrt)."""
    ratio = np.asarray(horizon, dtype=float) / float(scored_horizon_days)
    return np.power(np.maximum(ratio, 1.0), exponent)


def growth_exponents(calibration: pd.DataFrame) -> pd.DataFrame:
    """Per model and metric, how fast the interval's width grew with the days ahead over the
    scored horizon: the slope of log width on log ``horizon_mean`` across the buckets with
    ``MIN_RESIDUALS`` residuals, clipped to ``MIN_GROWTH``-``MAX_GROWTH`` (``MIN_GROWTH`` with
    fewer than two such buckets). Columns model, metric, exponent."""
    rows = []
    for (model, metric), table in calibration.groupby(["model", "metric"], sort=True):
        width = (table["q_upper"] - table["q_lower"]).to_numpy(dtype=float)
        days = table.get("horizon_mean", pd.Series(np.nan, index=table.index)).to_numpy(float)
        usable = (table["n"].to_numpy() >= MIN_RESIDUALS) & (width > 0) & (days > 0)
        exponent = MIN_GROWTH
        if usable.sum() >= 2 and np.ptp(np.log(days[usable])) > 0:
            slope = np.polyfit(np.log(days[usable]), np.log(width[usable]), 1)[0]
            exponent = float(np.clip(slope, MIN_GROWTH, MAX_GROWTH))
        rows.append({"model": model, "metric": metric, "exponent": exponent})
    return pd.DataFrame(rows, columns=["model", "metric", "exponent"])


def _every_bucket(calibration: pd.DataFrame) -> pd.DataFrame:
    """The calibration on every bucket up to each model x metric's widest; a bucket the backtest
    never filled borrows the nearest shorter one (else the nearest longer one)."""
    parts = []
    for (model, metric), table in calibration.groupby(["model", "metric"]):
        full = table.set_index("bucket")[["q_lower", "q_upper"]].reindex(
            range(int(table["bucket"].max()) + 1)
        )
        parts.append(
            full.ffill().bfill().reset_index().assign(model=str(model), metric=str(metric))
        )
    return pd.concat(parts, ignore_index=True)


def cross_validate(
    backtest: pd.DataFrame, level: float, season: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Backtest rows with honest intervals: each origin's calibrated on the *other* origins only,
    or, for a model with rows in ``season``, on its season rows for that origin."""
    origins = sorted(backtest["origin"].unique())
    if len(origins) < 2:
        raise ValueError("interval coverage needs at least two backtest origins")
    parts = []
    for origin in origins:
        held_out = backtest["origin"] == origin
        parts.append(
            apply(backtest[held_out], _calibration(backtest[~held_out], season, origin, level))
        )
    return pd.concat(parts).loc[backtest.index]


def forecast_calibration(
    backtest: pd.DataFrame, level: float, season: pd.DataFrame | None, forecast_origin: pd.Timestamp
) -> pd.DataFrame:
    """The calibration the forecast's intervals use: all backtest origins, or, for a model with
    rows in ``season``, its season rows for ``forecast_origin`` (the history's last day)."""
    return _calibration(backtest, season, forecast_origin, level)


def describe_sources(models: list[str], season: pd.DataFrame | None) -> dict[str, str]:
    """Per model, in words, where its interval calibration comes from."""
    seasonal = _season_models(season)
    return {
        model: (
            "the same season a year earlier (origins 52 weeks before each backtest origin "
            "and before the last day)"
            if model in seasonal
            else "the backtest origins (for each origin, the other ones; for the forecast, all)"
        )
        for model in models
    }


def _season_models(season: pd.DataFrame | None) -> set[str]:
    return set() if season is None or season.empty else set(season["model"].unique())


def _calibration(
    origins_rows: pd.DataFrame, season: pd.DataFrame | None, target: pd.Timestamp, level: float
) -> pd.DataFrame:
    """Calibration for forecasts from ``target``: models with season rows on those marked for
    ``target``, the others on ``origins_rows``."""
    seasonal = _season_models(season)
    others = origins_rows[~origins_rows["model"].isin(seasonal)]
    parts = [calibrate(others, level)] if len(others) or not seasonal else []
    if season is not None and seasonal:
        target = pd.Timestamp(target)
        marked = season[season["for_origin"] == target]
        missing = seasonal - set(marked["model"].unique())
        if missing:
            raise ValueError(f"no season rows for {sorted(missing)} at origin {target.date()}")
        parts.append(calibrate(marked, level))
    return pd.concat(parts, ignore_index=True)
