"""The real excerpts under tests/fixtures/real/ as ``(name, bytes)`` files, and small exports."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from capacity_forecaster.ingest.formats import SourceFile

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "real"


def real_files(folder: str) -> list[SourceFile]:
    """Every file under ``tests/fixtures/real/<folder>``, named by its path below ``folder``."""
    root = REAL / folder
    return [
        (path.relative_to(root).as_posix(), path.read_bytes())
        for path in sorted(root.rglob("*"))
        if path.is_file()
    ]


def real_file(folder: str, name: str) -> SourceFile:
    """One of ``real_files(folder)``."""
    return next(f for f in real_files(folder) if f[0] == name)


def samples_csv(
    rows: Iterable[tuple[object, ...]], header: str = "timestamp,server_id,metric,value"
) -> bytes:
    """A samples CSV of ``rows`` (each written with str())."""
    lines = [header, *(",".join(str(cell) for cell in row) for row in rows)]
    return ("\n".join(lines) + "\n").encode()


def five_minute_rows(
    server_id: str,
    metric: str,
    start: str,
    periods: int,
    seed: int = 0,
    fmt: str = "%Y-%m-%d %H:%M:%S",
) -> list[tuple[str, str, str, float]]:
    """``periods`` naive 5-minute samples from ``start`` with random values (2 decimals)."""
    times = pd.date_range(start, periods=periods, freq="5min")
    values = np.random.default_rng(seed).uniform(0, 100, periods).round(2)
    return [
        (t.strftime(fmt), server_id, metric, float(v)) for t, v in zip(times, values, strict=True)
    ]


def p95(values: Iterable[float]) -> float:
    """The hand computation the readers must match: numpy's default (linear) percentile."""
    return float(np.percentile(np.asarray(list(values), dtype=float), 95))


def day_of(frame: pd.DataFrame, server_id: str, day: str) -> pd.Series:
    """The metrics row of ``server_id`` on ``day``."""
    rows = frame[(frame["server_id"] == server_id) & (frame["date"] == pd.Timestamp(day))]
    assert len(rows) == 1, f"{server_id} {day}: {len(rows)} rows"
    return rows.iloc[0]


def local_dates(epoch_seconds: pd.Series, timezone: str) -> pd.Series:
    """The calendar date in ``timezone`` of each epoch second."""
    instants = pd.to_datetime(epoch_seconds, unit="s", utc=True)
    return instants.dt.tz_convert(timezone).dt.date


def as_date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)
