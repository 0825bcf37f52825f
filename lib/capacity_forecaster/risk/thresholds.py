"""The threshold each series is judged against.

Per server x metric: the strictest of the metric default and any ``criticality`` /
``environment`` override that matches the server (a looser override never relaxes the default).
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd

from capacity_forecaster.core.params import RiskParams
from capacity_forecaster.core.vocabulary import METRICS, SERIES_KEY, MetricName

logger = logging.getLogger(__name__)

__all__ = ["OVERRIDE_KINDS", "thresholds_for", "with_thresholds"]

OVERRIDE_KINDS: tuple[Literal["criticality", "environment"], ...] = ("criticality", "environment")


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
        values = table["server_id"].map(attributes[kind]).astype(str)
        merged = pd.DataFrame({kind: values, "metric": table["metric"]}).merge(
            _override_table(kind, groups), on=[kind, "metric"], how="left"
        )
        table["threshold"] = np.fmin(table["threshold"].to_numpy(), merged["override"].to_numpy())
    return table


def _override_table(kind: str, groups: dict[str, dict[MetricName, float]]) -> pd.DataFrame:
    """One row per (group, metric) override: columns ``kind``, metric, override."""
    rows = [
        (group, metric, value)
        for group, metrics in groups.items()
        for metric, value in metrics.items()
    ]
    overrides = pd.DataFrame(rows, columns=[kind, "metric", "override"])
    overrides[kind] = overrides[kind].astype(str)
    return overrides


def with_thresholds(
    champion: pd.DataFrame, servers: pd.DataFrame, params: RiskParams
) -> pd.DataFrame:
    """``champion`` with each series' threshold; the metric default (and a warning) for series
    whose server is missing from ``servers``."""
    series = list(SERIES_KEY)
    champion = champion.merge(thresholds_for(servers, params), on=series, how="left")
    unknown = champion["threshold"].isna()
    if unknown.any():
        logger.warning(
            "06_risk: %d series have no server in the servers frame: default thresholds used",
            champion.loc[unknown].groupby(series).ngroups,
        )
        champion.loc[unknown, "threshold"] = champion.loc[unknown, "metric"].map(params.thresholds)
    return champion
