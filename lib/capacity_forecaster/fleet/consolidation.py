"""Step 4 of stage 07: consolidation of over-provisioned servers onto fewer hosts.

2-D first-fit-decreasing packing (cores and memory) within each environment x criticality group,
onto the group's own servers, up to a target utilisation. The servers left without load are
freed. Savings are alternatives per server, never added twice: a freed server saves its whole
``monthly_cost_usd`` (consolidation); a server neither freed nor hosting keeps its right-sizing
saving; a host of freed servers saves nothing, its capacity now carries their load. Idle
servers are decommission candidates, not packed: one was once kept as the host of others.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.vocabulary import CRITICALITIES
from capacity_forecaster.fleet._common import TOLERANCE, with_server_column

logger = logging.getLogger(__name__)

__all__ = ["consolidate"]

CRITICAL_TIER = CRITICALITIES[0]  # the most critical tier: left alone unless allowed
CANDIDATE_FINDINGS = ["over-provisioned"]  # idle: decommissioned, never a host
GROUP_KEY = ["environment", "criticality"]  # a host never carries another group's servers
# Boundaries params may close (``never``) or leave open and flag (``flag``).
BOUNDARIES = {"region": "region", "business_unit": "business unit"}
PLACEMENT_COLUMNS = [
    "server_id",
    "host_server_id",
    "freed",
    "group",
    "considered",
    "excluded_reason",
    "demand_cores",
    "demand_memory_gb",
    "move_crosses",
    "counted_savings_usd",
    "saving_kind",
]


def consolidate(
    sizing: pd.DataFrame,
    target_utilisation: float,
    consolidate_critical: bool,
    closed_boundaries: tuple[str, ...] = ("region",),
) -> tuple[pd.DataFrame, dict]:
    """Pack over-provisioned servers onto fewer hosts; the rest are freed (idle ones are
    decommission candidates and left out).

    Demand = forecast peak share x capacity (cores and GB). Groups are environment x
    criticality, and each of ``closed_boundaries`` (of ``BOUNDARIES``: region, business_unit)
    too, so no host mixes environments, tiers or a closed boundary; a move across an open
    boundary is named in ``move_crosses`` ("region eu-west-1 -> us-east-1"). The 'critical'
    tier is left out
    unless ``consolidate_critical``. A server whose own demand exceeds ``target_utilisation``
    of its own capacity cannot host itself and is left out too. Returns a placement row for
    every server (server_id, host_server_id, freed, group, considered, excluded_reason,
    demand_cores, demand_memory_gb, and ``counted_savings_usd`` / ``saving_kind``: its saving as
    the totals count it) and a JSON-ready summary per group and in total.
    Savings: a freed server counts its whole monthly cost once, as consolidation saving; the
    right-sizing saving counted alongside is only that of servers neither freed nor hosting
    others (the two are alternatives per server, see the module docstring).
    """
    if not 0 < target_utilisation <= 1:
        raise ValueError(f"target_utilisation must be in (0, 1], got {target_utilisation}")
    unknown = sorted(set(closed_boundaries) - set(BOUNDARIES))
    if unknown:
        raise ValueError(f"unknown consolidation boundaries {unknown} (known: {list(BOUNDARIES)})")
    group_key = [*GROUP_KEY, *closed_boundaries]
    frame = _candidates(sizing, target_utilisation, consolidate_critical, group_key)
    host_loads = _place(frame, target_utilisation)
    frame["move_crosses"] = _crossings(frame, [b for b in BOUNDARIES if b not in group_key])
    _count_savings(frame)
    summary = _summary(frame, host_loads, target_utilisation, consolidate_critical, group_key)
    _check_placement(frame, target_utilisation)
    placement = frame[PLACEMENT_COLUMNS].sort_values("server_id", ignore_index=True)
    total = summary["total"]
    logger.info(
        "07_cluster: consolidation considered %d servers in %d groups, kept %d hosts, freed %d "
        "(%.0f USD/month); right-sizing of the rest %.0f USD/month",
        total["servers_considered"],
        len(host_loads),
        total["hosts_kept"],
        total["servers_freed"],
        *_savings(frame),
    )
    return placement, summary


def _candidates(
    sizing: pd.DataFrame,
    target_utilisation: float,
    consolidate_critical: bool,
    group_key: list[str],
) -> pd.DataFrame:
    """The sizing frame with demand, group and why a server is left out ("" if considered)."""
    frame = with_server_column(sizing).copy()
    # A resource never measured (no memory agent) has no known demand: it is never packed.
    unmeasured = frame["peak_cpu_share"].isna() | frame["peak_mem_share"].isna()
    frame["demand_cores"] = frame["peak_cpu_share"] * frame["cpu_cores"].astype(float)
    frame["demand_memory_gb"] = frame["peak_mem_share"] * frame["memory_gb"].astype(float)
    frame["group"] = frame[group_key].astype(str).agg("/".join, axis=1)
    candidate = frame["finding"].isin(CANDIDATE_FINDINGS)
    critical = frame["criticality"].astype(str) == CRITICAL_TIER
    too_big = (frame["demand_cores"] > target_utilisation * frame["cpu_cores"] + TOLERANCE) | (
        frame["demand_memory_gb"] > target_utilisation * frame["memory_gb"] + TOLERANCE
    )
    idle = frame["finding"] == "idle"
    frame["excluded_reason"] = np.select(
        [idle, ~candidate, critical & ~consolidate_critical, unmeasured, too_big],
        [
            "idle: a decommission candidate",
            "finding " + frame["finding"].astype(str),
            "critical tier",
            "CPU or memory not measured",
            "own demand above target utilisation",
        ],
        default="",
    )
    frame["considered"] = frame["excluded_reason"] == ""
    frame["host_server_id"] = frame["server_id"]
    return frame


def _place(frame: pd.DataFrame, target: float) -> dict[str, list[dict]]:
    """Packs each group of considered servers; sets ``host_server_id``, ``freed`` and
    ``hosts_others`` on ``frame``. Returns each group's host loads."""
    host_loads: dict[str, list[dict]] = {}
    for name, group in frame[frame["considered"]].groupby("group", sort=True):
        host_of, loads = _pack_group(group, target)
        frame.loc[group.index, "host_server_id"] = group["server_id"].map(host_of).to_numpy()
        host_loads[str(name)] = loads
    frame["freed"] = frame["considered"] & (frame["host_server_id"] != frame["server_id"])
    frame["hosts_others"] = frame["server_id"].isin(_hosting(frame))
    return host_loads


