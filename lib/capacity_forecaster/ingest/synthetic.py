"""Stage 01: a synthetic, realistic enterprise fleet, deterministic by seed.

``generate_servers`` draws an inventory (CMDB-like: business unit, region, environment, size,
cost, commissioning date). ``generate_metrics`` draws daily P95 CPU, memory and disk for every
server, vectorised over a days x servers matrix: trend, weekly and yearly seasonality,
end-of-quarter spikes, public-holiday dips, AR(1) noise, memory leaks with restarts, disk growth
with cleanups, then data-quality defects (outliers, missing rows, a few NaN values).
``generate_fleet`` ties both to a params section and a seed; ``check_generated`` asserts the
stage's post-conditions. No I/O here: the notebook writes the frames.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from capacity_forecaster.core.calendar import country_for_region, holiday_mask, quarter_end_window
from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.params import SyntheticParams
from capacity_forecaster.core.vocabulary import METRICS

logger = logging.getLogger(__name__)

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
    "cpu_cores",
    "memory_gb",
    "disk_gb",
    "monthly_cost_usd",
    "commissioned_date",
)
METRIC_COLUMNS = ("date", "server_id", *METRICS)

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
CRITICALITIES = ("critical", "high", "medium", "low")
CRITICALITY_BY_ENV = {
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

FINANCE_BUS = ("Trading", "Risk & Compliance", "Payments")
RETAIL_BUS = ("Retail Banking", "Payments")
EUROPE_REGIONS = ("eu-west", "eu-central")

# Utilisation archetypes, drawn per server in generate_metrics (behaviour, not inventory).
STEADY, IDLE, OVER_PROVISIONED, HOT = 0, 1, 2, 3
ARCHETYPE_NAMES = ("steady", "idle", "over_provisioned", "hot")
ARCHETYPES_BY_ENV = {  # steady, idle, over-provisioned, hot
    "prod": (0.59, 0.04, 0.22, 0.15),
    "staging": (0.56, 0.10, 0.28, 0.06),
    "dev": (0.48, 0.18, 0.30, 0.04),
    "test": (0.48, 0.18, 0.30, 0.04),
}
# Weekly load shape Mon..Sun, scaled by a per-server strength: weekday business load, weekend dip.
WEEKLY_SHAPE = (0.05, 0.10, 0.10, 0.05, -0.05, -1.00, -1.10)

LATE_COMMISSION_SHARE = 0.05  # of servers commissioned inside the window
MIN_HISTORY_DAYS = 120  # a server commissioned inside the window still has this much history
REGIONAL_OUTAGE_SHARE = 0.15  # of missing rows that come from region-wide monitoring outages
NAN_SHARE_OF_MISSING = 0.1  # single-metric NaN values, as a share of missing_share
_BLOCK_SERVERS = 1000  # servers per block of series (fixed: results depend on it)
# Without a window (generate_servers alone), servers are commissioned before the default one.
_DEFAULT_SYNTHETIC = SyntheticParams()
_REFERENCE_START = _DEFAULT_SYNTHETIC.end_date - dt.timedelta(days=_DEFAULT_SYNTHETIC.days - 1)


def generate_servers(n_servers: int, rng: np.random.Generator) -> pd.DataFrame:
    """Draw a server inventory: one row per server, sorted by ``server_id``.

    Commissioning dates lie before the default synthetic window; ``generate_fleet`` re-anchors
    them to the requested window and commissions a few servers inside it.
    """
    if n_servers < 1:
        raise ValueError(f"n_servers must be at least 1, got {n_servers}")
    n = n_servers
    business_unit = _draw(rng, list(BUSINESS_UNITS), [w for _, w in BUSINESS_UNITS.values()], n)
    region = _draw(rng, list(REGIONS), [w for _, w in REGIONS.values()], n)
    environment = _draw(rng, list(ENVIRONMENTS), [w for _, w in ENVIRONMENTS.values()], n)
    criticality = _draw_by_group(
        rng, CRITICALITIES, environment, CRITICALITY_BY_ENV, CRITICALITY_BY_ENV["dev"]
    )
    platform = _draw_by_group(rng, PLATFORMS, business_unit, PLATFORM_BY_BU, PLATFORM_DEFAULT)
    os_name = _draw_by_group(
        rng, OPERATING_SYSTEMS, platform, OS_BY_PLATFORM, OS_BY_PLATFORM["on-prem"]
    )
    cores = _draw_by_group(rng, CORE_SIZES, environment, CORES_BY_ENV, CORES_BY_ENV["dev"]).astype(
        np.int64
    )
    ratio = _draw_by_group(
        rng, MEMORY_RATIOS, business_unit, MEMORY_RATIO_BY_BU, MEMORY_RATIO_DEFAULT
    )
    memory_gb = (cores * ratio).astype(np.int64)
    disk_gb = _draw_by_group(rng, DISK_SIZES, business_unit, DISK_BY_BU, DISK_DEFAULT).astype(
        np.int64
    )

    prices = np.array([PRICES[p] for p in platform])
    list_price = cores * prices[:, 0] + memory_gb * prices[:, 1] + disk_gb * prices[:, 2]
    monthly_cost = np.round(list_price * rng.lognormal(0.0, 0.08, n), 2)

    age_days = rng.integers(30, 8 * 365, n)
    commissioned = pd.Timestamp(_REFERENCE_START) - pd.to_timedelta(age_days, unit="D")

    width = max(5, len(str(n)))
    server_id = np.array([f"srv-{i:0{width}d}" for i in range(1, n + 1)], dtype=object)
    prefix = pd.Series(
        [
            f"{BUSINESS_UNITS[b][0]}-{ENVIRONMENTS[e][0]}-{REGIONS[r][0]}"
            for b, e, r in zip(business_unit, environment, region, strict=True)
        ]
    )
    sequence = prefix.groupby(prefix).cumcount() + 1
    hostname = [f"{p}-{s:04d}" for p, s in zip(prefix, sequence, strict=True)]
    country_of = {r: country_for_region(r) for r in REGIONS}

    servers = pd.DataFrame(
        {
            "server_id": server_id,
            "hostname": hostname,
            "business_unit": business_unit,
            "region": region,
            "country": [country_of[r] for r in region],
            "environment": environment,
            "criticality": criticality,
            "platform": platform,
            "os": os_name,
            "cpu_cores": cores,
            "memory_gb": memory_gb,
            "disk_gb": disk_gb,
            "monthly_cost_usd": monthly_cost.astype(np.float64),
            "commissioned_date": pd.DatetimeIndex(commissioned).as_unit("ns").normalize(),
        }
    )
    logger.info("generated %d servers in %d business units", n, servers["business_unit"].nunique())
    return servers


def generate_metrics(
    servers: pd.DataFrame,
    end_date: dt.date,
    days: int,
    rng: np.random.Generator,
    *,
    outlier_share: float,
    missing_share: float,
    quarter_end_business_days: int = 5,
) -> pd.DataFrame:
    """Draw daily P95 CPU, memory and disk (percent) for every server over ``days`` ending ``end_date``.

    A server reports from its commissioning date (or the window start). Defects: ``outlier_share``
    of the values become one-day spikes or drops, ``missing_share`` of the server-days are removed
    as whole rows (single days, multi-day runs, region-wide outages) and about a tenth of that
    share of rows get one metric set to NaN. Rows are sorted by ``server_id``, ``date``.
    """
    started = time.perf_counter()
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    for name, share in (("outlier_share", outlier_share), ("missing_share", missing_share)):
        if not 0 <= share < 1:
            raise ValueError(f"{name} must be in [0, 1), got {share}")
    needed = {"server_id", "business_unit", "region", "country", "environment", "commissioned_date"}
    if absent := sorted(needed - set(servers.columns)):
        raise ValueError(f"servers is missing columns {absent}")

    dates = _window(end_date, days)
    first = _first_active_day(servers, dates)
    n = len(servers)
    archetype = _draw_archetypes(rng, servers["environment"].to_numpy(dtype=object))
    hot_metric = np.where(archetype == HOT, rng.choice(3, n, p=[0.4, 0.25, 0.35]), -1)
    declining = np.isin(archetype, (STEADY, OVER_PROVISIONED)) & (rng.random(n) < 0.06)
    holidays = _holiday_matrix(dates, servers["country"])
    in_window = quarter_end_window(dates, quarter_end_business_days)

    # Blocks of servers bound the memory of the days x servers temporaries.
    series = np.empty((len(METRICS), n, days))
    for lo in range(0, n, _BLOCK_SERVERS):
        block = slice(lo, min(lo + _BLOCK_SERVERS, n))
        series[:, block] = _series_block(
            rng,
            dates,
            servers.iloc[block],
            first[block],
            archetype[block],
            hot_metric[block],
            declining[block],
            holidays[:, block],
            in_window,
        )

    missing = _missing_cells(
        rng, first, days, missing_share, servers["region"].to_numpy(dtype=object)
    )
    active = np.arange(days)[None, :] >= first[:, None]
    rows = np.flatnonzero((active & ~missing).ravel())  # server-major, the output order
    values = np.empty((len(rows), len(METRICS)))
    for i in range(len(METRICS)):
        values[:, i] = series[i].ravel()[rows]
    del series
    _inject_outliers(rng, values, outlier_share)
    _inject_nan(rng, values, _nan_target(len(rows), missing_share))

    ids = servers["server_id"].to_numpy(dtype=object)
    metrics = pd.DataFrame(
        {
            "date": dates.to_numpy()[rows % days],
            "server_id": pd.array(ids, dtype="str").take(rows // days),
            **{name: values[:, i] for i, name in enumerate(METRICS)},
        }
    )
    order = np.argsort(ids, kind="stable")
    if not np.array_equal(order, np.arange(n)):  # servers not sorted by id: sort the output
        metrics = metrics.sort_values(["server_id", "date"], ignore_index=True)
    counts = np.bincount(archetype, minlength=4)
    logger.info(
        "generated %d metric rows for %d servers over %d days in %.1fs (%s; %d commissioned in window)",
        len(metrics),
        n,
        days,
        time.perf_counter() - started,
        ", ".join(f"{c} {name}" for c, name in zip(counts, ARCHETYPE_NAMES, strict=True)),
        int((first > 0).sum()),
    )
    return metrics


def generate_fleet(
    params: SyntheticParams, seed: int, quarter_end_business_days: int = 5
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate ``(metrics, servers)`` for a params section; the same seed gives identical frames.

    About 5% of the servers are commissioned inside the window, with at least 120 days of history.
    """
    rng = np.random.default_rng(seed)
    servers = generate_servers(params.n_servers, rng)
    servers = _commission_in_window(servers, params.end_date, params.days, rng)
    metrics = generate_metrics(
        servers,
        params.end_date,
        params.days,
        rng,
        outlier_share=params.outlier_share,
        missing_share=params.missing_share,
        quarter_end_business_days=quarter_end_business_days,
    )
    return metrics, servers


