"""How far a series' forecast can be trusted: a grade A-D with a one-line note of why.

Five things weaken a forecast, each costing one grade step, or two when badly short:

- history: fewer than ``LONG_HISTORY_DAYS`` observed days (two: fewer than ``SHORT_HISTORY_DAYS``);
- gaps: more than 5 % of the days in its span missing (two: more than 20 %);
- backtest reach: scored on fewer days ahead than forecast (two: under half of them);
- skill: no better than seasonal-naive in the backtest (two: never backtested);
- intervals: the champion's backtest coverage more than 0.15 from the stated level (two:
  more than 0.25; one when it could not be measured).

No step: A; one: B; two or three: C; four or more: D (``core.vocabulary.TRUST_MEANINGS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from capacity_forecaster.core.vocabulary import SERIES_KEY

LONG_HISTORY_DAYS = 180
SHORT_HISTORY_DAYS = 56


def trust_grades(
    history: pd.DataFrame,
    champions: pd.DataFrame,
    series_scores: pd.DataFrame,
    backtest: Mapping[str, Any],
    interval: float,
) -> pd.DataFrame:
    """Per series: ``trust_grade`` (A-D) and ``trust_note`` (the weaknesses, or 'no weakness').

    ``history`` is processed/features.parquet (server_id, metric, date, is_imputed),
    ``champions`` models/champions.parquet, ``series_scores`` models/series_scores.parquet,
    ``backtest`` the ``backtest`` section of models/metrics.json.
    """
    key = list(SERIES_KEY)
    observed = history[~history["is_imputed"].astype(bool)]
    days = observed.groupby(key)["date"].agg(["count", "min", "max"])
    span = (days["max"] - days["min"]).dt.days + 1
    frame = pd.DataFrame(
        {"observed_days": days["count"], "missing_share": 1 - days["count"] / span}
    )
    frame = frame.join(champions.set_index(key)[["champion", "champion_mase", "baseline_mase"]])
    scores = series_scores.rename(columns={"model": "champion"}).set_index([*key, "champion"])
    frame = frame.join(scores["coverage"], on=[*key, "champion"])
    scored, horizon = int(backtest["scored_horizon_days"]), int(backtest["forecast_horizon_days"])
    notes = [_weaknesses(row, scored, horizon, interval) for row in frame.itertuples()]
    steps = np.array([sum(s for s, _ in n) for n in notes])
    grades = np.select([steps == 0, steps == 1, steps <= 3], ["A", "B", "C"], "D")
    return pd.DataFrame(
        {
            "trust_grade": grades,
            "trust_note": ["; ".join(w for _, w in n) or "no weakness" for n in notes],
        },
        index=frame.index,
    ).reset_index()


def _weaknesses(row: Any, scored: int, horizon: int, interval: float) -> list[tuple[int, str]]:
    """(grade steps, words) for each weakness of one series."""
    found: list[tuple[int, str]] = []
    if row.observed_days < LONG_HISTORY_DAYS:
        steps = 2 if row.observed_days < SHORT_HISTORY_DAYS else 1
        found.append((steps, f"{row.observed_days} days of history"))
    if row.missing_share > 0.05:
        found.append(
            (2 if row.missing_share > 0.2 else 1, f"{row.missing_share:.0%} of days missing")
        )
    if scored < horizon:
        found.append(
            (2 if scored < horizon / 2 else 1, f"backtested {scored} of {horizon} days ahead")
        )
    ratio = row.champion_mase / row.baseline_mase if row.baseline_mase else np.nan
    if pd.isna(row.champion_mase) or pd.isna(ratio):
        found.append((2, "not backtested"))
    elif ratio >= 1:
        found.append((1, "no better than seasonal-naive in the backtest"))
    if pd.isna(row.coverage):
        found.append((1, "interval coverage not measured"))
    elif abs(row.coverage - interval) > 0.15:
        steps = 2 if abs(row.coverage - interval) > 0.25 else 1
        found.append((steps, f"intervals covered {row.coverage:.0%} against {interval:.0%}"))
    return found


def with_trust(risk: pd.DataFrame, grades: pd.DataFrame) -> pd.DataFrame:
    """``risk`` with each series' ``trust_grade`` and ``trust_note``; the reason of a high or
    medium series graded D says that its date rests on too little."""
    key = list(SERIES_KEY)
    merged = risk.merge(grades, on=key, how="left", validate="one_to_one")
    # A series without backtest or history figures is graded as the least trusted.
    merged["trust_grade"] = merged["trust_grade"].fillna("D")
    merged["trust_note"] = merged["trust_note"].fillna("no backtest or history figures")
    weak = merged["trust_grade"].eq("D") & merged["risk_level"].isin(("high", "medium"))
    merged.loc[weak, "risk_reason"] = (
        merged.loc[weak, "risk_reason"]
        + "; trust D: the date rests on too little ("
        + merged.loc[weak, "trust_note"]
        + ")"
    )
    return merged
