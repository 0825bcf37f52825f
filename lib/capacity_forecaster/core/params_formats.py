"""Options of the monitoring-export readers (``ingest.formats``), embedded in the params schema.

``data.format`` picks one reader; ``data.timezone``, ``data.min_day_coverage``,
``data.cloudwatch_csv`` and ``data.prometheus`` are the fields of :class:`FormatOptions`.
"""

from __future__ import annotations

import re
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import Field, field_validator

from capacity_forecaster.core.params_base import ParamsSection, short_repr
from capacity_forecaster.core.vocabulary import MetricName

FormatName = Literal["samples", "cloudwatch_csv", "prometheus_json", "vm_trace"]

# Tried in order on each file's name; the first that matches names its server and metric.
# 1: an EC2 instance id, then the CloudWatch metric (`i-0abc_CPUUtilization.csv`, also after a
#    prefix, as in NAB's `iio_us-east-1_i-a2eb1cd9_NetworkIn.csv`).
# 2: an optional AWS service, the metric, then a hex resource id (NAB's
#    `ec2_cpu_utilization_5f5533.csv`, `rds_cpu_utilization_cc0c53.csv`).
DEFAULT_FILENAME_PATTERNS = (
    r"(?:^|_)(?P<server_id>i-[0-9a-f]+)_(?P<metric>[A-Za-z][A-Za-z0-9_]*)\.csv(?:\.gz)?$",
    r"^(?:(?:ec2|rds|elb|ebs|asg)_)?(?P<metric>[A-Za-z][A-Za-z0-9_]*?)_(?P<server_id>[0-9a-f]{6,})\.csv(?:\.gz)?$",
)

# CloudWatch's own metric name (AWS/EC2, AWS/RDS) and the CloudWatch agent's (CWAgent).
DEFAULT_CLOUDWATCH_METRICS: dict[str, MetricName] = {
    "CPUUtilization": "cpu_p95",
    "cpu_utilization": "cpu_p95",
    "mem_used_percent": "mem_p95",
    "disk_used_percent": "disk_p95",
}

# The contract's names and the short names people use for them.
DEFAULT_PROMETHEUS_METRICS: dict[str, MetricName] = {
    "cpu_p95": "cpu_p95",
    "mem_p95": "mem_p95",
    "disk_p95": "disk_p95",
    "cpu": "cpu_p95",
    "mem": "mem_p95",
    "memory": "mem_p95",
    "disk": "disk_p95",
}


class CloudWatchCsvOptions(ParamsSection):
    """How a folder of CloudWatch CSV exports (one metric of one instance per file) is read."""

    filename_patterns: tuple[str, ...] = Field(
        DEFAULT_FILENAME_PATTERNS,
        description="Regexes tried in order on each file name; named groups `server_id` and `metric` say what the file holds",
    )
    mapping_file: str | None = Field(
        None,
        description="Name of a CSV among the export's files (columns file, server_id, metric) naming each file's server and metric; null: use filename_patterns",
    )
    metric_names: dict[str, MetricName] = Field(
        default_factory=lambda: dict(DEFAULT_CLOUDWATCH_METRICS),
        description="CloudWatch metric name (matched ignoring case) to contract metric; files of other metrics are skipped with a warning",
    )

    @field_validator("filename_patterns")
    @classmethod
    def _patterns_name_both_groups(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        if not patterns:
            raise ValueError("give at least one filename pattern")
        for pattern in patterns:
            try:
                groups = re.compile(pattern).groupindex
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a valid regex: {exc}") from None
            if not {"server_id", "metric"} <= set(groups):
                raise ValueError(
                    f"{pattern!r} needs the named groups (?P<server_id>...) and (?P<metric>...)"
                )
        return patterns


class PrometheusOptions(ParamsSection):
    """How the series of a Prometheus ``query_range`` result become servers and metrics."""

    server_label: str = Field(
        "instance", min_length=1, description="Label whose value identifies the server"
    )
    metric_label: str = Field(
        "__name__",
        min_length=1,
        description="Label whose value names the metric (`__name__` is the metric or recording-rule name)",
    )
    metric_names: dict[str, MetricName] = Field(
        default_factory=lambda: dict(DEFAULT_PROMETHEUS_METRICS),
        description="Value of metric_label to contract metric; series of other metrics are skipped with a warning",
    )
    value_scale: float = Field(
        1.0,
        gt=0,
        le=1000,
        description="Factor applied to every value: 1 when the query returns percent, 100 when it returns fractions",
    )


class FormatOptions(ParamsSection):
    """What every format reader needs: the day boundary, the coverage a day needs, per-format options."""

    timezone: str = Field(
        "UTC",
        description="IANA time zone whose midnight starts a day; naive timestamps are local times in it",
    )
    min_day_coverage: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Share (0-1] of a day's expected samples (from the series' median interval) a day needs to count",
    )
    cloudwatch_csv: CloudWatchCsvOptions = Field(
        default_factory=CloudWatchCsvOptions,
        description="Options of the cloudwatch_csv format",
    )
    prometheus: PrometheusOptions = Field(
        default_factory=PrometheusOptions,
        description="Options of the prometheus_json format",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, timezone: str) -> str:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
            close = sorted(z for z in available_timezones() if z.lower() == timezone.lower())
            hint = f"; did you mean {close[0]!r}?" if close else " (e.g. 'UTC', 'Europe/Paris')"
            raise ValueError(f"{short_repr(timezone)} is not an IANA time zone{hint}") from None
        return timezone