def check_generated(
    metrics: pd.DataFrame, servers: pd.DataFrame, params: SyntheticParams
) -> dict[str, Any]:
    """Assert stage 01's post-conditions; raise StageCheckError naming every failure.

    Returns a small JSON-ready summary (rows, servers, date range, missing rows, NaN counts).
    """
    where = "stage 01 (synth)"
    for frame, name, columns in (
        (metrics, "metrics", METRIC_COLUMNS),
        (servers, "servers", SERVER_COLUMNS),
    ):
        if absent := [c for c in columns if c not in frame.columns]:
            raise StageCheckError(f"{where}: {name} is missing columns {absent}")

    failures: list[str] = []
    failures += _dtype_failures(metrics, servers)
    if failures:  # the checks below rely on the dtypes
        raise StageCheckError(f"{where}: " + "; ".join(failures))

    if servers["server_id"].isna().any() or servers["server_id"].duplicated().any():
        failures.append(
            f"servers: server_id has {servers['server_id'].duplicated().sum()} duplicates or NaN"
        )
    if servers["commissioned_date"].isna().any():
        failures.append("servers: commissioned_date has NaN")

    dates = _window(params.end_date, params.days)
    failures += _key_failures(metrics, servers, dates)

    values = metrics[list(METRICS)].to_numpy()
    for i, name in enumerate(METRICS):
        column = values[:, i]
        bad = np.flatnonzero(~np.isnan(column) & ((column < 0) | (column > 100)))
        if len(bad):
            row = metrics.iloc[bad[0]]
            failures.append(
                f"metrics: {len(bad)} values of {name} outside [0, 100] "
                f"(e.g. {row['server_id']} on {row['date']:%Y-%m-%d}: {row[name]})"
            )

    expected_rows, missing_rows = _expected_rows(servers, dates, params.missing_share)
    if len(metrics) != expected_rows - missing_rows:
        failures.append(
            f"metrics: {len(metrics)} rows, expected {expected_rows - missing_rows} "
            f"({expected_rows} server-days minus {missing_rows} injected gaps)"
        )
    nan_counts = {name: int(np.isnan(values[:, i]).sum()) for i, name in enumerate(METRICS)}
    expected_nan = _nan_target(len(metrics), params.missing_share)
    tolerance = max(2, round(0.1 * expected_nan))
    if abs(sum(nan_counts.values()) - expected_nan) > tolerance:
        failures.append(
            f"metrics: {sum(nan_counts.values())} NaN values {nan_counts}, expected {expected_nan} +- {tolerance}"
        )

    if failures:
        raise StageCheckError(f"{where}: " + "; ".join(failures))
    summary = {
        "rows": len(metrics),
        "servers": int(metrics["server_id"].nunique()),
        "date_min": f"{metrics['date'].min():%Y-%m-%d}",
        "date_max": f"{metrics['date'].max():%Y-%m-%d}",
        "expected_server_days": expected_rows,
        "missing_rows": missing_rows,
        "nan_counts": nan_counts,
        "commissioned_in_window": int((servers["commissioned_date"] > dates[0]).sum()),
    }
    logger.info("stage 01 check passed: %s", summary)
    return summary