def _crossings(frame: pd.DataFrame, open_boundaries: list[str]) -> pd.Series:
    """Per server, the open boundaries its move crosses, in words ("" when it stays)."""
    hosts = frame.set_index("server_id")
    crossed: list[list[str]] = [[] for _ in range(len(frame))]
    moved = np.flatnonzero(frame["freed"].to_numpy())
    hosts_of_moved = frame["host_server_id"].to_numpy()[moved]
    for column in open_boundaries:
        there = hosts.loc[hosts_of_moved, column].astype(str).to_numpy()
        here = frame[column].astype(str).to_numpy()[moved]
        for position, old, new in zip(moved, here, there, strict=True):
            if old != new:
                crossed[position].append(f"{BOUNDARIES[column]} {old} -> {new}")
    return pd.Series(["; ".join(parts) for parts in crossed], index=frame.index, dtype=object)


def _hosting(frame: pd.DataFrame) -> set:
    """The servers that carry freed servers."""
    return set(frame.loc[frame["freed"], "host_server_id"])


@dataclass
class _Hosts:
    """The open hosts of one group and their loads, packed up to ``target`` of capacity."""

    cores: dict[str, float]  # capacity per server
    memory: dict[str, float]
    demand_cores: dict[str, float]  # demand per server
    demand_memory: dict[str, float]
    target: float
    rank: dict[str, int]  # position by capacity, largest first
    host_of: dict[str, str] = field(default_factory=dict)
    load_cores: dict[str, float] = field(default_factory=dict)
    load_memory: dict[str, float] = field(default_factory=dict)
    open_hosts: list[str] = field(default_factory=list)  # kept in capacity order

    def fits(self, host: str, item: str) -> bool:
        return (
            self.load_cores[host] + self.demand_cores[item]
            <= self.target * self.cores[host] + TOLERANCE
            and self.load_memory[host] + self.demand_memory[item]
            <= self.target * self.memory[host] + TOLERANCE
        )

    def first_fit(self, item: str) -> str | None:
        """The largest open host with room for ``item``, if any."""
        return next((host for host in self.open_hosts if self.fits(host, item)), None)

    def place(self, item: str, host: str) -> None:
        self.host_of[item] = host
        self.load_cores[host] += self.demand_cores[item]
        self.load_memory[host] += self.demand_memory[item]

    def open_host(self, host: str) -> None:
        """Opens ``host``, carrying its own demand."""
        self.host_of[host] = host
        self.load_cores[host], self.load_memory[host] = (
            self.demand_cores[host],
            self.demand_memory[host],
        )
        self.open_hosts.append(host)
        self.open_hosts.sort(key=self.rank.__getitem__)

    def loads(self) -> list[dict]:
        """Per open host, in capacity order: servers carried, cores and memory used and load."""
        carried = Counter(self.host_of.values())
        return [
            {
                "host_server_id": str(h),
                "servers": int(carried[h]),
                "cores_used": round(self.load_cores[h], 3),
                "cpu_cores": int(self.cores[h]),
                "cpu_load": round(self.load_cores[h] / self.cores[h], 4),
                "memory_gb_used": round(self.load_memory[h], 3),
                "memory_gb": int(self.memory[h]),
                "memory_load": round(self.load_memory[h] / self.memory[h], 4),
            }
            for h in self.open_hosts
        ]


