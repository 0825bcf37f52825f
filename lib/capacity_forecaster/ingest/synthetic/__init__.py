"""Stage 01: a synthetic, realistic enterprise fleet, deterministic by seed. No I/O here.

The modules, in the order the generator uses them:

- ``inventory``: the servers (business unit, region, environment, size, cost, commissioning);
- ``month_end``: which servers rise at month end, by how much, and which breach only then;
- ``seasonality``: the calendar's effects on load (weekly, yearly, quarter-end, month-end,
  holidays), on the business calendar's windows in each server's country;
- ``utilisation``: each server's archetype, then its CPU, memory and disk series (trend, noise,
  memory leaks with restarts, disk growth with cleanups, hot servers heading for a breach);
- ``defects``: missing rows, outliers and NaN values injected after the series are drawn;
- ``metrics``: ``generate_metrics``, the daily metrics table from the steps above;
- ``fleet``: ``generate_fleet``, servers and metrics from a params section and a seed;
- ``checks``: ``check_generated``, the stage's post-conditions.
"""

from __future__ import annotations

from capacity_forecaster.ingest.synthetic.checks import check_generated
from capacity_forecaster.ingest.synthetic.fleet import generate_fleet
from capacity_forecaster.ingest.synthetic.inventory import generate_servers
from capacity_forecaster.ingest.synthetic.metrics import generate_metrics

__all__ = ["check_generated", "generate_fleet", "generate_metrics", "generate_servers"]
