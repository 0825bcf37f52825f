"""The servers table of a live EC2 fleet: instances, their tags, capacity and monthly cost.

DescribeInstances gives the instances and their tags (business unit, environment,
criticality), DescribeInstanceTypes their vCPUs and memory, DescribeVolumes their EBS disk.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from capacity_forecaster.core.contract import SERVER_REQUIRED_COLUMNS
from capacity_forecaster.core.params_cloudwatch import CloudWatchSourceOptions
from capacity_forecaster.ingest.cloudwatch.aws import (
    ACCESS_DENIED_CODES,
    AwsClients,
    CloudWatchSourceError,
    RequestLog,
    chunked,
    paginate,
)
from capacity_forecaster.ingest.messages import examples, names, plural, warn

logger = logging.getLogger(__name__)

SOURCE = "EC2"  # how messages about the inventory name their source
UNASSIGNED = "unassigned"  # the value of a tag an instance does not carry
TAGGED_COLUMNS = ("business_unit", "environment", "criticality")

# AWS limits per request: DescribeInstances returns at most 1,000 instances a page, and
# DescribeInstanceTypes / a DescribeVolumes filter take at most 100 / 200 values.
INSTANCES_PER_PAGE = 1000
TYPES_PER_CALL = 100
IDS_PER_VOLUME_FILTER = 200
VOLUMES_PER_PAGE = 500


def tag_keys(options: CloudWatchSourceOptions) -> dict[str, str]:
    """The EC2 tag key of each tagged servers column."""
    return {
        "business_unit": options.business_unit_tag,
        "environment": options.environment_tag,
        "criticality": options.criticality_tag,
    }


def instance_filters(options: CloudWatchSourceOptions) -> list[dict[str, Any]]:
    """DescribeInstances filters: the states read, and the optional ids and tags."""
    filters: list[dict[str, Any]] = [
        {"Name": "instance-state-name", "Values": list(options.instance_states)}
    ]
    if options.instance_ids:
        # A filter rather than InstanceIds, which AWS does not allow with MaxResults.
        filters.append({"Name": "instance-id", "Values": list(options.instance_ids)})
    for key, values in options.instance_tags.items():
        filters.append({"Name": f"tag:{key}", "Values": list(values)})
    return filters


def describe_instances(
    clients: AwsClients,
    options: CloudWatchSourceOptions,
    requests: RequestLog,
    *,
    page_size: int = INSTANCES_PER_PAGE,
) -> pd.DataFrame:
    """One row per instance kept by the filters: server_id, instance_type, name, vCPUs, tags."""
    pages = paginate(
        clients.ec2,
        "ec2:DescribeInstances",
        requests,
        clients.max_attempts,
        Filters=instance_filters(options),
        PaginationConfig={"PageSize": page_size},
    )
    rows = [_instance_row(instance, tag_keys(options)) for instance in _instances(pages)]
    frame = pd.DataFrame(
        rows, columns=["server_id", "instance_type", "name", "vcpus", *TAGGED_COLUMNS]
    )
    frame = frame.drop_duplicates("server_id").sort_values("server_id", ignore_index=True)
    logger.info("%s: %s in region %s", SOURCE, plural(len(frame), "instance"), clients.region)
    return frame


def _instances(pages: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The instances of DescribeInstances pages, across their reservations."""
    for page in pages:
        for reservation in page.get("Reservations", []):
            yield from reservation.get("Instances", [])


def _instance_row(instance: Mapping[str, Any], tag_keys: Mapping[str, str]) -> dict[str, Any]:
    """An instance's id, type, Name tag, vCPUs (from its CPU options, if any) and tag values."""
    tags = {tag["Key"]: str(tag.get("Value", "")).strip() for tag in instance.get("Tags", [])}
    cpu = instance.get("CpuOptions") or {}
    # CPU options show vCPUs switched off at launch; without them the type's default applies.
    vcpus = cpu["CoreCount"] * cpu["ThreadsPerCore"] if "CoreCount" in cpu else np.nan
    row = {
        "server_id": instance["InstanceId"],
        "instance_type": instance["InstanceType"],
        "name": tags.get("Name", ""),
        "vcpus": vcpus,
    }
    row.update({column: tags.get(key) or None for column, key in tag_keys.items()})
    return row


def describe_instance_types(
    clients: AwsClients, instance_types: Sequence[str], requests: RequestLog
) -> pd.DataFrame:
    """Per instance type: default vCPUs, memory in GiB and local instance-store disk in GB."""
    rows: list[dict[str, Any]] = []
    for chunk in chunked(sorted(set(instance_types)), TYPES_PER_CALL):
        pages = paginate(
            clients.ec2,
            "ec2:DescribeInstanceTypes",
            requests,
            clients.max_attempts,
            InstanceTypes=list(chunk),
        )
        rows.extend(
            {
                "instance_type": info["InstanceType"],
                "default_vcpus": info["VCpuInfo"]["DefaultVCpus"],
                "memory_gb": info["MemoryInfo"]["SizeInMiB"] / 1024,
                "instance_store_gb": (info.get("InstanceStorageInfo") or {}).get(
                    "TotalSizeInGB", 0
                ),
            }
            for page in pages
            for info in page.get("InstanceTypes", [])
        )
    columns = ["instance_type", "default_vcpus", "memory_gb", "instance_store_gb"]
    return pd.DataFrame(rows, columns=columns).drop_duplicates("instance_type")