# --- inventory helpers ---------------------------------------------------------------------------


def _draw(rng: np.random.Generator, options: list[Any], weights: list[float], n: int) -> np.ndarray:
    """``n`` draws from ``options`` with (normalised) ``weights``, as an object array."""
    p = np.asarray(weights, dtype=np.float64)
    picked = rng.choice(len(options), size=n, p=p / p.sum())
    return np.asarray(options, dtype=object)[picked]


def _draw_by_group(
    rng: np.random.Generator,
    options: tuple[Any, ...] | np.ndarray,
    groups: np.ndarray,
    table: dict[str, tuple[float, ...]],
    default: tuple[float, ...],
) -> np.ndarray:
    """One draw per row from ``options``, with probabilities looked up by the row's group."""
    probs = np.array([table.get(g, default) for g in groups], dtype=np.float64).reshape(
        len(groups), len(options)
    )
    cumulative = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    picked = (rng.random(len(groups))[:, None] >= cumulative[:, :-1]).sum(axis=1)
    return np.asarray(options)[picked]


def _commission_in_window(
    servers: pd.DataFrame, end_date: dt.date, days: int, rng: np.random.Generator
) -> pd.DataFrame:
    """Re-anchor commissioning dates to the window; ~5% move inside it with >= 120 days of history."""
    start = pd.Timestamp(end_date) - pd.Timedelta(days=days - 1)
    shifted = servers["commissioned_date"] + (start - pd.Timestamp(_REFERENCE_START))
    n_late = round(LATE_COMMISSION_SHARE * len(servers)) if days >= 2 * MIN_HISTORY_DAYS else 0
    late = rng.choice(len(servers), size=n_late, replace=False)
    offsets = (
        rng.integers(30, days - MIN_HISTORY_DAYS + 1, size=n_late)
        if n_late
        else np.zeros(0, dtype=int)
    )
    shifted.iloc[late] = (start + pd.to_timedelta(offsets, unit="D")).as_unit("ns")
    return servers.assign(commissioned_date=shifted)


