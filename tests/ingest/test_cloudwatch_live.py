"""read_cloudwatch: real boto3 against a moto server on 127.0.0.1 (never real AWS).

What these tests check: the servers table from EC2 (tags, missing tags counted as
'unassigned', vCPUs and memory from DescribeInstanceTypes, EBS disk from DescribeVolumes,
region, prices and the warning for unpriced types); the daily metrics table for seeded days
(CPU, agent memory, disk as the fullest file system or one path, tmpfs ignored, values
outside the window ignored); an instance without agent metrics (NaN, named in a warning);
pagination of DescribeInstances, of GetMetricData's NextToken (botocore's Stubber: moto never
pages it) and over 500 queries (two calls); the request count in the log; a throttled call
turned into one line, from a local server on 127.0.0.1 that always answers Throttling.

What they cannot check: moto computes no percentiles, so the fixture ``moto_percentiles``
teaches the moto server in this process a nearest-rank percentile. The tests therefore prove
that we ask for ``p95`` over one-day periods and place each answer on the right server, metric
and day, but not that CloudWatch's own p95 (its interpolation, its rollups of old data) equals
a nearest-rank P95. Nor can they see real AWS limits being enforced (moto accepts more than
500 queries a call and never throttles), IAM denials, or CloudWatch's rounding of old start
times.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import logging
import math
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from botocore.stub import Stubber
from pydantic import ValidationError

from capacity_forecaster.core.params import Params
from capacity_forecaster.core.params_cloudwatch import CloudWatchSourceOptions
from capacity_forecaster.core.storage import open_run_storage
from capacity_forecaster.ingest.cloudwatch.aws import AwsClients, RequestLog, chunked, open_clients
from capacity_forecaster.ingest.cloudwatch.daily import (
    DayWindow,
    MetricQuery,
    daily_table,
    fetch_daily_values,
    queries_per_call,
)
from capacity_forecaster.ingest.cloudwatch.inventory import describe_instances
from capacity_forecaster.ingest.cloudwatch_live import CloudWatchSourceError, read_cloudwatch
from capacity_forecaster.ingest.sources import read_fleet
from capacity_forecaster.ingest.validate import validate_fleet, validate_metrics, validate_servers
from tests.conftest import FAKE_ACCESS_KEY, FAKE_SECRET_KEY

# Each scenario seeds its own region of the shared moto server, so none sees another's data.
FLEET_REGION = "ap-southeast-2"
PAGED_REGION = "ca-central-1"
WIDE_REGION = "sa-east-1"
EMPTY_REGION = "eu-north-1"
AMI = "ami-12c6146b"
TODAY = dt.datetime.now(dt.UTC).date()
LAST_DAY = TODAY - dt.timedelta(days=2)
DAYS = (LAST_DAY - dt.timedelta(days=1), LAST_DAY)  # the two days read (lookback_days=2)
SAMPLES_PER_DAY = 20
LOGGER = "capacity_forecaster.ingest.cloudwatch_live"


def nearest_rank(values: list[float], percent: float) -> float:
    """The nearest-rank percentile: the smallest value with ``percent`` % at or below it."""
    ordered = sorted(values)
    return ordered[max(math.ceil(percent / 100 * len(ordered)), 1) - 1]


def day_samples(base: float) -> list[float]:
    """A day's 20 samples, base .. base+19: nearest-rank p95 base+18, maximum base+19."""
    return [base + i for i in range(SAMPLES_PER_DAY)]


def expected_p95(base: float, day_index: int) -> float:
    """The seeded p95 of a series with ``base`` on day ``day_index`` (each day 5 higher)."""
    return nearest_rank(day_samples(base + 5 * day_index), 95)


@pytest.fixture
def moto_percentiles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Teach the in-process moto server 'pNN' statistics (nearest rank over single values)."""
    from moto.cloudwatch.models import Statistics

    plain = Statistics.get_statistics_for_type

    def with_percentiles(self: Any, stat: str) -> Any:
        if stat.startswith("p"):
            return nearest_rank(self.metric_single_values_list, float(stat[1:]))
        return plain(self, stat)

    monkeypatch.setattr(Statistics, "get_statistics_for_type", with_percentiles)


def aws_client(service: str, endpoint: str, region: str) -> Any:
    """A client of the moto server with the fake credentials (usable outside ``aws_env``)."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=FAKE_ACCESS_KEY,
        aws_secret_access_key=FAKE_SECRET_KEY,
    )


