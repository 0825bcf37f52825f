"""Stage 06: capacity risk per server x metric from the champion forecast.

For each series the champion forecast (``is_champion``) is compared with the series' threshold:
the strictest of the metric default and any ``criticality`` / ``environment`` override that
matches the server (a looser override never relaxes the default).

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

Risk rules (implemented only in ``_classify``; ``rules_text`` renders them for the summary):

- high: ``current_p95 >= threshold`` (breaching already), or ``days_to_breach <= high_within_days``,
  or ``breach_probability_soon >= high_probability``
  (the same probability over the first ``high_within_days`` days only: a likely breach far out
  is not urgent);
- medium: otherwise, a breach within the horizon on the forecast (``days_to_breach``) or on the
  upper bound (``days_to_breach_upper``), or ``breach_probability >= medium_probability``;
- low: otherwise.

Since ``yhat`` is the median, a probability of 0.5 or more means the forecast itself reaches the
threshold, so ``high_probability`` (default 0.3) below 0.5 is what lets the upper side of the
interval raise a near-term risk to high.

Plain functions on frames; no I/O.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from capacity_forecaster.core.calendar import quarter_end_window
from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.jsonable import json_value, records
from capacity_forecaster.core.params import RiskParams
from capacity_forecaster.core.vocabulary import METRICS

logger = logging.getLogger(__name__)

SERIES = ["server_id", "metric"]
LEVELS = ("high", "medium", "low")
CRITICALITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}
SERVER_ATTRIBUTES = ["business_unit", "region", "environment", "criticality"]
ROLLUP_DIMENSIONS = ["business_unit", "region", "criticality", "environment"]
OVERRIDE_KINDS = ("criticality", "environment")
RISK_COLUMNS = [
    "urgency_rank",
    "server_id",
    "metric",
    "model",
    "threshold",
    "current_p95",
    "forecast_peak",
    "peak_date",
    "headroom_pts",
    "days_to_breach",
    "breach_date",
    "days_to_breach_upper",
    "breach_date_upper",
    "breach_probability",
    "breach_probability_soon",
    "eoq_breach",
    "seasonal_peak",
    "risk_level",
    "risk_reason",
    *SERVER_ATTRIBUTES,
]


def thresholds_for(servers: pd.DataFrame, params: RiskParams) -> pd.DataFrame:
    """Per server x metric, the strictest of the metric default and every matching override."""
    ids = servers["server_id"].drop_duplicates().to_numpy()
    table = pd.DataFrame(
        {
            "server_id": np.repeat(ids, len(METRICS)),
            "metric": np.tile(np.array(METRICS, dtype=object), len(ids)),
        }
    )
    table["threshold"] = table["metric"].map(params.thresholds).astype(float)
    attributes = servers.drop_duplicates("server_id").set_index("server_id")
    for kind in OVERRIDE_KINDS:
        groups = params.overrides.get(kind, {})
        if not groups:
            continue
        if kind not in attributes.columns:
            logger.warning("06_risk: servers have no %r column: its overrides are unused", kind)
            continue
        rows = [
            (group, metric, value)
            for group, metrics in groups.items()
            for metric, value in metrics.items()
        ]
        overrides = pd.DataFrame(rows, columns=[kind, "metric", "override"])
        overrides[kind] = overrides[kind].astype(str)
        values = table["server_id"].map(attributes[kind]).astype(str)
        merged = pd.DataFrame({kind: values, "metric": table["metric"]}).merge(
            overrides, on=[kind, "metric"], how="left"
        )
        table["threshold"] = np.fmin(table["threshold"].to_numpy(), merged["override"].to_numpy())
    return table


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


def _first_where(
    frame: pd.DataFrame, mask: pd.Series, columns: list[str], keys: pd.DataFrame
) -> pd.DataFrame:
    """Per series, ``columns`` of the first row (frame is sorted by horizon) where mask holds."""
    hits = frame.loc[mask, [*SERIES, *columns]].drop_duplicates(SERIES, keep="first")
    return keys.merge(hits, on=SERIES, how="left")[columns]


def _history_stats(history: pd.DataFrame, lookback_days: int) -> pd.DataFrame:
    """Per series: P95 of the last ``lookback_days`` of values, and the busiest calendar month."""
    dates = pd.to_datetime(history["date"])
    last = dates.groupby([history["server_id"], history["metric"]]).transform("max")
    recent = history.loc[dates > last - pd.Timedelta(days=lookback_days)]
    current = recent.groupby(SERIES)["value"].quantile(0.95).rename("current_p95")
    monthly = history.groupby([*SERIES, dates.dt.month.rename("month")])["value"].mean()
    monthly = monthly.dropna().reset_index()
    busiest = monthly.loc[monthly.groupby(SERIES)["value"].idxmax(), [*SERIES, "month"]]
    busiest = busiest.set_index(SERIES)["month"].rename("busiest_month")
    return pd.concat([current, busiest], axis=1).reset_index()


def _in_quarter_end_window(dates: pd.Series, business_days: int) -> np.ndarray:
    """quarter_end_window that tolerates NaT (False there)."""
    result = np.zeros(len(dates), dtype=bool)
    known = dates.notna().to_numpy()
    if known.any():
        result[known] = quarter_end_window(pd.DatetimeIndex(dates[known]), business_days)
    return result


def _classify(
    days_to_breach: pd.Series,
    days_to_breach_upper: pd.Series,
    probability: pd.Series,
    probability_soon: pd.Series,
    already_breaching: pd.Series,
    params: RiskParams,
) -> np.ndarray:
    """The risk rules (the only place they live): high, medium or low per series."""
    high = (
        already_breaching
        | (days_to_breach <= params.high_within_days)
        | (probability_soon >= params.high_probability)
    )
    medium = (
        days_to_breach.notna()
        | days_to_breach_upper.notna()
        | (probability >= params.medium_probability)
    )
    return np.select([high.to_numpy(), medium.to_numpy()], ["high", "medium"], "low").astype(object)


def rules_text(params: RiskParams) -> list[str]:
    """The risk rules of ``_classify`` in words, with this run's values."""
    return [
        "high: the recent P95 (last weeks of history) is already at or over the threshold, "
        f"or the forecast reaches the threshold within {params.high_within_days} days, "
        f"or the probability of a breach within those days is at least {params.high_probability:.0%}",
        "medium: otherwise, the forecast or the upper interval bound reaches the threshold "
        f"within the horizon, or the breach probability is at least {params.medium_probability:.0%}",
        "low: otherwise",
        "breach probability: the horizon's maximum daily P(value > threshold) from a split normal "
        "fitted to the calibrated interval around the forecast (the median)",
    ]


