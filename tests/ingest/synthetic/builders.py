"""The synthetic fleets the stage 01 tests share: with defects, without, and one for patterns."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from capacity_forecaster.core.calendar_windows import window_flags
from capacity_forecaster.core.params import SyntheticParams
from capacity_forecaster.core.params_calendar import CalendarParams

DEFECTS = SyntheticParams(
    n_servers=20, days=400, end_date=dt.date(2026, 6, 30), outlier_share=0.005, missing_share=0.02
)
CLEAN = DEFECTS.model_copy(update={"outlier_share": 0.0, "missing_share": 0.0})
# Pattern tests average over a fleet big enough for the effect to beat server-to-server noise.
PATTERNS = CLEAN.model_copy(update={"n_servers": 60})
# Month-end rises: half of a fleet over the spring of 2026 (May ends on a weekend; in India,
# 31 March 2026 is a public holiday), beside the same fleet without them.
MONTH_END = CLEAN.model_copy(update={"n_servers": 40, "days": 150, "month_end_share": 0.5})
NO_MONTH_END = MONTH_END.model_copy(update={"month_end_share": 0.0})


def expected_server_days(servers: pd.DataFrame, params: SyntheticParams) -> int:
    """Server-days in the window, each server counted from its commissioning date."""
    end = pd.Timestamp(params.end_date)
    start = end - pd.Timedelta(days=params.days - 1)
    first = servers["commissioned_date"].clip(lower=start)
    return int(((end - first).dt.days + 1).sum())


def window_days(index: pd.Index, servers: pd.DataFrame, name: str) -> np.ndarray:
    """Per (server_id, date) of ``index``, True on a day of the default calendar's window
    ``name`` in the server's country."""
    country = servers.set_index("server_id")["country"]
    ids, dates = index.get_level_values("server_id"), index.get_level_values("date")
    flags = np.zeros(len(index), dtype=bool)
    for server_id in ids.unique():
        rows = np.flatnonzero(ids == server_id)
        flags[rows] = window_flags(dates[rows], country[server_id], CalendarParams())[name]
    return flags