def run_instance(ec2: Any, instance_type: str, tags: dict[str, str]) -> dict[str, Any]:
    """One instance in a reservation of its own, tagged."""
    reservation = ec2.run_instances(
        ImageId=AMI,
        MinCount=1,
        MaxCount=1,
        InstanceType=instance_type,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ],
    )
    return reservation["Instances"][0]


def datum(name: str, dims: dict[str, str], when: dt.datetime, value: float) -> dict[str, Any]:
    """One put_metric_data datum."""
    return {
        "MetricName": name,
        "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
        "Timestamp": when,
        "Value": value,
        "Unit": "Percent",
    }


def series_data(name: str, dims: dict[str, str], base: float) -> list[dict[str, Any]]:
    """Samples of one series through both days read (each day 5 higher), plus a spike the
    day before the window, which must not be read."""
    data = []
    for index, day in enumerate(DAYS):
        midnight = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        for i, value in enumerate(day_samples(base + 5 * index)):
            data.append(datum(name, dims, midnight + dt.timedelta(minutes=30 + 72 * i), value))
    before = dt.datetime.combine(DAYS[0], dt.time(), tzinfo=dt.UTC) - dt.timedelta(hours=1)
    data.append(datum(name, dims, before, 99.0))
    return data


def put_data(cloudwatch: Any, namespace: str, data: list[dict[str, Any]]) -> None:
    """put_metric_data in calls of at most 1,000 data."""
    for chunk in chunked(data, 1000):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=chunk)


@pytest.fixture(scope="module")
def fleet(s3_endpoint: str) -> dict[str, str]:
    """Three instances in FLEET_REGION: web (all metrics, extra EBS), batch (CPU only, no
    Criticality tag) and other (outside the Team filter). Their ids by name."""
    ec2 = aws_client("ec2", s3_endpoint, FLEET_REGION)
    cloudwatch = aws_client("cloudwatch", s3_endpoint, FLEET_REGION)
    web = run_instance(
        ec2,
        "m5.large",
        {
            "Name": "web-1",
            "Team": "capacity",
            "BusinessUnit": "payments",
            "Environment": "prod",
            "Criticality": "Critical",
        },
    )
    batch = run_instance(
        ec2, "t3.medium", {"Team": "capacity", "BusinessUnit": "analytics", "Environment": "dev"}
    )
    other = run_instance(ec2, "t3.micro", {"Team": "elsewhere"})
    volume = ec2.create_volume(Size=50, AvailabilityZone=web["Placement"]["AvailabilityZone"])
    ec2.attach_volume(VolumeId=volume["VolumeId"], InstanceId=web["InstanceId"], Device="/dev/sdf")
    ids = {"web": web["InstanceId"], "batch": batch["InstanceId"], "other": other["InstanceId"]}
    cpu = [
        *series_data("CPUUtilization", {"InstanceId": ids["web"]}, 10),
        *series_data("CPUUtilization", {"InstanceId": ids["batch"]}, 40),
        *series_data("CPUUtilization", {"InstanceId": ids["other"]}, 50),
    ]
    put_data(cloudwatch, "AWS/EC2", cpu)
    web_dims = {"InstanceId": ids["web"], "ImageId": AMI, "InstanceType": "m5.large"}
    disk = {"InstanceId": ids["web"], "device": "nvme0n1p1"}
    agent = [
        *series_data("mem_used_percent", web_dims, 60),
        *series_data("disk_used_percent", {**disk, "path": "/", "fstype": "xfs"}, 30),
        *series_data("disk_used_percent", {**disk, "path": "/data", "fstype": "ext4"}, 70),
        *series_data("disk_used_percent", {**disk, "path": "/run", "fstype": "tmpfs"}, 75),
    ]
    put_data(cloudwatch, "CWAgent", agent)
    return ids


