"""The daily metrics table of a live EC2 fleet: CloudWatch's own p95 of each day, per instance.

One GetMetricData query per instance and series asks for the ``p95`` statistic over one-day
periods (why: ``ingest.cloudwatch_live``). CPU is ``AWS/EC2 CPUUtilization`` by InstanceId;
memory and disk are the CloudWatch agent's series, found with ListMetrics because the agent
adds dimensions of its own (``path``, ``device``, ``fstype`` on disk; often ``ImageId``,
``InstanceType`` and more on both), and a query must name a series' exact dimensions.
Where an instance has several series of one metric on a day (several file systems, or
dimensions that changed mid-window), the day's value is their maximum: the fullest file
system is the one that fills up first.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from capacity_forecaster.core.contract import METRIC_COLUMNS
from capacity_forecaster.core.params_cloudwatch import CloudWatchSourceOptions
from capacity_forecaster.core.vocabulary import METRICS, MetricName
from capacity_forecaster.ingest.cloudwatch.aws import AwsClients, RequestLog, chunked, paginate
from capacity_forecaster.ingest.messages import for_servers, plural, warn

logger = logging.getLogger(__name__)

SOURCE = "CloudWatch"  # how messages about the metrics name their source
DAY_SECONDS = 86_400
DAILY_STAT = "p95"  # CloudWatch's percentile statistic, computed by CloudWatch per period
EC2_NAMESPACE = "AWS/EC2"
CPU_METRIC = "CPUUtilization"
# GetMetricData takes at most 500 queries and returns at most 100,800 data points a call.
MAX_QUERIES_PER_CALL = 500
MAX_DATAPOINTS_PER_CALL = 100_800


@dataclass(frozen=True)
class DayWindow:
    """The days read, first to last inclusive, each midnight to midnight at a fixed UTC offset."""

    first_day: dt.date
    last_day: dt.date
    utc_offset_hours: int = 0

    @property
    def days(self) -> int:
        """Number of days in the window."""
        return (self.last_day - self.first_day).days + 1

    @property
    def start_time(self) -> dt.datetime:
        """The first day's midnight, in UTC."""
        return self._midnight_utc(self.first_day)

    @property
    def end_time(self) -> dt.datetime:
        """The midnight after the last day, in UTC (exclusive)."""
        return self._midnight_utc(self.last_day + dt.timedelta(days=1))

    def _midnight_utc(self, day: dt.date) -> dt.datetime:
        local_midnight = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        return local_midnight - dt.timedelta(hours=self.utc_offset_hours)

    def dates(self) -> pd.DatetimeIndex:
        """Every day of the window, as naive midnights."""
        return pd.DatetimeIndex(
            pd.date_range(self.first_day, self.last_day, freq="D"), dtype="datetime64[ns]"
        )


@dataclass(frozen=True)
class MetricQuery:
    """One GetMetricData query: a series of one instance, read as daily p95."""

    query_id: str  # unique in a read; GetMetricData ids start with a lowercase letter
    server_id: str
    metric: MetricName
    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]

    def request(self) -> dict[str, Any]:
        """The query as GetMetricData takes it."""
        metric = {
            "Namespace": self.namespace,
            "MetricName": self.metric_name,
            "Dimensions": [{"Name": name, "Value": value} for name, value in self.dimensions],
        }
        return {
            "Id": self.query_id,
            "MetricStat": {"Metric": metric, "Period": DAY_SECONDS, "Stat": DAILY_STAT},
            "ReturnData": True,
        }


def agent_series(
    clients: AwsClients,
    namespace: str,
    metric_name: str,
    server_ids: Sequence[str],
    requests: RequestLog,
) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """(instance id, dimensions) of every listed series of ``metric_name`` that belongs to one
    of ``server_ids``, each series once."""
    wanted = set(server_ids)
    # Keyed by the sorted dimensions (ListMetrics may list a series more than once), valued
    # with them in the order listed: CloudWatch ignores the order, some emulators do not.
    found: dict[tuple[tuple[str, str], ...], tuple[str, tuple[tuple[str, str], ...]]] = {}
    pages = paginate(
        clients.cloudwatch,
        "cloudwatch:ListMetrics",
        requests,
        clients.max_attempts,
        Namespace=namespace,
        MetricName=metric_name,
    )
    for page in pages:
        for metric in page.get("Metrics", []):
            dimensions = tuple((d["Name"], d["Value"]) for d in metric.get("Dimensions", []))
            server = dict(dimensions).get("InstanceId")
            if server in wanted:
                found[tuple(sorted(dimensions))] = (server, dimensions)
    return list(found.values())