# --- metric helpers ------------------------------------------------------------------------------


class _Effects(NamedTuple):
    """Calendar effects shared by CPU and memory (per server, or days x servers)."""

    weekly_strength: np.ndarray  # depth of the weekend dip per server
    weekly_shape: np.ndarray  # Mon..Sun load shape per day, holidays shaped like a Sunday
    yearly: np.ndarray  # relative seasonal change: Q4 peak, European summer dip
    quarter_end: np.ndarray  # relative spike on the last business days of each quarter
    ramp: np.ndarray  # 0..1 load ramp after commissioning inside the window (1 otherwise)


def _window(end_date: dt.date, days: int) -> pd.DatetimeIndex:
    """The ``days`` daily dates ending on ``end_date`` (naive, midnight, nanosecond unit)."""
    return pd.date_range(end=pd.Timestamp(end_date), periods=days, freq="D").as_unit("ns")


def _first_active_day(servers: pd.DataFrame, dates: pd.DatetimeIndex) -> np.ndarray:
    """Index of each server's first day in the window (0 when commissioned before it)."""
    commissioned = pd.DatetimeIndex(servers["commissioned_date"]).normalize()
    offset = np.asarray((commissioned - dates[0]).days, dtype=np.int64)
    if (late := offset > len(dates) - 1).any():
        examples = servers["server_id"].to_numpy()[late][:3].tolist()
        raise ValueError(
            f"{late.sum()} servers are commissioned after the window ends on {dates[-1]:%Y-%m-%d} "
            f"(e.g. {examples}); use generate_fleet or an end_date after their commissioning"
        )
    return np.maximum(offset, 0)


def _draw_archetypes(rng: np.random.Generator, env: np.ndarray) -> np.ndarray:
    """Utilisation archetype per server; fleets of 10+ get at least one idle, over-provisioned and hot."""
    archetype = _draw_by_group(rng, np.arange(4), env, ARCHETYPES_BY_ENV, ARCHETYPES_BY_ENV["dev"])
    if len(archetype) >= 10:
        for kind in (IDLE, OVER_PROVISIONED, HOT):
            steady = np.flatnonzero(archetype == STEADY)
            if not (archetype == kind).any() and len(steady):
                archetype[rng.choice(steady)] = kind
    return archetype


def _weekly_strength(rng: np.random.Generator, bu: np.ndarray, env: np.ndarray) -> np.ndarray:
    """Depth of the weekend dip per server: deep for business-facing prod, shallow for batch."""
    prod = env == "prod"
    low, high = np.full(len(bu), 0.10), np.full(len(bu), 0.30)  # non-prod: people work weekdays
    for unit, (lo, hi) in {
        "Trading": (0.45, 0.65),  # markets closed at the weekend
        "Retail Banking": (0.25, 0.45),
        "Payments": (0.10, 0.25),  # card payments run all week
        "Risk & Compliance": (0.15, 0.35),
        "Corporate IT": (0.15, 0.35),
    }.items():
        low = np.where(prod & (bu == unit), lo, low)
        high = np.where(prod & (bu == unit), hi, high)
    batch = bu == "Data Platform"  # pipelines run around the clock
    low, high = np.where(batch, 0.0, low), np.where(batch, 0.10, high)
    return rng.uniform(low, high)


def _holiday_matrix(dates: pd.DatetimeIndex, countries: pd.Series) -> np.ndarray:
    """days x servers: True on a public holiday in the server's country (one calendar per country)."""
    codes, uniques = pd.factorize(countries.astype(object), use_na_sentinel=False)
    by_country = np.column_stack(
        [holiday_mask(dates, None if pd.isna(c) else str(c)) for c in uniques]
        or [np.zeros(len(dates), bool)]
    )
    return by_country[:, codes]


