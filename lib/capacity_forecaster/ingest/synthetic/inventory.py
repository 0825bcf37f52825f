"""The server inventory, CMDB-like, one row per server.

Business unit, region and environment are drawn from fleet-wide shares; criticality, platform,
operating system, size and cost follow from them; commissioning dates lie before the window,
except for a few servers commissioned inside it (``commission_in_window``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from capacity_forecaster.core.calendar import country_for_region
from capacity_forecaster.core.contract import SERVER_CAPACITY_COLUMNS, SERVER_COST_COLUMNS
from capacity_forecaster.core.params import SyntheticParams
from capacity_forecaster.core.vocabulary import CRITICALITIES

logger = logging.getLogger(__name__)

# The servers table as the synthetic generator writes it (a CMDB-like inventory), in order.
SERVER_COLUMNS = (
    "server_id",
    "hostname",
    "business_unit",
    "region",
    "country",
    "environment",
    "criticality",
    "platform",
    "os",
    *SERVER_CAPACITY_COLUMNS,
    *SERVER_COST_COLUMNS,
    "commissioned_date",
)

# name: (hostname code, share of the fleet)
BUSINESS_UNITS = {
    "Retail Banking": ("rtl", 0.22),
    "Payments": ("pay", 0.18),
    "Trading": ("trd", 0.12),
    "Risk & Compliance": ("rsk", 0.12),
    "Corporate IT": ("cit", 0.18),
    "Data Platform": ("dat", 0.18),
}
REGIONS = {
    "us-east": ("use1", 0.30),
    "us-west": ("usw2", 0.15),
    "eu-west": ("euw1", 0.20),
    "eu-central": ("euc1", 0.15),
    "ap-southeast": ("apse1", 0.10),
    "ap-south": ("aps1", 0.10),
}
ENVIRONMENTS = {
    "prod": ("prod", 0.50),
    "staging": ("stg", 0.15),
    "dev": ("dev", 0.20),
    "test": ("tst", 0.15),
}
CRITICALITY_BY_ENV = {  # shares of CRITICALITIES, most critical first
    "prod": (0.30, 0.40, 0.25, 0.05),
    "staging": (0.00, 0.15, 0.50, 0.35),
    "dev": (0.00, 0.00, 0.30, 0.70),
    "test": (0.00, 0.00, 0.40, 0.60),
}
PLATFORMS = ("on-prem", "aws", "azure")
PLATFORM_BY_BU = {"Data Platform": (0.30, 0.45, 0.25)}
PLATFORM_DEFAULT = (0.50, 0.30, 0.20)
OPERATING_SYSTEMS = (
    "RHEL 8",
    "RHEL 9",
    "Ubuntu 22.04",
    "Windows Server 2019",
    "Windows Server 2022",
    "Amazon Linux 2023",
)
OS_BY_PLATFORM = {
    "on-prem": (0.30, 0.25, 0.10, 0.20, 0.15, 0.00),
    "aws": (0.10, 0.20, 0.25, 0.05, 0.10, 0.30),
    "azure": (0.10, 0.15, 0.30, 0.15, 0.30, 0.00),
}
CORE_SIZES = (2, 4, 8, 16, 32, 48, 64)
CORES_BY_ENV = {
    "prod": (0.03, 0.15, 0.27, 0.27, 0.16, 0.06, 0.06),
    "staging": (0.08, 0.25, 0.32, 0.22, 0.10, 0.02, 0.01),
    "dev": (0.20, 0.38, 0.27, 0.10, 0.05, 0.00, 0.00),
    "test": (0.20, 0.38, 0.27, 0.10, 0.05, 0.00, 0.00),
}
# GB of memory per core: compute-, general- and memory-optimised shapes.
MEMORY_RATIOS = (2, 4, 8)
MEMORY_RATIO_BY_BU = {
    "Data Platform": (0.10, 0.40, 0.50),
    "Trading": (0.10, 0.40, 0.50),
    "Risk & Compliance": (0.10, 0.40, 0.50),
}
MEMORY_RATIO_DEFAULT = (0.20, 0.55, 0.25)
DISK_SIZES = (100, 250, 500, 1000, 2000, 4000)
DISK_BY_BU = {"Data Platform": (0.02, 0.08, 0.20, 0.30, 0.25, 0.15)}
DISK_DEFAULT = (0.15, 0.30, 0.30, 0.17, 0.06, 0.02)
# Monthly USD per core, per GB of memory and per GB of disk.
PRICES = {"on-prem": (11.0, 2.2, 0.04), "aws": (24.0, 3.2, 0.08), "azure": (23.0, 3.0, 0.075)}

LATE_COMMISSION_SHARE = 0.05  # of servers commissioned inside the window
MIN_HISTORY_DAYS = 120  # a server commissioned inside the window still has this much history
# Without a window (generate_servers alone), servers are commissioned before the default one.
_DEFAULT_SYNTHETIC = SyntheticParams()
REFERENCE_START = _DEFAULT_SYNTHETIC.end_date - dt.timedelta(days=_DEFAULT_SYNTHETIC.days - 1)


def draw(
    rng: np.random.Generator, options: Sequence[Any], weights: Sequence[float], n: int
) -> np.ndarray:
    """``n`` draws from ``options`` with (normalised) ``weights``, as an object array."""
    p = np.asarray(weights, dtype=np.float64)
    picked = rng.choice(len(options), size=n, p=p / p.sum())
    return np.asarray(options, dtype=object)[picked]


def draw_by_group(
    rng: np.random.Generator,
    options: Sequence[Any] | np.ndarray,
    groups: np.ndarray,
    table: Mapping[str, tuple[float, ...]],
    default: tuple[float, ...],
) -> np.ndarray:
    """One draw per row from ``options``, with probabilities looked up by the row's group."""
    probs = np.array([table.get(g, default) for g in groups], dtype=np.float64).reshape(
        len(groups), len(options)
    )
    cumulative = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    picked = (rng.random(len(groups))[:, None] >= cumulative[:, :-1]).sum(axis=1)
    return np.asarray(options)[picked]