def keep_disk_series(
    dimensions: tuple[tuple[str, str], ...], options: CloudWatchSourceOptions
) -> bool:
    """Whether a disk series counts: not an ignored file system type, and the chosen path."""
    named = dict(dimensions)
    if named.get("fstype") in options.disk_ignore_fstypes:
        return False
    return options.disk_path is None or named.get("path") == options.disk_path


def build_queries(
    clients: AwsClients,
    server_ids: Sequence[str],
    options: CloudWatchSourceOptions,
    requests: RequestLog,
) -> list[MetricQuery]:
    """One query per instance for CPU, and one per agent series of memory and disk."""
    series: list[tuple[str, MetricName, str, str, tuple[tuple[str, str], ...]]] = [
        (server, "cpu_p95", EC2_NAMESPACE, CPU_METRIC, (("InstanceId", server),))
        for server in server_ids
    ]
    agent_metrics: tuple[tuple[MetricName, str], ...] = (
        ("mem_p95", options.memory_metric),
        ("disk_p95", options.disk_metric),
    )
    for metric, name in agent_metrics:
        for server, dimensions in agent_series(
            clients, options.agent_namespace, name, server_ids, requests
        ):
            if metric != "disk_p95" or keep_disk_series(dimensions, options):
                series.append((server, metric, options.agent_namespace, name, dimensions))
    return [MetricQuery(f"q{number}", *fields) for number, fields in enumerate(series)]