def fleet_options(endpoint: str, **changes: Any) -> CloudWatchSourceOptions:
    """Options reading the Team=capacity instances of FLEET_REGION over DAYS."""
    settings: dict[str, Any] = {
        "region": FLEET_REGION,
        "endpoint_url": endpoint,
        "lookback_days": 2,
        "instance_tags": {"Team": ["capacity"]},
        "monthly_cost_usd": {"m5.large": 70.08},
    }
    return CloudWatchSourceOptions(**{**settings, **changes})


@pytest.mark.s3
def test_servers_table_from_tags_instance_types_and_volumes(
    s3_endpoint: str, aws_env: dict[str, str], fleet: dict[str, str], moto_percentiles: None
) -> None:
    result = read_cloudwatch(fleet_options(s3_endpoint), end_date=LAST_DAY)
    servers = result.servers.set_index("server_id")

    assert sorted(servers.index) == sorted([fleet["web"], fleet["batch"]])  # 'other' filtered
    web, batch = servers.loc[fleet["web"]], servers.loc[fleet["batch"]]
    assert (web["business_unit"], web["environment"], web["criticality"]) == (
        "payments",
        "prod",
        "critical",  # lowercased, like the risk thresholds' keys
    )
    assert batch["criticality"] == "unassigned"
    assert result.counts["unassigned_tags"] == {
        "business_unit": 0,
        "environment": 0,
        "criticality": 1,
    }
    # m5.large: 2 vCPUs, 8 GiB, 8 GB root + 50 GB attached; t3.medium: 2 vCPUs, 4 GiB, root.
    assert (web["cpu_cores"], web["memory_gb"], web["disk_gb"]) == (2, 8.0, 58)
    assert (batch["cpu_cores"], batch["memory_gb"], batch["disk_gb"]) == (2, 4.0, 8)
    assert set(servers["region"]) == {FLEET_REGION}
    assert (web["instance_type"], web["name"]) == ("m5.large", "web-1")
    assert (web["monthly_cost_usd"], batch["monthly_cost_usd"]) == (70.08, 0.0)
    assert result.counts["unpriced_instance_types"] == ["t3.medium"]
    unpriced = [w for w in result.warnings if "no monthly_cost_usd" in w]
    assert len(unpriced) == 1 and "'t3.medium'" in unpriced[0]
    assert any("missing tags (1 without Criticality)" in w for w in result.warnings)
    validate_servers(result.servers, "cloudwatch")  # the servers contract holds


