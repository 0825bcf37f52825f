"""The AWS side of the live CloudWatch source: clients, counted paginated calls, one-line errors.

Every call goes through :func:`paginate`, so each page is counted in a :class:`RequestLog`
(logged at the end of a read) and every botocore failure becomes one
:class:`CloudWatchSourceError` line naming the IAM action and what to change, never a
traceback. Retries (throttling, 5xx, timeouts) are botocore's own, configured from the options.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import boto3
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from capacity_forecaster.core.errors import CapacityForecasterError
from capacity_forecaster.core.params_cloudwatch import CloudWatchSourceOptions
from capacity_forecaster.ingest.messages import one_line, plural

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The error codes AWS answers when a caller goes too fast (CloudWatch says Throttling, EC2
# RequestLimitExceeded); botocore retries them, and we explain them when retries run out.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "EC2ThrottledException",
    }
)
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess"}
)


class CloudWatchSourceError(CapacityForecasterError):
    """Reading the fleet from EC2 or CloudWatch failed (the message names the call and the fix)."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(one_line(message))
        self.code = code  # the AWS error code, when AWS answered with one


@dataclass
class RequestLog:
    """API calls made, by IAM action (e.g. ``cloudwatch:GetMetricData``), and metric queries sent."""

    calls: Counter[str] = field(default_factory=Counter)
    metric_queries: int = 0

    def summary(self) -> str:
        """One line for the log: metric requests first, then the inventory calls."""
        inventory = ", ".join(
            f"{action.split(':')[1]} {count}"
            for action, count in sorted(self.calls.items())
            if action != "cloudwatch:GetMetricData"
        )
        calls = plural(self.calls["cloudwatch:GetMetricData"], "GetMetricData call")
        queries = f"{self.metric_queries} metric quer{'y' if self.metric_queries == 1 else 'ies'}"
        return f"{calls} for {queries}; other calls: {inventory or 'none'}"

    def as_counts(self) -> dict[str, int]:
        """JSON-ready counts for quality.json."""
        return {**dict(sorted(self.calls.items())), "metric_queries": self.metric_queries}


@dataclass(frozen=True)
class AwsClients:
    """The EC2 and CloudWatch clients of one read, the region they talk to and their attempts."""

    ec2: Any
    cloudwatch: Any
    region: str
    max_attempts: int


def open_clients(options: CloudWatchSourceOptions) -> AwsClients:
    """EC2 and CloudWatch clients from the default credential chain, with botocore retries."""
    config = Config(
        retries={"mode": options.retry_mode, "total_max_attempts": options.max_attempts},
        user_agent_extra="capacity-forecaster",
    )
    session = boto3.session.Session(region_name=options.region)
    try:
        ec2 = session.client("ec2", endpoint_url=options.endpoint_url, config=config)
        cloudwatch = session.client("cloudwatch", endpoint_url=options.endpoint_url, config=config)
    except NoRegionError:
        raise CloudWatchSourceError(
            "no AWS region: set the cloudwatch option region, or AWS_REGION in the environment"
        ) from None
    return AwsClients(ec2, cloudwatch, ec2.meta.region_name, options.max_attempts)


def paginate(
    client: Any, action: str, requests: RequestLog, max_attempts: int, **kwargs: Any
) -> Iterator[dict[str, Any]]:
    """Every page of the paginated call ``action`` (``service:Operation``), each one counted."""
    operation = action.split(":", 1)[1]
    with aws_errors(action, max_attempts):
        for page in client.get_paginator(xform_name(operation)).paginate(**kwargs):
            requests.calls[action] += 1
            yield page


@contextmanager
def aws_errors(action: str, max_attempts: int) -> Iterator[None]:
    """Turn a botocore failure inside the block into one :class:`CloudWatchSourceError` line."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = one_line(str(error.get("Message") or exc))[:300]
        raise CloudWatchSourceError(
            client_error_message(action, code, message, max_attempts), code=code
        ) from None
    except NoCredentialsError:
        raise CloudWatchSourceError(
            f"{action}: no AWS credentials found (environment, shared config, SSO or instance "
            "role); configure credentials for the account that runs the fleet"
        ) from None
    except BotoCoreError as exc:
        raise CloudWatchSourceError(
            f"{action} failed: {one_line(str(exc))[:300]} (after up to {max_attempts} attempts)"
        ) from None


def client_error_message(action: str, code: str, message: str, max_attempts: int) -> str:
    """What went wrong in ``action`` and what to change, for an AWS error ``code``."""
    if code in THROTTLING_CODES:
        return (
            f"{action} throttled by AWS ({code}: {message}) after up to {max_attempts} attempts; "
            f"raise max_attempts, keep retry_mode 'adaptive', or read fewer instances per run "
            "(instance_tags, instance_ids)"
        )
    if code in ACCESS_DENIED_CODES:
        return f"{action} denied ({code}): the credentials need the IAM permission {action}"
    return f"{action} failed ({code}): {message}"


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size`` (AWS caps the values per request)."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