def attached_ebs_gb(
    clients: AwsClients, server_ids: Sequence[str], requests: RequestLog, warnings: list[str]
) -> pd.Series:
    """GB of EBS volumes attached to each instance (absent: none listed); empty when denied."""
    sizes: dict[str, int] = {}
    wanted = set(server_ids)
    try:
        for chunk in chunked(server_ids, IDS_PER_VOLUME_FILTER):
            pages = paginate(
                clients.ec2,
                "ec2:DescribeVolumes",
                requests,
                clients.max_attempts,
                Filters=[{"Name": "attachment.instance-id", "Values": list(chunk)}],
                PaginationConfig={"PageSize": VOLUMES_PER_PAGE},
            )
            for page in pages:
                for volume in page.get("Volumes", []):
                    # A multi-attach volume counts for every instance it is attached to.
                    for attachment in volume.get("Attachments", []):
                        if attachment.get("InstanceId") in wanted:
                            server = attachment["InstanceId"]
                            sizes[server] = sizes.get(server, 0) + int(volume["Size"])
    except CloudWatchSourceError as exc:
        if exc.code not in ACCESS_DENIED_CODES:
            raise
        warn(warnings, SOURCE, f"{exc}; disk_gb falls back to instance-store disk")
        return pd.Series(dtype="float64")
    return pd.Series(sizes, dtype="float64")


def read_servers(
    clients: AwsClients,
    instances: pd.DataFrame,
    options: CloudWatchSourceOptions,
    requests: RequestLog,
) -> tuple[pd.DataFrame, dict[str, Any], list[str]]:
    """The servers table of ``instances`` (SERVER_REQUIRED_COLUMNS plus instance_type and name),
    with counts and warnings of what is unassigned, unknown or unpriced."""
    warnings: list[str] = []
    types = describe_instance_types(clients, instances["instance_type"].tolist(), requests)
    servers = instances.merge(types, on="instance_type", how="left")
    ebs_gb = attached_ebs_gb(clients, servers["server_id"].tolist(), requests, warnings)
    servers = servers.assign(
        cpu_cores=_whole_if_known(servers["vcpus"].fillna(servers["default_vcpus"])),
        disk_gb=_disk_gb(servers, ebs_gb),
        region=clients.region,
    )
    counts: dict[str, Any] = {"instances": len(servers)}
    servers, counts["unassigned_tags"] = _tags_or_unassigned(servers, options, warnings)
    monthly_cost, counts["unpriced_instance_types"] = _monthly_cost(
        servers, options.monthly_cost_usd, warnings
    )
    servers = servers.assign(monthly_cost_usd=monthly_cost)
    counts["unknown_capacity"] = _warn_unknown_capacity(servers, warnings)
    columns = [*SERVER_REQUIRED_COLUMNS, "instance_type", "name"]
    return servers[columns].reset_index(drop=True), counts, warnings


def _whole_if_known(values: pd.Series) -> pd.Series:
    """``values`` as int64 when none is missing (validation keeps integer capacity integer)."""
    return values.astype("int64") if values.notna().all() else values.astype("float64")


def _disk_gb(servers: pd.DataFrame, ebs_gb: pd.Series) -> pd.Series:
    """EBS GB attached; for an instance without EBS, its instance store; else NaN (unknown)."""
    ebs = servers["server_id"].map(ebs_gb).astype("float64")
    store = servers["instance_store_gb"].where(servers["instance_store_gb"] > 0)
    return _whole_if_known(ebs.fillna(store))


def _tags_or_unassigned(
    servers: pd.DataFrame, options: CloudWatchSourceOptions, warnings: list[str]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """``servers`` with 'unassigned' where an instance lacks a tag (criticality lowercased, to
    match the risk thresholds' keys), and how many instances lack each tag."""
    keys = tag_keys(options)
    counts = {column: int(servers[column].isna().sum()) for column in TAGGED_COLUMNS}
    untagged = servers[list(TAGGED_COLUMNS)].isna().any(axis=1)
    if untagged.any():
        missing = ", ".join(
            f"{count} without {keys[column]}" for column, count in counts.items() if count
        )
        warn(
            warnings,
            SOURCE,
            f"{plural(int(untagged.sum()), 'instance')} missing tags ({missing}), "
            f"read as {UNASSIGNED!r}{examples(servers.loc[untagged, 'server_id'])}",
        )
    filled = servers.assign(**{c: servers[c].fillna(UNASSIGNED) for c in TAGGED_COLUMNS})
    return filled.assign(criticality=filled["criticality"].str.lower()), counts


def _monthly_cost(
    servers: pd.DataFrame, prices: Mapping[str, float], warnings: list[str]
) -> tuple[pd.Series, list[str]]:
    """USD per month of each server by its instance type, 0.0 where no price is given; and
    the instance types without a price."""
    priced = servers["instance_type"].map(dict(prices)).astype("float64")
    unpriced = sorted(servers.loc[priced.isna(), "instance_type"].unique().tolist())
    if unpriced:
        warn(
            warnings,
            SOURCE,
            f"no monthly_cost_usd for instance types {names(unpriced)} "
            f"({plural(int(priced.isna().sum()), 'instance')}): cost 0.0, so their savings "
            "read as unknown; add them to monthly_cost_usd",
        )
    return priced.fillna(0.0), unpriced


def _warn_unknown_capacity(servers: pd.DataFrame, warnings: list[str]) -> int:
    """Warn about instances whose cores, memory or disk stayed unknown; their count."""
    unknown = servers[["cpu_cores", "memory_gb", "disk_gb"]].isna().any(axis=1)
    if unknown.any():
        warn(
            warnings,
            SOURCE,
            f"{plural(int(unknown.sum()), 'instance')} with unknown cores, memory or disk "
            "(instance type not described, or no EBS volume and no instance store)"
            f"{examples(servers.loc[unknown, 'server_id'])}",
        )
    return int(unknown.sum())