def _bump(day_of_year: np.ndarray, centre: float, width: float) -> np.ndarray:
    """A smooth yearly bump (Gaussian on the circular day-of-year distance), peak 1."""
    distance = (day_of_year - centre + 182.5) % 365.25 - 182.5
    return np.exp(-0.5 * (distance / width) ** 2)


def _yearly_factor(
    rng: np.random.Generator, dates: pd.DatetimeIndex, bu: np.ndarray, region: np.ndarray
) -> np.ndarray:
    """days x servers relative change: Q4 holiday-season peak, European summer dip."""
    n = len(bu)
    doy = dates.day_of_year.to_numpy().astype(np.float64)
    q4 = np.where(np.isin(bu, RETAIL_BUS), rng.uniform(0.10, 0.30, n), rng.uniform(0.0, 0.04, n))
    summer = np.where(
        np.isin(region, EUROPE_REGIONS), rng.uniform(0.03, 0.10, n), rng.uniform(0.0, 0.02, n)
    )
    return (
        _bump(doy, 340, 20)[:, None] * q4[None, :] - _bump(doy, 220, 15)[:, None] * summer[None, :]
    )


def _ar1(rng: np.random.Generator, days: int, phi: np.ndarray) -> np.ndarray:
    """days x servers AR(1) noise with unit variance and a per-server coefficient."""
    shocks = rng.standard_normal((days, len(phi)))
    out = np.empty_like(shocks)
    scale = np.sqrt(1.0 - phi**2)
    out[0] = shocks[0]
    for day in range(1, days):
        out[day] = phi * out[day - 1] + scale * shocks[day]
    return out


def _trend(
    t: np.ndarray, level_end: np.ndarray, growth_per_year: np.ndarray, floor: float = 0.15
) -> np.ndarray:
    """days x servers linear trend ending at ``level_end``; relative growth per year, floored."""
    relative = 1.0 + growth_per_year[None, :] * (t[:, None] - t[-1]) / 365.0
    return level_end[None, :] * np.maximum(relative, floor)


def _growth_to_breach(
    rng: np.random.Generator, t: np.ndarray, n: int, threshold: float, floor: float, ceiling: float
) -> np.ndarray:
    """days x servers for hot servers: flat, then linear growth that crosses ``threshold``
    roughly 30-120 days after the window ends."""
    slope = rng.uniform(0.06, 0.16, n)
    level_end = np.clip(threshold - slope * rng.uniform(30, 120, n), floor, ceiling)
    span = rng.uniform(150, 400, n)
    since = np.maximum(t[:, None] - t[-1], -span[None, :])
    return level_end[None, :] + slope[None, :] * since


def _series_block(
    rng: np.random.Generator,
    dates: pd.DatetimeIndex,
    servers: pd.DataFrame,
    first: np.ndarray,
    archetype: np.ndarray,
    hot_metric: np.ndarray,
    declining: np.ndarray,
    holidays: np.ndarray,
    in_window: np.ndarray,
) -> np.ndarray:
    """metrics x servers x days CPU, memory and disk P95 for a block of servers, in [0, 100]."""
    n, days = len(servers), len(dates)
    t = np.arange(days)
    bu = servers["business_unit"].to_numpy(dtype=object)
    shape = np.broadcast_to(np.asarray(WEEKLY_SHAPE)[dates.day_of_week][:, None], (days, n))
    eoq_amplitude = np.where(
        np.isin(bu, FINANCE_BUS),
        rng.uniform(0.15, 0.40, n),
        np.where(bu == "Corporate IT", rng.uniform(0.05, 0.15, n), rng.uniform(0.0, 0.05, n)),
    )
    effects = _Effects(
        weekly_strength=_weekly_strength(rng, bu, servers["environment"].to_numpy(dtype=object)),
        weekly_shape=np.where(holidays, np.minimum(shape, -1.0), shape),  # holiday ~ Sunday
        yearly=_yearly_factor(rng, dates, bu, servers["region"].to_numpy(dtype=object)),
        quarter_end=in_window.astype(np.float64)[:, None] * eoq_amplitude[None, :],
        ramp=np.where(first > 0, np.clip((t[:, None] - first) / rng.uniform(14, 45, n), 0, 1), 1.0),
    )
    cpu = _cpu(rng, t, archetype, hot_metric == 0, declining, effects)
    mem = _memory(rng, t, archetype, hot_metric == 1, declining, effects)
    disk = _disk(rng, dates, first, archetype, hot_metric == 2)
    return np.clip(np.stack([cpu.T, mem.T, disk.T]), 0.0, 100.0)


