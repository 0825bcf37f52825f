"""The shared core of every format: long samples aggregated to the daily P95 contract.

Each reader turns its input into long samples (``timestamp, server_id, metric, value``, one
Arrow table per source file) and calls :func:`aggregate_samples`. The work runs in DuckDB:
measured on 3.5 million samples on this project's 2-core machine, parse plus aggregation took
0.8 s from parquet (4.2 M samples/s) and 1.3 s from CSV.gz, against 1.6 s and 2.2 s in polars,
at a lower peak memory; its window and quantile operators are exact, and it reads Arrow tables
without a copy. At full size (``benchmarks/ingest_throughput.py``: 1,000 servers x 90 days of
5-minute cpu and mem samples, 51.8 million rows) it read and aggregated 1.8 M samples/s from
parquet and 1.9 M/s from CSV.gz, at a peak of 2.6 and 2.9 GiB, with ``MEMORY_LIMIT`` below.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from collections.abc import Iterable
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pandas as pd

from capacity_forecaster.core.vocabulary import METRICS
from capacity_forecaster.ingest.formats import FormatResult
from capacity_forecaster.ingest.formats.sample_tables import SampleTable, load_samples
from capacity_forecaster.ingest.messages import names, warn

logger = logging.getLogger(__name__)

# DuckDB's working memory; past it, sorts and aggregates spill to a temporary folder (a
# 50-million-sample export stays under 4 GiB in all, Arrow and Python included).
MEMORY_LIMIT = "2GB"

# A day counts when samples x interval >= min_day_coverage x day length, within float noise.
_COVERAGE_TOLERANCE = 1e-9

# One row per sample, in (server, metric, time, value) order, flagged against the row before:
# an exact duplicate (same time and value) or a repeated time with another value.
_FLAG_SQL = """
CREATE TEMP TABLE flagged AS
SELECT server_id, metric, day, value,
    coalesce(sample_time = lag(sample_time) OVER w, false) AS same_time,
    coalesce(value = lag(value) OVER w, false) AS same_value,
    epoch(sample_time) - epoch(lag(sample_time) OVER w) AS gap_s
FROM samples
WINDOW w AS (PARTITION BY server_id, metric ORDER BY sample_time, value)
"""

_SERIES_SQL = """
SELECT server_id, metric,
    median(gap_s) FILTER (WHERE gap_s > 0) AS interval_s,
    count(*) FILTER (WHERE same_time AND same_value) AS duplicate_rows,
    count(*) FILTER (WHERE same_time AND NOT same_value) AS repeated_timestamps