def _days(days: float) -> str:
    return "1 day" if days == 1 else f"{int(days)} days"


def _reason(row: tuple, params: RiskParams) -> str:
    """One line saying why a series got its level."""
    level, current, days, date, days_up, date_up, prob, threshold, peak, headroom = row
    parts = []
    if current >= threshold:
        parts.append(f"already at {current:.1f}% (recent P95), over {threshold:g}%")
    if not math.isnan(days):
        parts.append(f"forecast reaches {threshold:g}% in {_days(days)} ({date.date()})")
    elif not math.isnan(days_up):
        parts.append(f"upper bound reaches {threshold:g}% in {_days(days_up)} ({date_up.date()})")
    else:
        parts.append(f"peak {peak:.1f}% vs threshold {threshold:g}% ({headroom:.1f} pts headroom)")
    parts.append(f"P(breach) {prob:.0%}")
    if level == "high" and (math.isnan(days) or days > params.high_within_days):
        parts.append(
            f"P(breach within {params.high_within_days} days) >= {params.high_probability:.0%}"
        )
    return ", ".join(parts)


def _urgency_order(risk: pd.DataFrame) -> np.ndarray:
    """Row positions by urgency: level, days to breach, upper-bound days, probability,
    criticality, then ids (so the order never depends on row order)."""
    keys = pd.DataFrame(
        {
            "level": risk["risk_level"].map({level: i for i, level in enumerate(LEVELS)}),
            "days": risk["days_to_breach"].fillna(np.inf),
            "days_upper": risk["days_to_breach_upper"].fillna(np.inf),
            "probability": -risk["breach_probability"],
            "criticality": risk["criticality"]
            .map(CRITICALITY_ORDER)
            .fillna(len(CRITICALITY_ORDER)),
            "server_id": risk["server_id"].astype(str),
            "metric": risk["metric"].astype(str),
        },
    ).reset_index(drop=True)
    return keys.sort_values(list(keys.columns), kind="mergesort").index.to_numpy()


