"""``data.source: cloudwatch``: a live EC2 fleet and its daily P95s, read from EC2 and CloudWatch.

:func:`read_cloudwatch` returns the same :class:`FormatResult` as an export reader: the
servers table from EC2 (``ingest.cloudwatch.inventory``) and the daily metrics table from
CloudWatch (``ingest.cloudwatch.daily``); calls, retries and errors are in
``ingest.cloudwatch.aws``.

Why CloudWatch's own ``p95`` statistic at a one-day period, rather than fine samples
aggregated here to a daily P95:

- Exactness. CloudWatch computes a percentile from the values it holds for the period; the
  samples a client can fetch are already aggregates (a 5-minute or 1-hour Average or
  Maximum), and only within retention: 1-minute data lives 15 days, 5-minute data 63 days,
  1-hour data 455 days. Over a 90-day window a P95 computed here would be, for its oldest
  month, a P95 of hourly averages, which smooths away the peaks a P95 is meant to catch.
- Requests and cost at 10,000 instances over 90 days. Daily p95: one query per instance and
  series (CPU, memory, one per file system: about 30,000 to 50,000), 500 per call, so 60 to
  100 GetMetricData calls returning 90 points a series. Samples: 25,920 five-minute points
  per series against a cap of 100,800 points per call, so three series a call, over 10,000
  calls and a billion points to download and sort. GetMetricData is billed per metric
  queried, so the fewer, smaller daily calls also cost least (well under a dollar a run).
- Limits. Percentiles need raw values: a series published as statistic sets (SampleCount
  above 1) has no p95, and is reported like a series the agent does not publish (NaN and
  a warning). ``lookback_days`` is at most 454 so the oldest day is inside 1-hour retention.

Days run from midnight to midnight UTC, or at a fixed whole-hour offset
(``utc_offset_hours``): a CloudWatch period is a fixed 86,400 s, so a zone with daylight
saving (23- and 25-hour days) cannot be followed, and CloudWatch rounds the start of data
older than 63 days down to the hour, which a whole-hour offset survives.
"""

from __future__ import annotations

import datetime as dt
import logging

from capacity_forecaster.core.params_cloudwatch import CloudWatchSourceOptions
from capacity_forecaster.ingest.cloudwatch.aws import (
    CloudWatchSourceError,
    RequestLog,
    open_clients,
)
from capacity_forecaster.ingest.cloudwatch.daily import DayWindow, read_daily_metrics
from capacity_forecaster.ingest.cloudwatch.inventory import (
    describe_instances,
    instance_filters,
    read_servers,
)
from capacity_forecaster.ingest.formats import FormatResult
from capacity_forecaster.ingest.messages import warn

__all__ = ["CloudWatchSourceError", "read_cloudwatch"]

logger = logging.getLogger(__name__)

SOURCE = "CloudWatch"
RETENTION_DAYS = 455  # CloudWatch keeps 1-hour data this long; nothing older exists


def read_cloudwatch(
    options: CloudWatchSourceOptions, *, end_date: dt.date | None = None
) -> FormatResult:
    """Read a live EC2 fleet and its daily P95 CPU, memory and disk from CloudWatch.

    Args:
        options: which instances, tags, metrics and days; AWS credentials come from the
            default chain (environment, shared config, SSO, instance role).
        end_date: last day read; default yesterday (the last complete day) at the offset.

    Returns:
        The metrics and servers tables, counts (including the AWS calls made) and warnings.

    Raises:
        CloudWatchSourceError: no region, credentials or instances; a call denied, failed or
            still throttled after ``options.max_attempts`` attempts; no data at all.
    """
    window = day_window(end_date, options.lookback_days, options.utc_offset_hours)
    warnings = retention_warnings(window, _today(options.utc_offset_hours))
    clients = open_clients(options)
    requests = RequestLog()
    instances = describe_instances(clients, options, requests)
    if instances.empty:
        raise CloudWatchSourceError(
            f"EC2: no instances in region {clients.region} match the filters "
            f"{instance_filters(options)}; check region, instance_states, instance_tags "
            "and instance_ids"
        )
    servers, server_counts, server_warnings = read_servers(clients, instances, options, requests)
    server_ids = servers["server_id"].tolist()
    metrics, metric_counts, metric_warnings = read_daily_metrics(
        clients, server_ids, options, window, requests
    )
    logger.info("%s requests: %s", SOURCE, requests.summary())
    if metrics.empty:
        raise CloudWatchSourceError(
            f"{SOURCE}: no data for any of {len(server_ids)} instances from "
            f"{window.first_day} to {window.last_day} in region {clients.region}"
        )
    counts = {
        "window": {"first_day": str(window.first_day), "last_day": str(window.last_day)},
        **server_counts,
        **metric_counts,
        "aws_requests": requests.as_counts(),
    }
    return FormatResult(metrics, servers, counts, [*warnings, *server_warnings, *metric_warnings])


def day_window(end_date: dt.date | None, lookback_days: int, utc_offset_hours: int) -> DayWindow:
    """The ``lookback_days`` days ending with ``end_date`` (default: yesterday at the offset)."""
    last_complete_day = _today(utc_offset_hours) - dt.timedelta(days=1)
    last_day = last_complete_day if end_date is None else end_date
    if last_day > last_complete_day:
        raise CloudWatchSourceError(
            f"end_date {last_day} is not a complete day yet; the latest is {last_complete_day}"
        )
    first_day = last_day - dt.timedelta(days=lookback_days - 1)
    return DayWindow(first_day, last_day, utc_offset_hours)


def retention_warnings(window: DayWindow, today: dt.date) -> list[str]:
    """A warning when the window starts before CloudWatch's retention (an old end_date)."""
    warnings: list[str] = []
    oldest_kept = today - dt.timedelta(days=RETENTION_DAYS - 1)
    if window.first_day < oldest_kept:
        warn(
            warnings,
            SOURCE,
            f"days before {oldest_kept} are older than CloudWatch keeps data "
            f"({RETENTION_DAYS} days) and will be empty; window {window.first_day} to "
            f"{window.last_day}",
        )
    return warnings


def _today(utc_offset_hours: int) -> dt.date:
    """Today's date at the offset."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=utc_offset_hours)).date()