def _cpu(
    rng: np.random.Generator,
    t: np.ndarray,
    archetype: np.ndarray,
    hot: np.ndarray,
    declining: np.ndarray,
    effects: _Effects,
) -> np.ndarray:
    """days x servers CPU P95: trend x weekly x yearly x quarter-end, plus AR(1) noise."""
    n = len(archetype)
    level = np.select(
        [archetype == IDLE, archetype == OVER_PROVISIONED, archetype == HOT],
        [rng.uniform(0.6, 2.6, n), rng.uniform(5.0, 18.0, n), rng.uniform(35.0, 60.0, n)],
        rng.uniform(15.0, 50.0, n),
    )
    growth = np.select(
        [declining, archetype == IDLE, archetype == OVER_PROVISIONED],
        [rng.uniform(-0.45, -0.20, n), np.zeros(n), rng.normal(0.03, 0.05, n)],
        rng.normal(0.06, 0.08, n),
    )
    base = _trend(t, level, growth)
    base[:, hot] = _growth_to_breach(rng, t, int(hot.sum()), 80.0, 40.0, 72.0)
    e = effects
    strength = np.where(archetype == IDLE, 0.5, 1.0) * e.weekly_strength
    factor = (1.0 + strength[None, :] * e.weekly_shape) * (1.0 + e.yearly) * (1.0 + e.quarter_end)
    cv = np.where(archetype == IDLE, rng.uniform(0.05, 0.12, n), rng.uniform(0.04, 0.09, n))
    noise = _ar1(rng, len(t), rng.uniform(0.4, 0.8, n)) * cv[None, :]
    return base * (0.35 + 0.65 * e.ramp) * (factor + noise)


def _memory(
    rng: np.random.Generator,
    t: np.ndarray,
    archetype: np.ndarray,
    hot: np.ndarray,
    declining: np.ndarray,
    effects: _Effects,
) -> np.ndarray:
    """days x servers memory P95: higher base, weak weekly pattern, slow drift, leaks and restarts."""
    n, days = len(archetype), len(t)
    level = np.select(
        [archetype == IDLE, archetype == OVER_PROVISIONED, archetype == HOT],
        [rng.uniform(12.0, 30.0, n), rng.uniform(15.0, 35.0, n), rng.uniform(45.0, 70.0, n)],
        rng.uniform(40.0, 68.0, n),
    )
    growth = np.where(declining, rng.uniform(-0.25, -0.10, n), rng.normal(0.02, 0.04, n))
    base = _trend(t, level, growth)
    base[:, hot] = _growth_to_breach(rng, t, int(hot.sum()), 85.0, 50.0, 82.0)

    # Leaks grow memory between restarts (deploys, patching), which drop it back: a sawtooth.
    leaky = (rng.random(n) < 0.35) & ~hot
    leak_rate = np.where(leaky, rng.uniform(0.02, 0.12, n), rng.uniform(0.0, 0.01, n))
    restart_rate = np.where(leaky, 1.0 / rng.uniform(30, 90, n), 1.0 / rng.uniform(60, 240, n))
    restarts = rng.random((days, n)) < restart_rate[None, :]
    last_restart = np.where(restarts, t[:, None], -rng.integers(0, 60, n)[None, :])
    since_restart = t[:, None] - np.maximum.accumulate(last_restart, axis=0)
    leak = np.minimum(leak_rate[None, :] * since_restart, rng.uniform(8, 20, n)[None, :])
    drift = np.cumsum(rng.normal(0.0, 1.0, (days, n)) * rng.uniform(0.03, 0.10, n)[None, :], axis=0)
    drift -= drift[-1]  # anchored at the end, so the end level stays as drawn

    factor = (
        (1.0 + 0.15 * effects.weekly_strength[None, :] * effects.weekly_shape)
        * (1.0 + 0.3 * effects.yearly)
        * (1.0 + 0.3 * effects.quarter_end)
    )
    noise = _ar1(rng, days, rng.uniform(0.5, 0.9, n)) * rng.uniform(0.01, 0.03, n)[None, :]
    return (base + leak + drift) * (0.5 + 0.5 * effects.ramp) * (factor + noise)


