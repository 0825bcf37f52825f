"""The catalog: products checked on write and on read, and only by the stages it names."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from capacity_forecaster.core import catalog
from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.params import parse_params
from capacity_forecaster.core.storage import LocalStore, RunStorage
from capacity_forecaster.runner.pipeline import discover_stages


@pytest.fixture
def storage(tmp_path: Path) -> RunStorage:
    return RunStorage(run_id="t", local=LocalStore(tmp_path))


def _forecast_summary(**changes: object) -> dict[str, object]:
    return {
        "rows": 240,
        "series": 2,
        "models": ["seasonal_naive"],
        "first_date": "2026-07-01",
        "last_date": "2026-10-28",
        "horizon_days": 120,
    } | changes


def _intervals(**changes: object) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "model": ["prophet"],
            "metric": ["cpu_p95"],
            "bucket": [0],
            "q_lower": [-1.5],
            "q_upper": [2.0],
            "n": [60],
            "horizon_mean": [4.0],
        }
    )
    return frame.assign(**changes)


def test_every_notebook_is_a_catalog_stage_and_every_catalog_stage_a_notebook() -> None:
    notebooks = [stage.name for stage in discover_stages()]
    assert notebooks == [s for s in catalog.STAGES if s != catalog.RUNNER]


def test_keys_are_unique_and_each_reader_is_a_later_stage() -> None:
    keys = [product.key for product in catalog.PRODUCTS]
    assert len(keys) == len(set(keys))
    order = {stage: position for position, stage in enumerate(catalog.STAGES)}
    for product in catalog.PRODUCTS:
        assert product.writer in order, product.key
        for reader in product.readers:
            assert order[reader] > order[product.writer], (product.key, reader)
        schema = product.table if product.kind == "table" else product.document
        assert (schema is not None) == (product.kind != "file"), product.key


def test_a_table_round_trips_through_the_catalog(storage: RunStorage) -> None:
    catalog.write(storage, catalog.TRAIN, catalog.INTERVALS, _intervals())
    frame = catalog.read(storage, catalog.FORECAST, catalog.INTERVALS, columns=["model", "n"])
    assert list(frame.columns) == ["model", "n"]


def test_a_bad_table_is_refused_before_it_is_written(storage: RunStorage) -> None:
    with pytest.raises(
        StageCheckError,
        match=r"^models/intervals.parquet \(written by 04_train\): column q_upper has 1 value",
    ):
        catalog.write(storage, catalog.TRAIN, catalog.INTERVALS, _intervals(q_upper=[-3.0]))
    assert not storage.exists(catalog.INTERVALS.key)


def test_a_reader_checks_what_it_reads(storage: RunStorage) -> None:
    # Written behind the catalog's back, as an older version of a stage might have.
    storage.write_parquet(catalog.INTERVALS.key, _intervals().drop(columns="q_lower"))
    with pytest.raises(StageCheckError, match=r"missing column\(s\) q_lower"):
        catalog.read(storage, catalog.FORECAST, catalog.INTERVALS)


def test_a_document_is_checked_on_write_and_read(storage: RunStorage) -> None:
    catalog.write(storage, catalog.FORECAST, catalog.FORECAST_SUMMARY, _forecast_summary())
    assert catalog.read(storage, catalog.REPORT, catalog.FORECAST_SUMMARY)["horizon_days"] == 120
    with pytest.raises(StageCheckError, match=r"forecasts/summary.json .*: first_date: String"):
        catalog.write(
            storage,
            catalog.FORECAST,
            catalog.FORECAST_SUMMARY,
            _forecast_summary(first_date="1 July"),
        )
    storage.write_json(catalog.FORECAST_SUMMARY.key, _forecast_summary(horizon_days=0))
    with pytest.raises(StageCheckError, match=r"horizon_days: Input should be greater than"):
        catalog.read(storage, catalog.REPORT, catalog.FORECAST_SUMMARY)


def test_a_stage_reads_and_writes_only_what_the_catalog_declares(storage: RunStorage) -> None:
    with pytest.raises(StageCheckError, match=r"^03_etl writes models/intervals.parquet, but"):
        catalog.write(storage, catalog.ETL, catalog.INTERVALS, _intervals())
    catalog.write(storage, catalog.TRAIN, catalog.INTERVALS, _intervals())
    with pytest.raises(StageCheckError, match=r"^02_load reads models/intervals.parquet"):
        catalog.read(storage, catalog.LOAD, catalog.INTERVALS)


def test_a_family_names_its_members(storage: RunStorage) -> None:
    catalog.write(storage, catalog.TRAIN, catalog.FITTED_MODEL, b"model", name="prophet")
    assert catalog.read(storage, catalog.FORECAST, catalog.FITTED_MODEL, name="prophet") == b"model"
    with pytest.raises(StageCheckError, match=r"no member 'arima'"):
        catalog.FITTED_MODEL.key_for("arima")


def test_inputs_are_the_raw_products_or_the_users_own_files(
    storage: RunStorage, tmp_path: Path
) -> None:
    storage.write_bytes(catalog.RAW_METRICS.key, b"m")
    storage.write_bytes(catalog.RAW_SERVERS.key, b"s")
    synthetic = parse_params({})
    assert catalog.read_inputs(storage, catalog.LOAD, synthetic) == {
        "metrics": ("raw/metrics.parquet", b"m"),
        "servers": ("raw/servers.parquet", b"s"),
    }
    (tmp_path / "m.csv").write_bytes(b"own metrics")
    (tmp_path / "s.csv").write_bytes(b"own servers")
    own = parse_params(
        {
            "data": {
                "source": "file",
                "metrics_path": str(tmp_path / "m.csv"),
                "servers_path": str(tmp_path / "s.csv"),
            }
        }
    )
    inputs = catalog.read_inputs(storage, catalog.LOAD, own)
    assert inputs["metrics"] == (str(tmp_path / "m.csv"), b"own metrics")
    assert inputs["servers"][1] == b"own servers"