def generate_servers(n_servers: int, rng: np.random.Generator) -> pd.DataFrame:
    """Draw a server inventory: one row per server, sorted by ``server_id``.

    Commissioning dates lie before the default synthetic window; ``generate_fleet`` re-anchors
    them to the requested window and commissions a few servers inside it.
    """
    if n_servers < 1:
        raise ValueError(f"n_servers must be at least 1, got {n_servers}")
    n = n_servers
    drawn = _draw_attributes(rng, n)
    monthly_cost = _monthly_cost(rng, drawn)
    age_days = rng.integers(30, 8 * 365, n)
    commissioned = pd.Timestamp(REFERENCE_START) - pd.to_timedelta(age_days, unit="D")

    width = max(5, len(str(n)))
    country_of = {r: country_for_region(r) for r in REGIONS}
    servers = pd.DataFrame(
        {
            "server_id": np.array([f"srv-{i:0{width}d}" for i in range(1, n + 1)], dtype=object),
            "hostname": _hostnames(drawn["business_unit"], drawn["environment"], drawn["region"]),
            "business_unit": drawn["business_unit"],
            "region": drawn["region"],
            "country": [country_of[r] for r in drawn["region"]],
            "environment": drawn["environment"],
            "criticality": drawn["criticality"],
            "platform": drawn["platform"],
            "os": drawn["os"],
            "cpu_cores": drawn["cpu_cores"],
            "memory_gb": drawn["memory_gb"],
            "disk_gb": drawn["disk_gb"],
            "monthly_cost_usd": monthly_cost.astype(np.float64),
            "commissioned_date": pd.DatetimeIndex(commissioned).as_unit("ns").normalize(),
        }
    )
    logger.info("generated %d servers in %d business units", n, servers["business_unit"].nunique())
    return servers


