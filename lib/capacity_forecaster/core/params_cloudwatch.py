"""Options of the live CloudWatch source: which EC2 instances, which metrics, how far back.

Read by ``ingest.cloudwatch_live.read_cloudwatch``. Every field carries a ``description``,
since the params reference is generated from them; unknown keys are errors.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from capacity_forecaster.core.params_base import ParamsSection

# CloudWatch keeps 1-hour data for 455 days; the oldest day of the window must lie wholly
# inside that (the window ends yesterday, so its first day starts lookback_days + a part of
# today ago): 454 days at most.
MAX_LOOKBACK_DAYS = 454

InstanceState = Literal["pending", "running", "stopping", "stopped"]
InstanceId = Annotated[str, StringConstraints(pattern=r"^i-[0-9a-f]{8,17}$")]
TagKey = Annotated[str, StringConstraints(min_length=1, max_length=128)]
CloudWatchMetricName = Annotated[str, StringConstraints(min_length=1, max_length=255)]
MonthlyPriceUsd = Annotated[float, Field(ge=0, le=1_000_000)]


class CloudWatchSourceOptions(ParamsSection):
    """Where and what to read from EC2 and CloudWatch for ``data.source: cloudwatch``."""

    region: str | None = Field(
        None,
        pattern=r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$",
        description="AWS region of the fleet, e.g. `eu-west-1`; null: the region of the AWS config or environment",
    )
    endpoint_url: str | None = Field(
        None,
        pattern=r"^https?://",
        description="Endpoint serving both the EC2 and CloudWatch APIs (a test server or a compatible service); null: AWS",
    )
    lookback_days: int = Field(
        90,
        ge=1,
        le=MAX_LOOKBACK_DAYS,
        description="Days of daily P95 read, ending with end_date; at most 454, CloudWatch keeps hourly data 455 days",
    )
    utc_offset_hours: int = Field(
        0,
        ge=-12,
        le=14,
        description="Days run from midnight to midnight at this fixed offset from UTC (0: UTC days)",
    )
    business_unit_tag: TagKey = Field(
        "BusinessUnit", description="EC2 tag key holding a server's business unit"
    )
    environment_tag: TagKey = Field(
        "Environment", description="EC2 tag key holding a server's environment (e.g. prod)"
    )
    criticality_tag: TagKey = Field(
        "Criticality",
        description="EC2 tag key holding a server's criticality (critical, high, medium, low; read lowercased)",
    )
    instance_ids: tuple[InstanceId, ...] = Field(
        (), description="Read only these instances; empty: every instance the other filters keep"
    )
    instance_tags: dict[TagKey, tuple[str, ...]] = Field(
        {},
        description="Read only instances with these tags: tag key -> accepted values, e.g. `{Team: [payments, search]}`",
    )
    instance_states: tuple[InstanceState, ...] = Field(
        ("running",),
        min_length=1,
        description="Read only instances in these states (terminated instances have no capacity left to plan)",
    )
    agent_namespace: CloudWatchMetricName = Field(
        "CWAgent", description="CloudWatch namespace the CloudWatch agent publishes to"
    )
    memory_metric: CloudWatchMetricName = Field(
        "mem_used_percent", description="Agent metric of memory used, in percent"
    )
    disk_metric: CloudWatchMetricName = Field(
        "disk_used_percent", description="Agent metric of file system space used, in percent"
    )
    disk_path: str | None = Field(
        None,
        min_length=1,
        description="Read disk use of this mount path only (e.g. `/`); null: the fullest file system each day",
    )
    disk_ignore_fstypes: tuple[str, ...] = Field(
        ("tmpfs", "devtmpfs", "overlay", "squashfs", "iso9660"),
        description="File system types left out of disk use (memory-backed or read-only images, always full)",
    )
    monthly_cost_usd: dict[str, MonthlyPriceUsd] = Field(
        {},
        description="USD per month by instance type, e.g. `{m5.large: 70.08}`; a type left out costs 0.0 (unknown) with a warning",
    )
    retry_mode: Literal["standard", "adaptive"] = Field(
        "adaptive",
        description="botocore retry mode: adaptive also slows the client down when AWS throttles",
    )
    max_attempts: int = Field(
        10,
        ge=1,
        le=30,
        description="Attempts per AWS request, the first included, before a throttled or failed call stops the run",
    )