FROM flagged GROUP BY server_id, metric
"""

_DAILY_SQL = """
SELECT server_id, metric, day, count(*) AS samples, quantile_cont(value, 0.95) AS p95
FROM flagged WHERE NOT (same_time AND same_value)
GROUP BY server_id, metric, day
"""


def aggregate_samples(
    parts: Iterable[SampleTable], timezone: str, min_day_coverage: float
) -> FormatResult:
    """Daily P95 per server and metric of long samples, as the daily contract.

    ``parts`` are ``(source, table)`` pairs of long samples whose ``metric`` is already a
    contract name (see ``sample_tables``). Rules, in order:

    * A day is a calendar day in ``timezone``: instants (an offset, or epoch seconds) are
      converted to it; naive timestamps are local times there and keep their date.
    * Empty, NaN and infinite values are dropped (``missing_values``).
    * Exact duplicates (same server, metric, time and value) are dropped (``duplicate_rows``).
      Samples repeating a time with another value (naive local times repeat in the autumn
      daylight-saving hour; NAB stamps the spring hour's samples all 03:00) are kept, both
      being real samples of different instants, and counted (``repeated_timestamps``).
    * A day counts when its samples cover at least ``min_day_coverage`` of what the series'
      own median sampling interval implies for that day's length (23 or 25 hours across a
      daylight-saving change); other days are dropped (``partial_days``, per server in
      ``partial_days_by_server``; one day of one metric of one server counts once).
    * P95 is linear interpolation between order statistics (numpy's default percentile,
      DuckDB's ``quantile_cont``, polars' "linear").
    """
    with tempfile.TemporaryDirectory(prefix="cf-duckdb-") as spill:
        con = duckdb.connect(
            ":memory:", config={"memory_limit": MEMORY_LIMIT, "temp_directory": spill}
        )
        try:
            loaded = load_samples(con, parts, timezone)
            con.execute(_FLAG_SQL)
            con.execute("DROP TABLE samples")
            series = con.execute(_SERIES_SQL).df()
            daily = con.execute(_DAILY_SQL).df()
        finally:
            con.close()
    warnings = list(loaded.warnings)
    _warn_single_time_series(series, warnings)
    kept, partial = _covered_days(daily, series, timezone, min_day_coverage)
    metrics = _wide(kept)
    servers = pd.DataFrame({"server_id": pd.Series(sorted(series["server_id"]), dtype="str")})
    servers = servers.drop_duplicates(ignore_index=True)
    counts = {
        **loaded.counts,
        "duplicate_rows": int(series["duplicate_rows"].sum()),
        "duplicate_rows_by_server": _by_server(series, "duplicate_rows"),
        "repeated_timestamps": int(series["repeated_timestamps"].sum()),
        "repeated_timestamps_by_server": _by_server(series, "repeated_timestamps"),
        "partial_days": int(partial.sum()),
        "partial_days_by_server": {str(k): int(v) for k, v in partial.items() if v},
        "servers_out": int(metrics["server_id"].nunique()),
        "days_out": len(metrics),
    }
    logger.info(
        "aggregated %d samples to %d server-days (%d partial days dropped)",
        counts["samples_read"],
        len(metrics),
        counts["partial_days"],
    )
    return FormatResult(metrics, servers, counts, warnings)


def _warn_single_time_series(series: pd.DataFrame, warnings: list[str]) -> None:
    """Name the series whose samples all share one time: no interval, so no day can count."""
    single = series.loc[series["interval_s"].isna()]
    if len(single):
        labels = [f"{s}/{m}" for s, m in zip(single["server_id"], single["metric"], strict=True)]
        warn(
            warnings,
            "export",
            f"{len(single)} server/metric series have samples at one time only, so no sampling "
            f"interval and no day that counts: {names(labels)}",
        )


def _covered_days(
    daily: pd.DataFrame, series: pd.DataFrame, timezone: str, min_day_coverage: float
) -> tuple[pd.DataFrame, pd.Series]:
    """(the series-days with enough samples, dropped series-days per server)."""
    days = daily.merge(series[["server_id", "metric", "interval_s"]], on=["server_id", "metric"])
    day_seconds = day_lengths(days["day"], timezone)
    # A series with one distinct time has no interval: none of its days can be judged, so none
    # counts (a daily export has one sample a day and an interval of a day, and passes).
    covered = days["samples"] * days["interval_s"] >= (
        min_day_coverage * day_seconds - _COVERAGE_TOLERANCE
    )
    covered = covered.fillna(False).astype(bool)
    partial = days.loc[~covered].groupby("server_id").size()
    return days.loc[covered], partial


def day_lengths(days: pd.Series, timezone: str) -> np.ndarray:
    """Seconds in each local calendar day of ``days`` (dates) in ``timezone``."""
    zone = ZoneInfo(timezone)
    local = pd.Series(pd.to_datetime(days))
    uniques = local.drop_duplicates()
    seconds = pd.Series([_day_seconds(day.date(), zone) for day in uniques], index=uniques)
    return local.map(seconds).to_numpy(dtype=float)


def _day_seconds(day: dt.date, zone: ZoneInfo) -> float:
    start = dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return (end.astimezone(dt.UTC) - start).total_seconds()


def _wide(kept: pd.DataFrame) -> pd.DataFrame:
    """Long series-day P95s as the contract's metrics table, sorted by server_id, date."""
    wide = kept.pivot(index=["server_id", "day"], columns="metric", values="p95")
    wide = wide.reindex(columns=list(METRICS)).reset_index()
    columns: dict[str, pd.Series] = {
        "date": pd.to_datetime(wide["day"]).astype("datetime64[ns]"),
        "server_id": wide["server_id"].astype("str"),
    }
    columns.update({metric: wide[metric].astype(float) for metric in METRICS})
    return (
        pd.DataFrame(columns)
        .sort_values(["server_id", "date"], kind="stable")
        .reset_index(drop=True)
    )


def _by_server(series: pd.DataFrame, column: str) -> dict[str, int]:
    """``{server_id: count}`` of ``column`` summed per server, servers with zero left out."""
    totals = series.groupby("server_id")[column].sum()
    return {str(k): int(v) for k, v in totals.items() if v}
