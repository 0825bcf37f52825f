"""Stage 02's inputs, whatever their source: tables to validate and what reading them found.

``data.source`` and ``data.format`` pick the path: the synthetic fleet or a user's daily table
(read as they are), a monitoring export (``formats``: read file by file, aggregated to daily
P95), or a live EC2 fleet (``cloudwatch_live``). Every path ends in the same raw tables, which
stage 02 validates alike; the export readers' counts travel on to validated/quality.json.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from capacity_forecaster.core import catalog
from capacity_forecaster.core.contract import SERVER_CAPACITY_COLUMNS
from capacity_forecaster.core.params import Params
from capacity_forecaster.core.storage import RunStorage, list_source, read_source
from capacity_forecaster.ingest.cloudwatch_live import read_cloudwatch
from capacity_forecaster.ingest.formats import FormatResult, read_export
from capacity_forecaster.ingest.messages import col, examples, plural, warn
from capacity_forecaster.ingest.read import DERIVED_ROWS, read_table

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawFleet:
    """The fleet as read, before validation."""

    metrics: pd.DataFrame
    servers: pd.DataFrame
    metrics_source: str  # the file, folder or service named in messages
    servers_source: str
    # source, format, the files read, and the export reader's counts (quality.json "source")
    summary: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def read_fleet(params: Params, storage: RunStorage, stage: str) -> RawFleet:
    """The metrics and servers tables from where ``params.data`` says, read but not validated."""
    data = params.data
    if data.source == "cloudwatch":
        result = read_cloudwatch(data.cloudwatch)
        where = f"cloudwatch ({data.cloudwatch.region or 'default region'})"
        return RawFleet(
            result.metrics,
            result.servers,
            where,
            f"{where} EC2 inventory",
            {"source": "cloudwatch", "format": "daily", "counts": result.counts},
            list(result.warnings),
        )
    if data.format != "daily":
        return _read_export(params)
    inputs = catalog.read_inputs(storage, stage, params)
    (metrics_source, metrics_bytes), (servers_source, servers_bytes) = (
        inputs["metrics"],
        inputs["servers"],
    )
    warnings: list[str] = []
    return RawFleet(
        read_table(metrics_bytes, metrics_source, warnings),
        read_table(servers_bytes, servers_source, warnings),
        metrics_source,
        servers_source,
        {"source": data.source, "format": "daily", "files": [metrics_source, servers_source]},
        warnings,
    )


def _read_export(params: Params) -> RawFleet:
    """A monitoring export: every file under ``metrics_path``, read by ``data.format``'s reader,
    and the inventory of ``servers_path`` with the capacity the export reports laid over it."""
    data, s3 = params.data, params.storage.s3
    assert data.metrics_path and data.servers_path  # the schema requires both for source file
    # The inventory may sit in the export's folder: it is not one of the export's files.
    names = [n for n in list_source(data.metrics_path, s3) if not _same(n, data.servers_path)]
    logger.info("%s: %s (format %s)", data.metrics_path, plural(len(names), "file"), data.format)
    result = read_export(data.format, [(name, read_source(name, s3)) for name in names], data)
    warnings = list(result.warnings)
    inventory = read_table(read_source(data.servers_path, s3), data.servers_path, warnings)
    servers = overlay_export_capacity(inventory, result, data.servers_path, warnings)
    # Named after metrics_path, but its rows are server-days, no lines of the export's files.
    result.metrics.attrs[DERIVED_ROWS] = True
    summary = {
        "source": "file",
        "format": data.format,
        "files": [data.metrics_path, data.servers_path],
        "export_files": len(names),
        "counts": result.counts,
    }
    return RawFleet(
        result.metrics, servers, data.metrics_path, data.servers_path, summary, warnings
    )


def _same(location: str, other: str) -> bool:
    """Whether two locations (local paths or s3:// URIs) name the same file."""
    if location.startswith("s3://") or other.startswith("s3://"):
        return location == other
    return os.path.normpath(location) == os.path.normpath(other)


def overlay_export_capacity(
    inventory: pd.DataFrame, result: FormatResult, inventory_source: str, warnings: list[str]
) -> pd.DataFrame:
    """The inventory with the capacity the export measured (vm_trace: cores, memory) in place of
    the inventory's own: what the server was provisioned with when last seen is the truth.
    Servers whose capacity changes are named in a warning."""
    exported = result.servers.set_index("server_id")
    capacity = [c for c in SERVER_CAPACITY_COLUMNS if c in exported.columns]
    if not capacity or "server_id" not in inventory.columns:
        return inventory  # nothing to lay over, or validation names the missing column
    merged = inventory.copy()
    ids = merged["server_id"].astype("str").str.strip()
    changed: set[str] = set()
    for column in capacity:
        measured = ids.map(exported[column].dropna())
        if column in merged.columns:
            listed = pd.to_numeric(merged[column], errors="coerce")
            # Within 2 % is the same size told two ways (3 GB listed, 2.998 GB visible to the OS).
            differs = (
                measured.notna() & listed.notna() & (measured - listed).abs().gt(0.02 * listed)
            )
            changed |= set(ids[differs])
            merged[column] = measured.where(measured.notna(), merged[column])
        else:
            merged[column] = measured
    if changed:
        warn(
            warnings,
            inventory_source,
            f"{col('cpu_cores')}/{col('memory_gb')}: {plural(len(changed), 'server')} provisioned "
            f"differently in the export than in the inventory{examples(sorted(changed))}; "
            "the export's latest capacity is used",
        )
    return merged