def queries_per_call(days: int) -> int:
    """Queries per GetMetricData call: at most 500, and few enough that one day-point per
    query and day fits the call's data-point cap (so a call rarely needs a second page)."""
    return max(1, min(MAX_QUERIES_PER_CALL, MAX_DATAPOINTS_PER_CALL // max(days, 1)))


def fetch_daily_values(
    clients: AwsClients,
    queries: Sequence[MetricQuery],
    window: DayWindow,
    requests: RequestLog,
    warnings: list[str],
) -> pd.DataFrame:
    """Every value returned for ``queries``: query_id, epoch_seconds (period start), value."""
    ids: list[str] = []
    stamps: list[float] = []
    values: list[float] = []
    statuses: Counter[str] = Counter()
    for batch in chunked(queries, queries_per_call(window.days)):
        requests.metric_queries += len(batch)
        for result in _metric_data_results(clients, batch, window, requests):
            statuses[result.get("StatusCode", "Complete")] += 1
            ids.extend([result["Id"]] * len(result.get("Values", [])))
            stamps.extend(stamp.timestamp() for stamp in result.get("Timestamps", []))
            values.extend(float(value) for value in result.get("Values", []))
    failed = {s: n for s, n in statuses.items() if s not in ("Complete", "PartialData")}
    if failed:
        detail = ", ".join(f"{count} {status}" for status, count in sorted(failed.items()))
        warn(warnings, SOURCE, f"GetMetricData results not complete ({detail}): values missing")
    return pd.DataFrame(
        {
            "query_id": pd.Series(ids, dtype="str"),
            "epoch_seconds": pd.Series(stamps, dtype="float64"),
            "value": pd.Series(values, dtype="float64"),
        }
    )


def _metric_data_results(
    clients: AwsClients, batch: Sequence[MetricQuery], window: DayWindow, requests: RequestLog
) -> Iterator[dict[str, Any]]:
    """The MetricDataResults of one batch, over all its pages (a query may span pages)."""
    pages = paginate(
        clients.cloudwatch,
        "cloudwatch:GetMetricData",
        requests,
        clients.max_attempts,
        MetricDataQueries=[query.request() for query in batch],
        StartTime=window.start_time,
        EndTime=window.end_time,
        ScanBy="TimestampAscending",
    )
    for page in pages:
        for message in page.get("Messages", []):
            logger.info("GetMetricData: %s %s", message.get("Code"), message.get("Value"))
        yield from page.get("MetricDataResults", [])


def daily_table(
    values: pd.DataFrame, queries: Sequence[MetricQuery], window: DayWindow
) -> pd.DataFrame:
    """The contract's metrics table: every day of the window for each instance with any value;
    per metric the day's maximum over the instance's series, NaN where it has none."""
    by_id = pd.DataFrame(
        [(q.query_id, q.server_id, q.metric) for q in queries],
        columns=["query_id", "server_id", "metric"],
    )
    long = values.merge(by_id, on="query_id", how="inner")
    offset_seconds = window.utc_offset_hours * 3600
    local_day = (long["epoch_seconds"].to_numpy() + offset_seconds) // DAY_SECONDS * DAY_SECONDS
    long["date"] = pd.to_datetime(local_day, unit="s").astype("datetime64[ns]")
    long = long[long["date"].isin(window.dates())]
    daily = long.groupby(["server_id", "date", "metric"])["value"].max().unstack("metric")
    daily = daily.reindex(columns=list(METRICS))
    servers = sorted(long["server_id"].unique())
    grid = pd.MultiIndex.from_product([servers, window.dates()], names=["server_id", "date"])
    table = daily.reindex(grid).reset_index()
    table.columns.name = None
    return table[list(METRIC_COLUMNS)].astype({m: "float64" for m in METRICS})


def missing_metric_counts(
    table: pd.DataFrame, server_ids: Sequence[str]
) -> dict[MetricName, list[str]]:
    """Per metric, the instances without any value in the window."""
    missing: dict[MetricName, list[str]] = {}
    for metric in METRICS:
        measured = set(table.loc[table[metric].notna(), "server_id"])
        missing[metric] = [server for server in server_ids if server not in measured]
    return missing


def warn_missing(
    missing: Mapping[MetricName, list[str]],
    total: int,
    options: CloudWatchSourceOptions,
    warnings: list[str],
) -> None:
    """One line for instances without CPU, one for those without agent memory or disk."""
    if missing["cpu_p95"]:
        warn(
            warnings,
            SOURCE,
            f"{EC2_NAMESPACE} {CPU_METRIC}: no {DAILY_STAT} in the window for "
            f"{len(missing['cpu_p95'])} of {plural(total, 'instance')}; those without any "
            f"metric are left out{for_servers(pd.Series(missing['cpu_p95']))}",
        )
    without_agent = sorted(set(missing["mem_p95"]) | set(missing["disk_p95"]))
    if without_agent:
        warn(
            warnings,
            SOURCE,
            f"{options.agent_namespace}: no {options.memory_metric} for "
            f"{len(missing['mem_p95'])} and no {options.disk_metric} for "
            f"{len(missing['disk_p95'])} of {plural(total, 'instance')} (agent not publishing "
            f"them, or no {DAILY_STAT} in the window): memory or disk left empty (NaN)"
            f"{for_servers(pd.Series(without_agent))}",
        )


def read_daily_metrics(
    clients: AwsClients,
    server_ids: Sequence[str],
    options: CloudWatchSourceOptions,
    window: DayWindow,
    requests: RequestLog,
) -> tuple[pd.DataFrame, dict[str, Any], list[str]]:
    """The daily metrics table of ``server_ids`` over ``window``, with counts and warnings."""
    warnings: list[str] = []
    queries = build_queries(clients, server_ids, options, requests)
    values = fetch_daily_values(clients, queries, window, requests, warnings)
    table = daily_table(values, queries, window)
    missing = missing_metric_counts(table, server_ids)
    warn_missing(missing, len(server_ids), options, warnings)
    counts: dict[str, Any] = {
        "instances_without_values": {metric: len(ids) for metric, ids in missing.items()},
        "metric_series": dict(sorted(Counter(q.metric for q in queries).items())),
    }
    logger.info(
        "%s: %d instances x %d days of daily %s (%s)",
        SOURCE,
        table["server_id"].nunique(),
        window.days,
        DAILY_STAT,
        ", ".join(f"{m} {n} series" for m, n in counts["metric_series"].items()),
    )
    return table, counts, warnings