def assess_risk(
    forecasts: pd.DataFrame,
    history: pd.DataFrame,
    servers: pd.DataFrame,
    params: RiskParams,
    interval: float,
    quarter_end_business_days: int = 5,
    lookback_days: int = 28,
) -> pd.DataFrame:
    """One row per server x metric from its champion forecast, ranked by urgency (see module)."""
    champion = forecasts.loc[
        forecasts["is_champion"].astype(bool),
        [*SERIES, "date", "horizon", "model", "yhat", "yhat_lower", "yhat_upper"],
    ]
    champion = champion.sort_values([*SERIES, "horizon"], ignore_index=True)
    champion["date"] = pd.to_datetime(champion["date"])
    thresholds = thresholds_for(servers, params)
    champion = champion.merge(thresholds, on=SERIES, how="left")
    unknown = champion["threshold"].isna()
    if unknown.any():
        logger.warning(
            "06_risk: %d series have no server in the servers frame: default thresholds used",
            champion.loc[unknown].groupby(SERIES).ngroups,
        )
        champion.loc[unknown, "threshold"] = champion.loc[unknown, "metric"].map(params.thresholds)
    champion["probability"] = breach_probability(
        champion["yhat"],
        champion["yhat_lower"],
        champion["yhat_upper"],
        champion["threshold"],
        interval,
    )

    grouped = champion.groupby(SERIES, sort=False)
    first = grouped.first()
    risk = first[["model", "threshold"]].reset_index()
    risk["forecast_peak"] = grouped["yhat"].max().to_numpy()
    risk["peak_date"] = champion.loc[grouped["yhat"].idxmax(), "date"].to_numpy()
    risk["headroom_pts"] = risk["threshold"] - risk["forecast_peak"]
    risk["breach_probability"] = grouped["probability"].max().to_numpy()
    soon = (
        champion[champion["horizon"] <= params.high_within_days]
        .groupby(SERIES)["probability"]
        .max()
    )
    risk["breach_probability_soon"] = (
        soon.reindex(pd.MultiIndex.from_frame(risk[SERIES])).fillna(0.0).to_numpy()
    )
    keys = risk[SERIES]
    point = _first_where(
        champion, champion["yhat"] >= champion["threshold"], ["horizon", "date"], keys
    )
    upper = _first_where(
        champion, champion["yhat_upper"] >= champion["threshold"], ["horizon", "date"], keys
    )
    risk["days_to_breach"] = point["horizon"].astype(float).to_numpy()
    risk["breach_date"] = pd.to_datetime(point["date"]).to_numpy()
    risk["days_to_breach_upper"] = upper["horizon"].astype(float).to_numpy()
    risk["breach_date_upper"] = pd.to_datetime(upper["date"]).to_numpy()

    stats = _history_stats(history, lookback_days)
    risk = risk.merge(stats, on=SERIES, how="left")
    risk["eoq_breach"] = _in_quarter_end_window(
        risk["breach_date"].fillna(risk["breach_date_upper"]), quarter_end_business_days
    )
    risk["seasonal_peak"] = (
        risk["peak_date"].dt.month == risk["busiest_month"]
    ).to_numpy() | _in_quarter_end_window(risk["peak_date"], quarter_end_business_days)

    risk["risk_level"] = _classify(
        risk["days_to_breach"],
        risk["days_to_breach_upper"],
        risk["breach_probability"],
        risk["breach_probability_soon"],
        risk["current_p95"] >= risk["threshold"],
        params,
    )
    columns = [
        "risk_level",
        "current_p95",
        "days_to_breach",
        "breach_date",
        "days_to_breach_upper",
        "breach_date_upper",
        "breach_probability",
        "threshold",
        "forecast_peak",
        "headroom_pts",
    ]
    risk["risk_reason"] = [
        _reason(row, params) for row in risk[columns].itertuples(index=False, name=None)
    ]

    attributes = servers.drop_duplicates("server_id")
    attributes = attributes[["server_id", *[c for c in SERVER_ATTRIBUTES if c in attributes]]]
    risk = risk.merge(attributes, on="server_id", how="left")
    for column in SERVER_ATTRIBUTES:
        if column not in risk:
            risk[column] = pd.NA
    risk = risk.iloc[_urgency_order(risk)].reset_index(drop=True)
    # The one urgency order every report and plot uses: 1 is the most urgent series.
    risk["urgency_rank"] = np.arange(1, len(risk) + 1)
    risk = risk[RISK_COLUMNS]
    counts = risk["risk_level"].value_counts()
    logger.info(
        "06_risk: %d series assessed: %d high, %d medium, %d low",
        len(risk),
        counts.get("high", 0),
        counts.get("medium", 0),
        counts.get("low", 0),
    )
    return risk


