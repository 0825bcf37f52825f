"""Readers of monitoring exports: each turns one format into the daily contract.

A format reader receives the export's files as ``(name, bytes)`` pairs (storage lists and reads
them, locally or from S3) and returns a :class:`FormatResult`: the daily metrics table of
``core.contract.METRIC_COLUMNS`` (a metric the export does not have is a column of NaN), what
the export says about each server, and counts of what it dropped or changed, so stage 02 can
validate the result like any daily table and report every count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

# One input file of an export: its name (path or s3:// URI, for messages) and its bytes.
SourceFile = tuple[str, bytes]


@dataclass(frozen=True)
class FormatResult:
    """A monitoring export, read and aggregated to the daily contract."""

    # date (datetime64, midnight of the local day), server_id (str), cpu_p95, mem_p95,
    # disk_p95 (float percent, NaN where the export has no value for that day).
    metrics: pd.DataFrame
    # server_id plus what the export knows of each server (e.g. cpu_cores, memory_gb);
    # stage 02 merges it with the inventory file, the export's capacity winning.
    servers: pd.DataFrame
    # JSON-ready counts of what reading dropped or changed, e.g. {"duplicate_rows": 12,
    # "partial_days": {"vm1": 3}}; stage 02 writes them to validated/quality.json.
    counts: dict[str, Any] = field(default_factory=dict)
    # One line per thing the user should know (already logged as warnings).
    warnings: list[str] = field(default_factory=list)


# Imported last: the readers import FormatResult and SourceFile from this module.
from capacity_forecaster.ingest.formats.dispatch import read_export  # noqa: E402

__all__ = ["FormatResult", "SourceFile", "read_export"]