def _disk(
    rng: np.random.Generator,
    dates: pd.DatetimeIndex,
    first: np.ndarray,
    archetype: np.ndarray,
    hot: np.ndarray,
) -> np.ndarray:
    """days x servers disk P95: steady growth with cleanups when full (a sawtooth), no real weekly pattern.

    Hot disks grow fast with no cleanup, crossing 90% roughly 20-110 days after the window ends.
    """
    n, days = len(archetype), len(dates)
    t = np.arange(days)
    growth = np.clip(rng.lognormal(np.log(0.035), 0.6, n), 0.003, 0.15)  # percentage points per day
    weekday = np.where(dates.day_of_week.to_numpy() < 5, 1.1, 0.75)[:, None]
    increments = (
        growth[None, :] + rng.normal(0.0, 1.0, (days, n)) * 0.5 * growth[None, :]
    ) * weekday
    housekeeping = rng.random((days, n)) < 1.0 / rng.uniform(60, 200, n)[None, :]
    increments -= (
        housekeeping * growth[None, :] * rng.uniform(5.0, 40.0, (days, n))
    )  # logs, temp files

    hot_growth = rng.uniform(0.07, 0.20, n)
    level_end = np.clip(90.0 - hot_growth * rng.uniform(20, 110, n), 55.0, 86.0)
    span = np.minimum(rng.uniform(120, 365, n), (level_end - 10.0) / hot_growth)
    in_span = (t[:, None] - t[-1]) >= -span[None, :]
    hot_increments = hot_growth[None, :] * (1.0 + 0.3 * rng.standard_normal((days, n))) * weekday
    increments = np.where(hot[None, :] & in_span, hot_increments, increments)
    increments[t[:, None] < first[None, :]] = 0.0
    increments[first, np.arange(n)] = 0.0  # the first active day is the starting level

    start = np.where(first > 0, rng.uniform(3.0, 12.0, n), rng.uniform(15.0, 55.0, n))
    # Hot disks: scale the growth before the span so the start level stays positive.
    pre = np.where(~in_span, increments, 0.0).sum(axis=0)
    room = level_end - 3.0 - np.where(in_span, increments, 0.0).sum(axis=0)
    pre_scale = np.where(
        hot & (pre > room), np.clip(room, 0.0, None) / np.where(pre > 0, pre, 1.0), 1.0
    )
    increments = np.where(hot[None, :] & ~in_span, increments * pre_scale[None, :], increments)
    start = np.where(hot, level_end - increments.sum(axis=0), start)

    # Cleanups (archiving, purges): when the disk passes a server's alert level, or ad hoc.
    threshold = np.where(hot, np.inf, rng.uniform(68.0, 86.0, n))
    ad_hoc = (rng.random((days, n)) < 1.0 / rng.uniform(250, 800, n)[None, :]) & ~hot[None, :]
    keep = 1.0 - rng.uniform(0.10, 0.35, n)
    out = np.empty((days, n))
    level = start
    for day in range(days):
        level = np.maximum(level + increments[day], 1.0)
        level = np.where((level > threshold) | ad_hoc[day], level * keep, level)
        out[day] = level
    return out


# --- defects -------------------------------------------------------------------------------------


def _round(x: float) -> int:
    """Round half up (the same count in the generator and in the check)."""
    return int(np.floor(x + 0.5))


def _missing_budget(first: np.ndarray, days: int, missing_share: float) -> tuple[int, int]:
    """(expected server-days, rows to remove); a server's first and last day are never removed."""
    expected = int((days - first).sum())
    removable = int(np.maximum(days - first - 2, 0).sum())
    return expected, min(_round(missing_share * expected), removable)


def _expected_rows(
    servers: pd.DataFrame, dates: pd.DatetimeIndex, missing_share: float
) -> tuple[int, int]:
    """(expected server-days, injected missing rows) for a fleet over a window."""
    commissioned = pd.DatetimeIndex(servers["commissioned_date"]).normalize()
    first = np.clip(np.asarray((commissioned - dates[0]).days, dtype=np.int64), 0, len(dates))
    return _missing_budget(first, len(dates), missing_share)


def _nan_target(rows: int, missing_share: float) -> int:
    """Single-metric NaN values injected into ``rows`` kept rows."""
    return min(_round(NAN_SHARE_OF_MISSING * missing_share * rows), rows)


def _missing_cells(
    rng: np.random.Generator, first: np.ndarray, days: int, missing_share: float, region: np.ndarray
) -> np.ndarray:
    """servers x days mask of removed server-days: regional outages, then per-server runs.

    Exactly the budgeted number of cells, never a server's first or last day.
    """
    n = len(first)
    _, target = _missing_budget(first, days, missing_share)
    missing = np.zeros((n, days), dtype=bool)
    if target == 0:
        return missing
    removable = np.zeros((n, days), dtype=bool)
    day = np.arange(days)
    removable[:] = (day[None, :] > first[:, None]) & (day[None, :] < days - 1)

    candidates: list[np.ndarray] = []
    # Region-wide monitoring outages (1-2 days, every server in the region).
    regions = np.unique(region.astype(str))
    per_region = n / len(regions)
    for _ in range(int(REGIONAL_OUTAGE_SHARE * target / (1.5 * per_region))):
        members = np.flatnonzero(region == regions[rng.integers(len(regions))])
        start, length = rng.integers(1, max(days - 1, 2)), rng.integers(1, 3)
        cells = members[:, None] * days + np.arange(start, min(start + length, days))[None, :]
        candidates.append(cells.ravel())
    # Per-server outages: mostly single days, some runs of 2-10 days.
    weights = np.maximum(days - first - 2, 0).astype(np.float64)
    n_runs = int(1.5 * target / 3.25) + 10
    server = rng.choice(n, size=n_runs, p=weights / weights.sum())
    span = np.maximum(days - 2 - first[server], 1)
    start = first[server] + 1 + (rng.random(n_runs) * span).astype(np.int64)
    length = np.where(rng.random(n_runs) < 0.55, 1, rng.integers(2, 11, n_runs))
    offset = np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length)
    days_in_run = np.repeat(start, length) + offset
    candidates.append(np.repeat(server, length) * days + np.minimum(days_in_run, days - 1))

    flat = np.concatenate(candidates)
    flat = flat[removable.ravel()[flat]]
    _, first_seen = np.unique(flat, return_index=True)
    chosen = flat[np.sort(first_seen)][:target]
    missing.ravel()[chosen] = True
    if (short := target - len(chosen)) > 0:  # very high shares: top up with random days
        pool = np.flatnonzero(removable.ravel() & ~missing.ravel())
        missing.ravel()[rng.choice(pool, size=short, replace=False)] = True
    return missing