def _pack_group(group: pd.DataFrame, target: float) -> tuple[dict[str, str], list[dict]]:
    """First-fit-decreasing 2-D packing of one group onto its own servers.

    Items (servers) go in decreasing order of their larger normalised demand (cores and GB
    over the group's largest host). Each tries the open hosts, largest capacity first; when
    none fits, the largest server not yet placed opens as a host (carrying its own demand
    first), until the item fits or opens as a host itself. A host is filled to at most
    ``target`` of its cores and of its memory.
    """
    ids = group["server_id"].to_numpy()

    def per_server(column: str) -> dict[str, float]:
        return dict(zip(ids, group[column].astype(float), strict=True))

    by_capacity = group.sort_values(
        ["cpu_cores", "memory_gb", "server_id"], ascending=[False, False, True]
    )["server_id"].tolist()
    hosts = _Hosts(
        cores=per_server("cpu_cores"),
        memory=per_server("memory_gb"),
        demand_cores=per_server("demand_cores"),
        demand_memory=per_server("demand_memory_gb"),
        target=target,
        rank={server: i for i, server in enumerate(by_capacity)},
    )
    next_candidate = 0
    for item in _by_decreasing_demand(group):
        if item in hosts.host_of:
            continue  # already opened as a host, carrying itself
        while True:
            host = hosts.first_fit(item)
            if host is not None:
                hosts.place(item, host)
                break
            while by_capacity[next_candidate] in hosts.host_of:
                next_candidate += 1
            hosts.open_host(by_capacity[next_candidate])
            if by_capacity[next_candidate] == item:
                break
    return hosts.host_of, hosts.loads()


def _by_decreasing_demand(group: pd.DataFrame) -> list[str]:
    """Server ids by their larger demand share of the group's largest host, largest first."""
    norm = np.maximum(
        group["demand_cores"] / group["cpu_cores"].max(),
        group["demand_memory_gb"] / group["memory_gb"].max(),
    )
    return (
        group.assign(norm=norm.to_numpy())
        .sort_values(["norm", "server_id"], ascending=[False, True])["server_id"]
        .tolist()
    )


def _count_savings(frame: pd.DataFrame) -> None:
    """Sets each server's saving as the totals count it (``counted_savings_usd``) and its kind,
    so reports and charts never recount."""
    savings = frame["monthly_savings_usd"].astype(float)
    cost = frame["monthly_cost_usd"].astype(float).fillna(0.0)
    counted = ~frame["freed"] & ~frame["hosts_others"]
    frame["counted_savings_usd"] = np.select(
        [frame["freed"], counted], [cost, savings.fillna(0.0)], default=0.0
    )
    frame["saving_kind"] = np.select(
        [frame["freed"], counted & (savings > 0), frame["hosts_others"] & (savings > 0)],
        ["consolidation", "right-sizing", "none (hosts freed servers)"],
        default="",
    )


