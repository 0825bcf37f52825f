"""Stage 01's entry point: a whole fleet (metrics and servers) from a params section and a seed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from capacity_forecaster.core.params import SyntheticParams
from capacity_forecaster.core.params_calendar import CalendarParams
from capacity_forecaster.ingest.synthetic.inventory import commission_in_window, generate_servers
from capacity_forecaster.ingest.synthetic.metrics import generate_metrics


def generate_fleet(
    params: SyntheticParams, seed: int, calendar: CalendarParams | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate ``(metrics, servers)`` for a params section; the same seed gives identical frames.

    About 5% of the servers are commissioned inside the window, with at least 120 days of
    history. ``calendar`` (default: the default windows) places the quarter-end surges and the
    month-end rises of ``params.month_end_share`` of the servers.
    """
    rng = np.random.default_rng(seed)
    servers = generate_servers(params.n_servers, rng)
    servers = commission_in_window(servers, params.end_date, params.days, rng)
    metrics = generate_metrics(
        servers,
        params.end_date,
        params.days,
        rng,
        outlier_share=params.outlier_share,
        missing_share=params.missing_share,
        calendar=calendar,
        month_end_share=params.month_end_share,
        month_end_uplift=params.month_end_uplift,
    )
    return metrics, servers
