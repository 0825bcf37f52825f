"""The one urgency order every report and plot uses, and the top of it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from capacity_forecaster.core.vocabulary import AT_RISK_LEVELS, CRITICALITIES, RISK_LEVELS

__all__ = ["rank_at_risk", "urgency_order"]

LEVEL_RANK = {level: i for i, level in enumerate(RISK_LEVELS)}  # high first
CRITICALITY_RANK = {criticality: i for i, criticality in enumerate(CRITICALITIES)}


def urgency_order(risk: pd.DataFrame) -> np.ndarray:
    """Row positions by urgency: level, days to breach, upper-bound days, probability,
    criticality, then ids (so the order never depends on row order)."""
    keys = pd.DataFrame(
        {
            "level": risk["risk_level"].map(LEVEL_RANK),
            "days": risk["days_to_breach"].fillna(np.inf),
            "days_upper": risk["days_to_breach_upper"].fillna(np.inf),
            "probability": -risk["breach_probability"],
            "criticality": risk["criticality"].map(CRITICALITY_RANK).fillna(len(CRITICALITY_RANK)),
            "server_id": risk["server_id"].astype(str),
            "metric": risk["metric"].astype(str),
        },
    ).reset_index(drop=True)
    return keys.sort_values(list(keys.columns), kind="mergesort").index.to_numpy()


def rank_at_risk(risk: pd.DataFrame, top_n: int) -> pd.DataFrame:
    """High and medium series by urgency (level, days, upper-bound days, probability, criticality)."""
    at_risk = risk[risk["risk_level"].isin(list(AT_RISK_LEVELS))]
    ranked = at_risk.iloc[urgency_order(at_risk)].reset_index(drop=True)
    ranked.insert(0, "rank", np.arange(1, len(ranked) + 1))
    return ranked.head(top_n)