def rank_at_risk(risk: pd.DataFrame, top_n: int) -> pd.DataFrame:
    """High and medium series by urgency (level, days, upper-bound days, probability, criticality)."""
    at_risk = risk[risk["risk_level"].isin(["high", "medium"])]
    ranked = at_risk.iloc[_urgency_order(at_risk)].reset_index(drop=True)
    ranked.insert(0, "rank", np.arange(1, len(ranked) + 1))
    return ranked.head(top_n)


def _worst_per_server(risk: pd.DataFrame) -> pd.DataFrame:
    """One row per server: its attributes and its worst level over metrics."""
    severity = risk["risk_level"].map({level: i for i, level in enumerate(LEVELS)})
    worst = severity.groupby(risk["server_id"]).min().map(dict(enumerate(LEVELS)))
    attributes = risk.drop_duplicates("server_id").set_index("server_id")
    present = [c for c in SERVER_ATTRIBUTES if c in attributes]
    servers = attributes[present].astype(object).where(attributes[present].notna(), "unknown")
    return servers.assign(worst=worst).reset_index()


def rollups(risk: pd.DataFrame) -> dict[str, list[dict]]:
    """Per business unit, region, criticality and environment: servers at risk by worst level."""
    servers = _worst_per_server(risk)
    result: dict[str, list[dict]] = {}
    for dimension in ROLLUP_DIMENSIONS:
        if dimension not in servers:
            result[dimension] = []
            continue
        table = servers.groupby(dimension)["worst"].agg(
            servers="size",
            high=lambda s: int((s == "high").sum()),
            medium=lambda s: int((s == "medium").sum()),
        )
        table["servers_at_risk"] = table["high"] + table["medium"]
        table["share_at_risk"] = (table["servers_at_risk"] / table["servers"]).round(4)
        table = table.reset_index()
        table[dimension] = table[dimension].astype(str)
        table = table.sort_values(
            ["share_at_risk", "servers_at_risk", dimension], ascending=[False, False, True]
        )
        columns = [dimension, "servers", "servers_at_risk", "share_at_risk", "high", "medium"]
        result[dimension] = records(table[columns])
    return result


def _level_counts(levels: pd.Series) -> dict[str, int]:
    counts = levels.value_counts()
    return {level: int(counts.get(level, 0)) for level in LEVELS}


