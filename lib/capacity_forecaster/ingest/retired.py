"""Servers that are not running, or no longer report: set aside before anything is forecast.

- An all-zero day (every value the server reports that day is exactly 0: powered off, or the
  agent down) is no measurement of load. It is left out of training and utilisation
  statistics, and counted per server.
- A server whose every day is all-zero is "powered off".
- A server whose last value lies more than ``stale_after_days`` before the fleet's last day
  is "stale" (retired, or its monitoring broke): forecasting it from old data would date its
  risk wrongly.

- A server every one of whose values lies within 0..1 while the rest of the fleet is in
  percent reports fractions, not percent: judged on those values it would look idle and be
  decommissioned. It is set aside to have its export's units checked.

All three leave the metrics table with a warning and are listed with their reason (and
last-seen date) in validated/quality.json and the reports: powered-off and stale servers as
reclamation candidates.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pandas as pd

from capacity_forecaster.core.contract import monitored_metrics
from capacity_forecaster.ingest.messages import examples, plural, warn

# The columns of the set-aside table (quality.json "reclamation" and the reports).
SET_ASIDE_COLUMNS = ("server_id", "reason", "last_seen", "all_zero_days")
# What the reports show of a set-aside server, from the inventory.
RECLAIM_INVENTORY = ("business_unit", "region", "monthly_cost_usd")
POWERED_OFF = "powered off"
STALE = "stale"
FRACTIONS = "values look like fractions (0-1): check the export's units"
RECLAIMABLE = (POWERED_OFF, STALE)
# A fleet "in percent" has half its servers peaking above this.
PERCENT_FLEET_MEDIAN_PEAK = 5.0


class OffAndStale(NamedTuple):
    """The metrics left to forecast, the servers set aside, and all-zero days per server."""

    metrics: pd.DataFrame
    set_aside: pd.DataFrame  # SET_ASIDE_COLUMNS; last_seen is None for a powered-off server
    all_zero_days: dict[str, int]


def set_aside_off_and_stale(
    metrics: pd.DataFrame, source: str, stale_after_days: int, warnings: list[str]
) -> OffAndStale:
    """Drop all-zero days, then set aside powered-off and stale servers (module docstring)."""
    monitored = monitored_metrics(metrics)
    values = metrics[monitored]
    zero = values.notna().any(axis=1) & values.fillna(0.0).eq(0.0).all(axis=1)
    zero_days = metrics.loc[zero].groupby("server_id").size()
    kept = metrics.loc[~zero]
    reporting = kept[values.loc[~zero].notna().any(axis=1)]
    last_seen = reporting.groupby("server_id")["date"].max()
    powered_off = sorted(set(zero_days.index) - set(last_seen.index))
    stale = (
        last_seen[last_seen < last_seen.max() - pd.Timedelta(days=stale_after_days)]
        if len(last_seen)
        else last_seen
    )
    if zero.any():
        warn(
            warnings,
            source,
            f"{plural(int(zero.sum()), 'all-zero server-day')} (powered off, or no agent) on "
            f"{plural(len(zero_days), 'server')}{examples(list(zero_days.index))}: left out of "
            "training and utilisation statistics",
        )
    if powered_off:
        warn(
            warnings,
            source,
            f"{plural(len(powered_off), 'server')} all-zero throughout, set aside as powered "
            f"off{examples(powered_off)}: reclamation candidates, not forecast",
        )
    if len(stale):
        warn(
            warnings,
            source,
            f"{plural(len(stale), 'server')} without a value in the last {stale_after_days} "
            f"days of the fleet (data.stale_after_days), set aside as stale"
            f"{examples([f'{s} last seen {d.date()}' for s, d in stale.items()])}: "
            "reclamation candidates, not forecast",
        )
    set_aside = pd.DataFrame(
        [(s, POWERED_OFF, None, int(zero_days[s])) for s in powered_off]
        + [(s, STALE, d.date().isoformat(), int(zero_days.get(s, 0))) for s, d in stale.items()],
        columns=list(SET_ASIDE_COLUMNS),
    )
    gone = set(powered_off) | set(stale.index)
    kept = kept[~kept["server_id"].isin(gone)].reset_index(drop=True)
    fractions = fraction_servers(kept[["server_id", *monitored]])
    if fractions:
        warn(
            warnings,
            source,
            f"{plural(len(fractions), 'server')} with every value within 0..1 while the fleet "
            f"is in percent{examples(fractions)}: set aside, not forecast nor judged idle; "
            "check the export's units",
        )
        rows = [(s, FRACTIONS, None, int(zero_days.get(s, 0))) for s in fractions]
        set_aside = pd.concat(
            [set_aside, pd.DataFrame(rows, columns=list(SET_ASIDE_COLUMNS))], ignore_index=True
        )
        kept = kept[~kept["server_id"].isin(fractions)].reset_index(drop=True)
    return OffAndStale(kept, set_aside, {str(s): int(n) for s, n in zero_days.items()})


def fraction_servers(metrics: pd.DataFrame) -> list[str]:
    """Servers whose every value is within 0..1 while half the fleet peaks above
    ``PERCENT_FLEET_MEDIAN_PEAK`` percent (an idle server still uses some memory)."""
    peaks = metrics.groupby("server_id").max(numeric_only=True).max(axis=1).dropna()
    if len(peaks) < 3 or peaks.median() <= PERCENT_FLEET_MEDIAN_PEAK:
        return []
    return sorted(str(s) for s in peaks.index[peaks <= 1.0])


def set_aside_records(
    set_aside: pd.DataFrame, servers: pd.DataFrame | None = None
) -> list[dict[str, Any]]:
    """The set-aside table as JSON-ready rows (quality.json "reclamation"): null last_seen for
    a powered-off server; with the validated ``servers``, each row's business unit, region
    and monthly cost (what reclaiming it would save)."""
    inventory: dict[Any, dict[Any, Any]] = {}
    if servers is not None:
        columns = [c for c in RECLAIM_INVENTORY if c in servers.columns]
        inventory = servers.set_index("server_id")[columns].to_dict("index")
    records: list[dict[str, Any]] = []
    for row in set_aside.to_dict("records"):
        record: dict[str, Any] = {
            "server_id": str(row["server_id"]),
            "reason": str(row["reason"]),
            "last_seen": None if pd.isna(row["last_seen"]) else str(row["last_seen"]),
            "all_zero_days": int(row["all_zero_days"]),
        }
        if servers is not None:
            known = inventory.get(row["server_id"], {})
            for column in RECLAIM_INVENTORY:
                value = known.get(column)
                record[column] = None if value is None or pd.isna(value) else value
            if record["monthly_cost_usd"] is not None:
                record["monthly_cost_usd"] = float(record["monthly_cost_usd"])
        records.append(record)
    return records