@pytest.mark.s3
def test_daily_p95_per_instance_and_day(
    s3_endpoint: str,
    aws_env: dict[str, str],
    fleet: dict[str, str],
    moto_percentiles: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    result = read_cloudwatch(fleet_options(s3_endpoint), end_date=LAST_DAY)
    metrics = result.metrics.set_index(["server_id", "date"])

    assert list(result.metrics.columns) == ["date", "server_id", "cpu_p95", "mem_p95", "disk_p95"]
    assert len(metrics) == 4  # 2 instances x 2 days; the day before the window is not read
    for index, day in enumerate(DAYS):
        web = metrics.loc[(fleet["web"], pd.Timestamp(day))]
        batch = metrics.loc[(fleet["batch"], pd.Timestamp(day))]
        assert web["cpu_p95"] == expected_p95(10, index)
        assert web["mem_p95"] == expected_p95(60, index)
        # The fullest file system (/data), not the tmpfs at /run that is fuller still.
        assert web["disk_p95"] == expected_p95(70, index)
        assert batch["cpu_p95"] == expected_p95(40, index)
        assert np.isnan(batch["mem_p95"]) and np.isnan(batch["disk_p95"])

    agent_warnings = [w for w in result.warnings if w.startswith("CloudWatch: CWAgent")]
    assert len(agent_warnings) == 1
    assert (
        "no mem_used_percent for 1 and no disk_used_percent for 1 of 2 instances"
        in (agent_warnings[0])
    )
    assert fleet["batch"] in agent_warnings[0] and fleet["web"] not in agent_warnings[0]
    assert result.counts["instances_without_values"] == {
        "cpu_p95": 0,
        "mem_p95": 1,
        "disk_p95": 1,
    }
    # CPU 2 + memory 1 + disk 2 (/ and /data; tmpfs left out) = 5 queries in one call.
    assert result.counts["aws_requests"]["cloudwatch:GetMetricData"] == 1
    assert result.counts["aws_requests"]["metric_queries"] == 5
    assert "1 GetMetricData call for 5 metric queries" in caplog.text
    validate_metrics(result.metrics, "cloudwatch", max_missing_share=1.0, min_history_days=1)


@pytest.mark.s3
def test_disk_path_option_reads_that_path_only(
    s3_endpoint: str, aws_env: dict[str, str], fleet: dict[str, str], moto_percentiles: None
) -> None:
    options = fleet_options(s3_endpoint, disk_path="/", instance_ids=[fleet["web"]])
    result = read_cloudwatch(options, end_date=LAST_DAY)

    assert result.metrics["server_id"].unique().tolist() == [fleet["web"]]
    assert result.metrics["disk_p95"].tolist() == [expected_p95(30, 0), expected_p95(30, 1)]


@pytest.mark.s3
def test_describe_instances_follows_next_token(s3_endpoint: str, aws_env: dict[str, str]) -> None:
    ec2 = aws_client("ec2", s3_endpoint, PAGED_REGION)
    launched = {run_instance(ec2, "t3.micro", {"Team": "paged"})["InstanceId"] for _ in range(7)}
    options = CloudWatchSourceOptions(region=PAGED_REGION, endpoint_url=s3_endpoint)
    clients = AwsClients(ec2, None, PAGED_REGION, max_attempts=1)
    requests = RequestLog()

    # moto pages by reservation: 7 reservations at 5 a page are two pages.
    instances = describe_instances(clients, options, requests, page_size=5)

    assert set(instances["server_id"]) == launched
    assert requests.calls["ec2:DescribeInstances"] == 2


@pytest.mark.s3
def test_more_than_500_queries_take_two_calls(
    s3_endpoint: str,
    aws_env: dict[str, str],
    moto_percentiles: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ec2 = aws_client("ec2", s3_endpoint, WIDE_REGION)
    cloudwatch = aws_client("cloudwatch", s3_endpoint, WIDE_REGION)
    reservation = ec2.run_instances(ImageId=AMI, MinCount=170, MaxCount=170)
    ids = [instance["InstanceId"] for instance in reservation["Instances"]]
    noon = dt.datetime.combine(LAST_DAY, dt.time(12), tzinfo=dt.UTC)
    put_data(
        cloudwatch, "AWS/EC2", [datum("CPUUtilization", {"InstanceId": i}, noon, 5) for i in ids]
    )
    agent = [
        datum(name, {"InstanceId": i, **extra}, noon, 7)
        for i in ids
        for name, extra in (("mem_used_percent", {}), ("disk_used_percent", {"path": "/"}))
    ]
    put_data(cloudwatch, "CWAgent", agent)
    caplog.set_level(logging.INFO, logger=LOGGER)

    options = CloudWatchSourceOptions(region=WIDE_REGION, endpoint_url=s3_endpoint, lookback_days=1)
    result = read_cloudwatch(options, end_date=LAST_DAY)

    assert len(result.metrics) == 170
    assert result.metrics[["cpu_p95", "mem_p95", "disk_p95"]].eq([5.0, 7.0, 7.0]).all().all()
    assert "2 GetMetricData calls for 510 metric queries" in caplog.text


def test_queries_per_call_respects_both_getmetricdata_caps() -> None:
    assert queries_per_call(1) == 500
    assert queries_per_call(90) == 500  # 500 x 90 = 45,000 points, under 100,800
    assert queries_per_call(454) == 222  # 222 x 454 = 100,788 points
    sizes = [len(batch) for batch in chunked(range(1201), queries_per_call(90))]
    assert sizes == [500, 500, 201]


def test_getmetricdata_pages_are_merged_per_query(aws_env: dict[str, str]) -> None:
    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
    day_one = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    day_two = day_one + dt.timedelta(days=1)
    query = MetricQuery("q0", "i-0123456789abcdef0", "cpu_p95", "AWS/EC2", "CPUUtilization", ())
    window = DayWindow(dt.date(2026, 3, 1), dt.date(2026, 3, 2))
    first = {"Id": "q0", "Timestamps": [day_one], "Values": [11.0], "StatusCode": "PartialData"}
    second = {"Id": "q0", "Timestamps": [day_two], "Values": [12.0], "StatusCode": "Complete"}
    pages = [
        {"MetricDataResults": [first], "NextToken": "more"},
        {"MetricDataResults": [second]},
    ]
    requests = RequestLog()
    warnings: list[str] = []
    with Stubber(cloudwatch) as stub:
        for page in pages:
            stub.add_response("get_metric_data", page)
        clients = AwsClients(None, cloudwatch, "eu-west-1", max_attempts=1)
        values = fetch_daily_values(clients, [query], window, requests, warnings)

    table = daily_table(values, [query], window)
    assert table["cpu_p95"].tolist() == [11.0, 12.0]
    assert requests.calls["cloudwatch:GetMetricData"] == 2 and requests.metric_queries == 1
    assert warnings == []


def test_days_follow_the_utc_offset() -> None:
    window = DayWindow(dt.date(2026, 3, 1), dt.date(2026, 3, 2), utc_offset_hours=2)
    assert window.start_time == dt.datetime(2026, 2, 28, 22, tzinfo=dt.UTC)
    assert window.end_time == dt.datetime(2026, 3, 2, 22, tzinfo=dt.UTC)
    query = MetricQuery("q0", "i-0123456789abcdef0", "mem_p95", "CWAgent", "m", ())
    # CloudWatch stamps each one-day period with its start: local midnight, 22:00 UTC.
    starts = [window.start_time, window.start_time + dt.timedelta(days=1)]
    values = pd.DataFrame(
        {
            "query_id": ["q0", "q0"],
            "epoch_seconds": [s.timestamp() for s in starts],
            "value": [1.0, 2.0],
        }
    )
    table = daily_table(values, [query], window)
    assert table["date"].tolist() == [pd.Timestamp("2026-03-01"), pd.Timestamp("2026-03-02")]
    assert table["mem_p95"].tolist() == [1.0, 2.0]


class _ThrottlingHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request as a throttled AWS API would: EC2 in XML, CloudWatch in JSON or
    CBOR (whichever protocol this botocore speaks to it)."""

    requests_seen = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).requests_seen += 1
        content_type = self.headers.get("Content-Type", "")
        error = {"__type": "Throttling", "message": "Rate exceeded"}
        status = 400
        if content_type.startswith("application/x-amz-json"):
            body = json.dumps(error).encode()
            headers = {"Content-Type": content_type, "x-amzn-query-error": "Throttling;Sender"}
        elif content_type == "application/cbor":
            body = _cbor_text_map(error)
            headers = {"Content-Type": content_type, "smithy-protocol": "rpc-v2-cbor"}
        else:
            body = (
                b"<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
                b"<Message>Request limit exceeded.</Message></Error></Errors>"
                b"<RequestID>test</RequestID></Response>"
            )
            headers = {"Content-Type": "text/xml"}
            status = 503
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads the count, not the log."""


def _cbor_text_map(items: dict[str, str]) -> bytes:
    """A CBOR map of short text keys and values (each under 24 bytes)."""

    def text(value: str) -> bytes:
        return bytes([0x60 + len(value.encode())]) + value.encode()

    return bytes([0xA0 + len(items)]) + b"".join(text(k) + text(v) for k, v in items.items())


@pytest.fixture
def throttling_endpoint() -> Iterator[str]:
    """A local server on 127.0.0.1 that answers every call with a throttling error."""
    _ThrottlingHandler.requests_seen = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ThrottlingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_throttled_ec2_call_is_one_clear_line(
    aws_env: dict[str, str], throttling_endpoint: str
) -> None:
    options = CloudWatchSourceOptions(
        endpoint_url=throttling_endpoint, retry_mode="standard", max_attempts=2
    )
    with pytest.raises(CloudWatchSourceError) as caught:
        read_cloudwatch(options)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("ec2:DescribeInstances throttled by AWS (RequestLimitExceeded")
    assert "after up to 2 attempts" in message and "raise max_attempts" in message
    assert _ThrottlingHandler.requests_seen == 2  # botocore retried once, then gave up


def test_throttled_getmetricdata_is_one_clear_line(
    aws_env: dict[str, str], throttling_endpoint: str
) -> None:
    options = CloudWatchSourceOptions(
        endpoint_url=throttling_endpoint, retry_mode="standard", max_attempts=1
    )
    query = MetricQuery("q0", "i-0123456789abcdef0", "cpu_p95", "AWS/EC2", "CPUUtilization", ())
    window = DayWindow(LAST_DAY, LAST_DAY)
    with pytest.raises(CloudWatchSourceError) as caught:
        fetch_daily_values(open_clients(options), [query], window, RequestLog(), [])
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        "cloudwatch:GetMetricData throttled by AWS (Throttling: Rate exceeded)"
    )
    assert caught.value.code == "Throttling"


@pytest.mark.s3
def test_no_matching_instances_is_one_clear_line(s3_endpoint: str, aws_env: dict[str, str]) -> None:
    options = CloudWatchSourceOptions(region=EMPTY_REGION, endpoint_url=s3_endpoint)
    with pytest.raises(CloudWatchSourceError, match="EC2: no instances in region eu-north-1"):
        read_cloudwatch(options)


def test_no_region_is_one_clear_line(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    with pytest.raises(CloudWatchSourceError, match="no AWS region: set the cloudwatch option"):
        read_cloudwatch(CloudWatchSourceOptions())


def test_end_date_must_be_a_complete_day(aws_env: dict[str, str]) -> None:
    with pytest.raises(CloudWatchSourceError, match="not a complete day"):
        read_cloudwatch(CloudWatchSourceOptions(), end_date=TODAY)


def test_options_reject_unknown_keys_and_out_of_range_values() -> None:
    with pytest.raises(ValidationError, match="lookback_dayz"):
        CloudWatchSourceOptions.model_validate({"lookback_dayz": 30})
    with pytest.raises(ValidationError, match="lookback_days"):
        CloudWatchSourceOptions(lookback_days=455)  # beyond CloudWatch's 1-hour retention
    with pytest.raises(ValidationError, match="monthly_cost_usd"):
        CloudWatchSourceOptions.model_validate({"monthly_cost_usd": {"m5.large": -1}})
    with pytest.raises(ValidationError, match="instance_ids"):
        CloudWatchSourceOptions.model_validate({"instance_ids": ["web-1"]})
    undocumented = [
        name for name, info in CloudWatchSourceOptions.model_fields.items() if not info.description
    ]
    assert undocumented == []


@pytest.mark.s3
def test_stage_02_reads_the_live_fleet_into_tables_that_validate(
    tmp_path: Any,
    s3_endpoint: str,
    aws_env: dict[str, str],
    fleet: dict[str, str],
    moto_percentiles: None,
) -> None:
    # read_fleet reads up to yesterday: three days back cover the two seeded days.
    options = fleet_options(s3_endpoint, lookback_days=3)
    params = Params.model_validate(
        {
            "run": {"output_root": str(tmp_path)},
            "data": {"source": "cloudwatch", "cloudwatch": options.model_dump()},
        }
    )
    raw = read_fleet(params, open_run_storage(params, "live"), "02_load")
    assert raw.summary["source"] == "cloudwatch"
    assert raw.summary["counts"]["aws_requests"]["cloudwatch:GetMetricData"] >= 1
    metrics = validate_metrics(
        raw.metrics, raw.metrics_source, max_missing_share=1.0, min_history_days=1
    ).frame
    servers, _ = validate_servers(raw.servers, raw.servers_source)
    metrics, servers, _ = validate_fleet(
        metrics, servers, metrics_source=raw.metrics_source, servers_source=raw.servers_source
    )
    assert sorted(servers["server_id"]) == sorted([fleet["web"], fleet["batch"]])
    web = metrics[metrics["server_id"] == fleet["web"]]
    # Yesterday, in the window but not seeded, is a row without values (a missing day).
    assert web["cpu_p95"].dropna().tolist() == [expected_p95(10, 0), expected_p95(10, 1)]