def _inject_outliers(rng: np.random.Generator, values: np.ndarray, share: float) -> None:
    """Replace ``share`` of the values in place by one-day spikes (97-100) or drops (0)."""
    count = min(_round(share * values.size), values.size)
    if count == 0:
        return
    cells = rng.choice(values.size, size=count, replace=False)
    spikes = rng.random(count) < 0.55
    values.ravel()[cells] = np.where(spikes, rng.uniform(97.0, 100.0, count), 0.0)


def _inject_nan(rng: np.random.Generator, values: np.ndarray, count: int) -> None:
    """Set one metric to NaN in ``count`` distinct rows, in place."""
    if count == 0:
        return
    rows = rng.choice(len(values), size=count, replace=False)
    values[rows, rng.integers(0, values.shape[1], count)] = np.nan


# --- checks --------------------------------------------------------------------------------------


def _dtype_failures(metrics: pd.DataFrame, servers: pd.DataFrame) -> list[str]:
    """Contract dtypes: naive datetime64[ns] dates, string ids, float64 metrics, int sizes."""
    failures = []
    if metrics["date"].dtype != np.dtype("datetime64[ns]"):
        failures.append(
            f"metrics: date has dtype {metrics['date'].dtype}, expected datetime64[ns] (naive)"
        )
    for frame, name in ((metrics, "metrics"), (servers, "servers")):
        if not pd.api.types.is_string_dtype(frame["server_id"]):
            failures.append(f"{name}: server_id has dtype {frame['server_id'].dtype}, expected str")
    failures += [
        f"metrics: {m} has dtype {metrics[m].dtype}, expected float64"
        for m in METRICS
        if metrics[m].dtype != np.float64
    ]
    failures += [
        f"servers: {c} has dtype {servers[c].dtype}, expected integers"
        for c in ("cpu_cores", "memory_gb", "disk_gb")
        if not pd.api.types.is_integer_dtype(servers[c])
    ]
    if not pd.api.types.is_datetime64_dtype(servers["commissioned_date"]):
        failures.append(
            f"servers: commissioned_date has dtype {servers['commissioned_date'].dtype}, expected datetime64"
        )
    return failures


def _key_failures(
    metrics: pd.DataFrame, servers: pd.DataFrame, dates: pd.DatetimeIndex
) -> list[str]:
    """Dates daily and inside the window, (server_id, date) unique and sorted, ids known."""
    failures = []
    if metrics["server_id"].isna().any() or metrics["date"].isna().any():
        failures.append("metrics: server_id or date has NaN")
        return failures
    offsets = metrics["date"].to_numpy() - dates[0].to_datetime64()
    day, remainder = np.divmod(offsets, np.timedelta64(1, "D"))
    day = day.astype(np.int64)
    if (remainder != np.timedelta64(0)).any():
        failures.append(
            f"metrics: {(remainder != np.timedelta64(0)).sum()} dates are not normalised to midnight"
        )
    if ((day < 0) | (day >= len(dates))).any():
        failures.append(
            f"metrics: dates span {metrics['date'].min():%Y-%m-%d}..{metrics['date'].max():%Y-%m-%d}, "
            f"outside the window {dates[0]:%Y-%m-%d}..{dates[-1]:%Y-%m-%d}"
        )
    codes, uniques = pd.factorize(metrics["server_id"])
    uniques = np.asarray(uniques, dtype=object)
    key = codes.astype(np.int64) * (len(dates) + 1) + day
    if not (np.all(np.diff(key) > 0) and np.all(uniques[1:] > uniques[:-1])):
        duplicates = int(metrics.duplicated(["server_id", "date"]).sum())
        if duplicates:
            example = metrics[metrics.duplicated(["server_id", "date"])].iloc[0]
            failures.append(
                f"metrics: {duplicates} duplicated (server_id, date) rows "
                f"(e.g. {example['server_id']} on {example['date']:%Y-%m-%d})"
            )
        else:
            failures.append("metrics: rows are not sorted by server_id, date")
    known = set(servers["server_id"])
    if unknown := [s for s in uniques if s not in known]:
        failures.append(
            f"metrics: {len(unknown)} server_id values not in servers (e.g. {unknown[:3]})"
        )
    if silent := len(known - set(uniques)):
        failures.append(f"metrics: {silent} servers have no metric rows")
    return failures