def risk_summary(risk: pd.DataFrame, top: pd.DataFrame, params: RiskParams) -> dict:
    """A JSON-ready summary (NaN as None, dates as ISO strings) for the report and summary.json."""
    servers = _worst_per_server(risk)
    by_metric = {}
    for metric, rows in risk.groupby("metric", sort=True):
        days = rows["days_to_breach"]
        by_metric[str(metric)] = {
            "series": len(rows),
            **_level_counts(rows["risk_level"]),
            "breaching": int(days.notna().sum()),
            "breaching_upper": int(rows["days_to_breach_upper"].notna().sum()),
            "median_days_to_breach": json_value(days.median()),
            "eoq_breaches": int(rows["eoq_breach"].sum()),
        }
    breaching = risk[risk["days_to_breach"].notna()].sort_values(
        ["days_to_breach", "server_id", "metric"]
    )
    earliest = breaching[
        [*SERIES, "breach_date", "days_to_breach", "threshold", "breach_probability", "criticality"]
    ].head(10)
    used = risk.groupby("metric")["threshold"].unique()
    return {
        "series": len(risk),
        "servers": int(risk["server_id"].nunique()),
        "levels": {
            "series": _level_counts(risk["risk_level"]),
            "servers": _level_counts(servers["worst"]),
        },
        "by_metric": by_metric,
        "eoq_breaches": int(risk["eoq_breach"].sum()),
        "seasonal_peaks": int(risk["seasonal_peak"].sum()),
        "earliest_breaches": records(earliest),
        "thresholds": {
            "defaults": {k: float(v) for k, v in params.thresholds.items()},
            "overrides": params.overrides,
            "used": {str(m): sorted(float(v) for v in values) for m, values in used.items()},
        },
        "rules": rules_text(params),
        "risk_params": {
            "high_within_days": params.high_within_days,
            "high_probability": params.high_probability,
            "medium_probability": params.medium_probability,
        },
        "rollups": rollups(risk),
        "top": records(top),
    }


def check_risk(risk: pd.DataFrame, forecasts: pd.DataFrame) -> None:
    """Post-conditions of risk.parquet; raises StageCheckError saying what failed."""
    missing_columns = [c for c in RISK_COLUMNS if c not in risk]
    if missing_columns:
        raise StageCheckError(f"06_risk risk.parquet: missing columns {missing_columns}")
    problems = []
    champion = forecasts.loc[forecasts["is_champion"].astype(bool)]
    expected = champion[SERIES].drop_duplicates()
    per_series = risk.groupby(SERIES).size().rename("rows").reset_index()
    joined = expected.merge(per_series, on=SERIES, how="outer", indicator=True)
    missing = joined[joined["_merge"] == "left_only"]
    extra = joined[joined["_merge"] == "right_only"]
    duplicated = joined[joined["rows"] > 1]
    for label, rows in (
        ("champion series without a risk row", missing),
        ("risk rows for series without a champion forecast", extra),
        ("series with more than one risk row", duplicated),
    ):
        if len(rows):
            sample = ", ".join(f"{s}/{m}" for s, m in rows[SERIES].head(3).itertuples(index=False))
            problems.append(f"{len(rows)} {label} (e.g. {sample})")
    probability = risk["breach_probability"].to_numpy(dtype=float)
    bad = ~np.isfinite(probability) | (probability < 0) | (probability > 1)
    if bad.any():
        problems.append(f"{int(bad.sum())} breach probabilities not finite or outside [0, 1]")
    ranks = risk["urgency_rank"].to_numpy()
    if not np.array_equal(np.sort(ranks), np.arange(1, len(risk) + 1)):
        problems.append("urgency_rank is not 1..N, one per series")
    levels = ~risk["risk_level"].isin(LEVELS)
    if levels.any():
        problems.append(f"{int(levels.sum())} rows with a risk_level not in {list(LEVELS)}")
    crossing = champion[[*SERIES, "horizon", "yhat"]].merge(
        risk[[*SERIES, "threshold", "days_to_breach"]].drop_duplicates(SERIES), on=SERIES
    )
    crossed = (
        (crossing["yhat"] >= crossing["threshold"])
        .groupby([crossing["server_id"], crossing["metric"]])
        .any()
    )
    horizon = crossing.groupby(SERIES)["horizon"].max()
    days = crossing.groupby(SERIES)["days_to_breach"].first()
    wrong_crossed = crossed & ~days.between(1, horizon)
    wrong_never = ~crossed & days.notna()
    if wrong_crossed.any():
        problems.append(
            f"{int(wrong_crossed.sum())} series cross their threshold but days_to_breach is not "
            "within 1..H"
        )
    if wrong_never.any():
        problems.append(
            f"{int(wrong_never.sum())} series never cross their threshold but have days_to_breach"
        )
    if problems:
        raise StageCheckError("06_risk risk.parquet: " + "; ".join(problems))
    logger.info("06_risk: check passed for %d series", len(risk))