def commission_in_window(
    servers: pd.DataFrame, end_date: dt.date, days: int, rng: np.random.Generator
) -> pd.DataFrame:
    """Re-anchor commissioning dates to the window; ~5% move inside it with >= 120 days of history."""
    start = pd.Timestamp(end_date) - pd.Timedelta(days=days - 1)
    shifted = servers["commissioned_date"] + (start - pd.Timestamp(REFERENCE_START))
    n_late = round(LATE_COMMISSION_SHARE * len(servers)) if days >= 2 * MIN_HISTORY_DAYS else 0
    late = rng.choice(len(servers), size=n_late, replace=False)
    offsets = (
        rng.integers(30, days - MIN_HISTORY_DAYS + 1, size=n_late)
        if n_late
        else np.zeros(0, dtype=int)
    )
    shifted.iloc[late] = (start + pd.to_timedelta(offsets, unit="D")).as_unit("ns")
    return servers.assign(commissioned_date=shifted)


def _draw_attributes(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Business unit, region and environment, then what follows from them: criticality,
    platform, operating system, cores, memory and disk (in this order: the draws share ``rng``)."""
    business_unit = draw(rng, list(BUSINESS_UNITS), [w for _, w in BUSINESS_UNITS.values()], n)
    region = draw(rng, list(REGIONS), [w for _, w in REGIONS.values()], n)
    environment = draw(rng, list(ENVIRONMENTS), [w for _, w in ENVIRONMENTS.values()], n)
    criticality = draw_by_group(
        rng, CRITICALITIES, environment, CRITICALITY_BY_ENV, CRITICALITY_BY_ENV["dev"]
    )
    platform = draw_by_group(rng, PLATFORMS, business_unit, PLATFORM_BY_BU, PLATFORM_DEFAULT)
    os_name = draw_by_group(
        rng, OPERATING_SYSTEMS, platform, OS_BY_PLATFORM, OS_BY_PLATFORM["on-prem"]
    )
    cores = draw_by_group(rng, CORE_SIZES, environment, CORES_BY_ENV, CORES_BY_ENV["dev"]).astype(
        np.int64
    )
    ratio = draw_by_group(
        rng, MEMORY_RATIOS, business_unit, MEMORY_RATIO_BY_BU, MEMORY_RATIO_DEFAULT
    )
    disk_gb = draw_by_group(rng, DISK_SIZES, business_unit, DISK_BY_BU, DISK_DEFAULT)
    return {
        "business_unit": business_unit,
        "region": region,
        "environment": environment,
        "criticality": criticality,
        "platform": platform,
        "os": os_name,
        "cpu_cores": cores,
        "memory_gb": (cores * ratio).astype(np.int64),
        "disk_gb": disk_gb.astype(np.int64),
    }


def _monthly_cost(rng: np.random.Generator, drawn: Mapping[str, np.ndarray]) -> np.ndarray:
    """List price of each server's cores, memory and disk on its platform, with a deal factor."""
    prices = np.array([PRICES[p] for p in drawn["platform"]])
    list_price = (
        drawn["cpu_cores"] * prices[:, 0]
        + drawn["memory_gb"] * prices[:, 1]
        + drawn["disk_gb"] * prices[:, 2]
    )
    return np.round(list_price * rng.lognormal(0.0, 0.08, len(list_price)), 2)


def _hostnames(business_unit: np.ndarray, environment: np.ndarray, region: np.ndarray) -> list[str]:
    """``<unit>-<env>-<region>-<nnnn>``, numbered within each prefix in server order."""
    prefix = pd.Series(
        [
            f"{BUSINESS_UNITS[b][0]}-{ENVIRONMENTS[e][0]}-{REGIONS[r][0]}"
            for b, e, r in zip(business_unit, environment, region, strict=True)
        ]
    )
    sequence = prefix.groupby(prefix).cumcount() + 1
    return [f"{p}-{s:04d}" for p, s in zip(prefix, sequence, strict=True)]