def _summary(
    frame: pd.DataFrame,
    host_loads: dict[str, list[dict]],
    target_utilisation: float,
    consolidate_critical: bool,
    group_key: list[str],
) -> dict[str, Any]:
    """The JSON-ready consolidation summary: per group, in total, savings, freed and hosts."""
    cost = frame["monthly_cost_usd"].astype(float).fillna(0.0)
    consolidation_usd, right_sizing_usd = _savings(frame)
    all_loads = [load for loads in host_loads.values() for load in loads]
    return {
        "target_utilisation": float(target_utilisation),
        "consolidate_critical": bool(consolidate_critical),
        "group_key": list(group_key),
        "moves_crossing": int((frame["move_crosses"] != "").sum()),
        "groups": {
            name: {"host_loads": loads, **_group_totals(frame, cost, name)}
            for name, loads in host_loads.items()
        },
        "total": {
            "servers_considered": int(frame["considered"].sum()),
            "hosts_kept": int((frame["considered"] & ~frame["freed"]).sum()),
            "servers_freed": int(frame["freed"].sum()),
            "monthly_savings_usd": round(consolidation_usd, 2),
            "max_cpu_load": max((x["cpu_load"] for x in all_loads), default=0.0),
            "max_memory_load": max((x["memory_load"] for x in all_loads), default=0.0),
        },
        "excluded": {
            str(k): int(v)
            for k, v in frame.loc[~frame["considered"], "excluded_reason"].value_counts().items()
        },
        "consolidation_savings_usd": round(consolidation_usd, 2),
        "right_sizing_savings_usd": round(right_sizing_usd, 2),
        "total_savings_usd": round(consolidation_usd + right_sizing_usd, 2),
        "freed_server_ids": sorted(str(s) for s in frame.loc[frame["freed"], "server_id"]),
        "host_server_ids": sorted(str(s) for s in _hosting(frame)),
    }


def _savings(frame: pd.DataFrame) -> tuple[float, float]:
    """Monthly USD saved by consolidation (freed servers' whole cost) and by right-sizing the
    servers neither freed nor hosting freed ones."""
    cost = frame["monthly_cost_usd"].astype(float).fillna(0.0)
    counted = ~frame["freed"] & ~frame["hosts_others"]
    consolidation_usd = float(cost[frame["freed"]].sum())
    right_sizing_usd = float(frame["monthly_savings_usd"].astype(float)[counted].sum())
    return consolidation_usd, right_sizing_usd


def _group_totals(frame: pd.DataFrame, cost: pd.Series, name: str) -> dict[str, Any]:
    """One group's servers considered, hosts kept, servers freed and their monthly cost."""
    rows = frame["group"] == name
    considered = rows & frame["considered"]
    return {
        "servers_considered": int(considered.sum()),
        "hosts_kept": int((considered & ~frame["freed"]).sum()),
        "servers_freed": int((rows & frame["freed"]).sum()),
        "monthly_savings_usd": round(float(cost[rows & frame["freed"]].sum()), 2),
    }


def _check_placement(frame: pd.DataFrame, target: float) -> None:
    """Invariants of a packing; raises StageCheckError (a bug, not a data problem)."""
    problems = []
    if frame["server_id"].duplicated().any():
        problems.append("a server is placed more than once")
    considered = frame[frame["considered"]]
    hosts = considered.set_index("server_id")
    unknown = ~considered["host_server_id"].isin(hosts.index)
    if unknown.any():
        problems.append(f"{int(unknown.sum())} servers placed on a host outside their group")
    else:
        problems += _host_problems(considered, hosts, target)
    if problems:
        raise StageCheckError("07_cluster consolidation: " + "; ".join(problems))


def _host_problems(considered: pd.DataFrame, hosts: pd.DataFrame, target: float) -> list[str]:
    """Hosts in the servers' own group, freed servers hosting nobody, loads within target."""
    problems = []
    host_group = hosts.loc[considered["host_server_id"], "group"].to_numpy()
    if (host_group != considered["group"].to_numpy()).any():
        problems.append(
            "a host carries servers of another group (environment, criticality or a closed boundary)"
        )
    freed_hosts = set(considered.loc[considered["freed"], "server_id"]) & set(
        considered.loc[considered["freed"], "host_server_id"]
    )
    if freed_hosts:
        problems.append(f"freed servers host others: {sorted(freed_hosts)[:5]}")
    load = considered.groupby("host_server_id")[["demand_cores", "demand_memory_gb"]].sum()
    capacity = hosts.loc[load.index, ["cpu_cores", "memory_gb"]].astype(float)
    over = (load["demand_cores"] > target * capacity["cpu_cores"] + 1e-6) | (
        load["demand_memory_gb"] > target * capacity["memory_gb"] + 1e-6
    )
    if over.any():
        problems.append(f"hosts above target utilisation: {list(load.index[over])[:5]}")
    return problems
