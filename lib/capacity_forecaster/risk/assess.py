"""Stage 06: capacity risk per server x metric from the champion forecast, and its rules.

For each series the champion forecast (``is_champion``) is compared with the series' threshold
(``thresholds``); ``breach`` gives the breach days, dates and probabilities, ``flags`` the recent
P95 and the calendar flags, and the rules below a risk level and a one-line reason. Rows come
in the one urgency order of ``ranking``.

Risk rules (implemented only in ``_classify``; ``rules_text`` renders them for the summary):

- high: ``current_p95 >= threshold`` (``over_now``: breaching already; its days to breach are
  0 and its breach date the history's last day), or ``days_to_breach <= high_within_days``,
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

import numpy as np
import pandas as pd

from capacity_forecaster.core.calendar_windows import window_label
from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.params import RiskParams
from capacity_forecaster.core.params_calendar import CalendarParams
from capacity_forecaster.core.vocabulary import RISK_LEVELS, SERIES_KEY
from capacity_forecaster.risk.breach import breach_probability, series_breaches
from capacity_forecaster.risk.flags import (
    day_windows,
    history_stats,
    window_only_breaches,
    with_calendar_flags,
)
from capacity_forecaster.risk.ranking import urgency_order
from capacity_forecaster.risk.thresholds import with_thresholds

logger = logging.getLogger(__name__)

__all__ = ["RISK_COLUMNS", "SERVER_ATTRIBUTES", "assess_risk", "check_risk", "rules_text"]

SERIES = list(SERIES_KEY)
SERVER_ATTRIBUTES = ["business_unit", "region", "environment", "criticality"]
RISK_COLUMNS = [
    "urgency_rank",
    "server_id",
    "metric",
    "model",
    "threshold",
    "current_p95",
    "over_now",
    "forecast_peak",
    "peak_date",
    "headroom_pts",
    "days_to_breach",
    "breach_date",
    "days_to_breach_upper",
    "breach_date_upper",
    "breach_probability",
    "breach_probability_soon",
    "breach_window",
    "breach_window_only",
    "seasonal_peak",
    "risk_level",
    "risk_reason",
    *SERVER_ATTRIBUTES,
]
REASON_COLUMNS = [  # what ``_reason`` reads, in its order
    "risk_level",
    "over_now",
    "current_p95",
    "threshold",
    "days_to_breach",
    "breach_date",
    "days_to_breach_upper",
    "breach_date_upper",
    "breach_probability",
    "breach_probability_soon",
    "forecast_peak",
    "headroom_pts",
    "breach_window",
    "breach_window_only",
]


def assess_risk(
    forecasts: pd.DataFrame,
    history: pd.DataFrame,
    servers: pd.DataFrame,
    params: RiskParams,
    interval: float,
    calendar: CalendarParams | None = None,
    lookback_days: int = 28,
) -> pd.DataFrame:
    """One row per server x metric from its champion forecast, ranked by urgency (see module).

    Args:
        forecasts: forecasts.parquet rows (every model; the champion's are used).
        history: daily values (server_id, metric, date, value) for the recent P95 and season.
        servers: the inventory: server_id and the attributes overrides and roll-ups use.
        params: thresholds, overrides and the rules' values.
        interval: the level of the forecast's calibrated interval, in (0, 1).
        calendar: the business calendar whose windows a breach is placed in (default: the
            params' default windows).
        lookback_days: the days of history the recent P95 is taken over.

    Returns:
        ``RISK_COLUMNS``, one row per series, in urgency order (``urgency_rank`` 1 first).
    """
    calendar = calendar or CalendarParams()
    champion = _champion_rows(forecasts, servers, params, interval)
    risk = series_breaches(champion, params.high_within_days)
    risk = risk.merge(history_stats(history, lookback_days), on=SERIES, how="left")
    # The calendar flags describe the forecast's breach, before a series over now is dated today.
    window_only = window_only_breaches(champion, day_windows(champion, "date", servers, calendar))
    risk = with_calendar_flags(risk, servers, calendar, window_only)
    risk = _with_over_now(risk)
    risk["risk_level"] = _classify(
        risk["days_to_breach"],
        risk["days_to_breach_upper"],
        risk["breach_probability"],
        risk["breach_probability_soon"],
        risk["over_now"],
        params,
    )
    risk["risk_reason"] = [
        _reason(row, params) for row in risk[REASON_COLUMNS].itertuples(index=False, name=None)
    ]
    risk = _with_server_attributes(risk, servers)
    risk = risk.iloc[urgency_order(risk)].reset_index(drop=True)
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


def _champion_rows(
    forecasts: pd.DataFrame, servers: pd.DataFrame, params: RiskParams, interval: float
) -> pd.DataFrame:
    """The champion's rows by series and horizon, with the threshold and the daily P(breach)."""
    champion = forecasts.loc[
        forecasts["is_champion"].astype(bool),
        [*SERIES, "date", "horizon", "model", "yhat", "yhat_lower", "yhat_upper"],
    ]
    champion = champion.sort_values([*SERIES, "horizon"], ignore_index=True)
    champion["date"] = pd.to_datetime(champion["date"])
    champion = with_thresholds(champion, servers, params)
    champion["probability"] = breach_probability(
        champion["yhat"],
        champion["yhat_lower"],
        champion["yhat_upper"],
        champion["threshold"],
        interval,
    )
    return champion


def _with_over_now(risk: pd.DataFrame) -> pd.DataFrame:
    """Adds ``over_now`` (the recent P95 at or over the threshold); such a series has breached
    already, so its days to breach (forecast and upper bound) are 0 and its breach date the
    last day of its history, whatever the forecast does next."""
    over = (risk["current_p95"] >= risk["threshold"]).fillna(False).astype(bool)
    risk["over_now"] = over
    # Over now whatever the calendar: the forecast's breach window no longer dates it.
    risk.loc[over, "breach_window"] = ""
    risk.loc[over, "breach_window_only"] = False
    for days, date in (
        ("days_to_breach", "breach_date"),
        ("days_to_breach_upper", "breach_date_upper"),
    ):
        risk.loc[over, days] = 0.0
        risk.loc[over, date] = risk.loc[over, "last_date"]
    return risk


def _with_server_attributes(risk: pd.DataFrame, servers: pd.DataFrame) -> pd.DataFrame:
    """Adds ``SERVER_ATTRIBUTES`` from the inventory (NA where it has none)."""
    attributes = servers.drop_duplicates("server_id")
    attributes = attributes[["server_id", *[c for c in SERVER_ATTRIBUTES if c in attributes]]]
    risk = risk.merge(attributes, on="server_id", how="left")
    for column in SERVER_ATTRIBUTES:
        if column not in risk:
            risk[column] = pd.NA
    return risk


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
        "high: the recent P95 (last weeks of history) is already at or over the threshold "
        "(over now: 0 days to breach), "
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


def _in_window(windows: str, window_only: bool) -> str:
    """``, month end`` (the breach day's windows), ``, month end days only`` when the series
    crosses on window days only; '' outside every window."""
    if not windows:
        return ""
    labels = ", ".join(window_label(name) for name in windows.split(", "))
    return f", {labels} days only" if window_only else f", {labels}"


def _reason(row: tuple, params: RiskParams) -> str:
    """One line saying what made the series' level, with its own numbers (``row``: the
    ``REASON_COLUMNS``): the rule that fired first, then the breach probability."""
    (level, over_now, current, threshold, days, date, days_up, date_up) = row[:8]
    probability, probability_soon, peak, headroom, windows, window_only = row[8:]
    within = params.high_within_days
    parts = []
    if over_now:
        parts.append(
            f"over now: recent P95 {current:.1f}% against a {threshold:g}% threshold, "
            f"forecast peak {peak:.1f}%"
        )
    elif not math.isnan(days):
        parts.append(
            f"forecast reaches {threshold:g}% in {_days(days)} ({date.date()}"
            f"{_in_window(windows, window_only)})"
        )
    elif not math.isnan(days_up):
        parts.append(
            f"upper bound reaches {threshold:g}% in {_days(days_up)} ({date_up.date()}"
            f"{_in_window(windows, window_only)}), forecast peak {peak:.1f}%"
        )
    else:
        parts.append(f"peak {peak:.1f}% vs threshold {threshold:g}% ({headroom:.1f} pts headroom)")
    soon_rule = level == "high" and not over_now and not days <= within  # NaN days: not soon
    if soon_rule:
        parts.append(
            f"P(breach within {within} days) {probability_soon:.0%}, "
            f"at least {params.high_probability:.0%}"
        )
    elif level == "medium" and math.isnan(days) and math.isnan(days_up):
        parts.append(f"P(breach) {probability:.0%}, at least {params.medium_probability:.0%}")
    else:
        parts.append(f"P(breach) {probability:.0%}")
    return ", ".join(parts)


def check_risk(risk: pd.DataFrame, forecasts: pd.DataFrame) -> None:
    """Post-conditions of risk.parquet; raises StageCheckError saying what failed."""
    missing_columns = [c for c in RISK_COLUMNS if c not in risk]
    if missing_columns:
        raise StageCheckError(f"06_risk risk.parquet: missing columns {missing_columns}")
    champion = forecasts.loc[forecasts["is_champion"].astype(bool)]
    problems = [
        *_coverage_problems(risk, champion),
        *_value_problems(risk),
        *_crossing_problems(risk, champion),
    ]
    if problems:
        raise StageCheckError("06_risk risk.parquet: " + "; ".join(problems))
    logger.info("06_risk: check passed for %d series", len(risk))


def _coverage_problems(risk: pd.DataFrame, champion: pd.DataFrame) -> list[str]:
    """One risk row per champion series, none for another series."""
    expected = champion[SERIES].drop_duplicates()
    per_series = risk.groupby(SERIES).size().rename("rows").reset_index()
    joined = expected.merge(per_series, on=SERIES, how="outer", indicator=True)
    problems = []
    for label, rows in (
        ("champion series without a risk row", joined[joined["_merge"] == "left_only"]),
        (
            "risk rows for series without a champion forecast",
            joined[joined["_merge"] == "right_only"],
        ),
        ("series with more than one risk row", joined[joined["rows"] > 1]),
    ):
        if len(rows):
            sample = ", ".join(f"{s}/{m}" for s, m in rows[SERIES].head(3).itertuples(index=False))
            problems.append(f"{len(rows)} {label} (e.g. {sample})")
    return problems


def _value_problems(risk: pd.DataFrame) -> list[str]:
    """Probabilities in [0, 1], urgency ranks 1..N, known risk levels."""
    problems = []
    probability = risk["breach_probability"].to_numpy(dtype=float)
    bad = ~np.isfinite(probability) | (probability < 0) | (probability > 1)
    if bad.any():
        problems.append(f"{int(bad.sum())} breach probabilities not finite or outside [0, 1]")
    ranks = risk["urgency_rank"].to_numpy()
    if not np.array_equal(np.sort(ranks), np.arange(1, len(risk) + 1)):
        problems.append("urgency_rank is not 1..N, one per series")
    levels = ~risk["risk_level"].isin(RISK_LEVELS)
    if levels.any():
        problems.append(f"{int(levels.sum())} rows with a risk_level not in {list(RISK_LEVELS)}")
    return problems


def _crossing_problems(risk: pd.DataFrame, champion: pd.DataFrame) -> list[str]:
    """``days_to_breach`` 0 for the series over their threshold now; for the others, in 1..H
    exactly when the forecast reaches the threshold."""
    over = risk["over_now"].astype(bool)
    problems = []
    wrong_now = over & (risk["days_to_breach"] != 0)
    if wrong_now.any():
        problems.append(f"{int(wrong_now.sum())} series over their threshold now without 0 days")
    crossing = champion[[*SERIES, "horizon", "yhat"]].merge(
        risk.loc[~over, [*SERIES, "threshold", "days_to_breach"]].drop_duplicates(SERIES),
        on=SERIES,
    )
    crossed = (
        (crossing["yhat"] >= crossing["threshold"])
        .groupby([crossing["server_id"], crossing["metric"]])
        .any()
    )
    horizon = crossing.groupby(SERIES)["horizon"].max()
    days = crossing.groupby(SERIES)["days_to_breach"].first()
    wrong_crossed = crossed & ~days.between(1, horizon)
    if wrong_crossed.any():
        problems.append(
            f"{int(wrong_crossed.sum())} series cross their threshold but days_to_breach is not "
            "within 1..H"
        )
    wrong_never = ~crossed & days.notna()
    if wrong_never.any():
        problems.append(
            f"{int(wrong_never.sum())} series never cross their threshold but have days_to_breach"
        )
    return problems
