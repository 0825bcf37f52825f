"""The synthetic fleets the stage 01 tests share: with defects, without, and one for patterns."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from capacity_forecaster.core.params import SyntheticParams

DEFECTS = SyntheticParams(
    n_servers=20, days=400, end_date=dt.date(2026, 6, 30), outlier_share=0.005, missing_share=0.02
)
CLEAN = DEFECTS.model_copy(update={"outlier_share": 0.0, "missing_share": 0.0})
# Pattern tests average over a fleet big enough for the effect to beat server-to-server noise.
PATTERNS = CLEAN.model_copy(update={"n_servers": 60})


def expected_server_days(servers: pd.DataFrame, params: SyntheticParams) -> int:
    """Server-days in the window, each server counted from its commissioning date."""
    end = pd.Timestamp(params.end_date)
    start = end - pd.Timedelta(days=params.days - 1)
    first = servers["commissioned_date"].clip(lower=start)
    return int(((end - first).dt.days + 1).sum())
