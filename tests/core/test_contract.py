"""The two tables' columns, declared once: what validation requires is what generation writes."""

from __future__ import annotations

from capacity_forecaster.core.contract import (
    METRIC_COLUMNS,
    SERVER_CAPACITY_COLUMNS,
    SERVER_COST_COLUMNS,
    SERVER_REQUIRED_COLUMNS,
    SERVER_TEXT_COLUMNS,
)
from capacity_forecaster.core.vocabulary import METRICS
from capacity_forecaster.ingest.synthetic.inventory import SERVER_COLUMNS


def test_metrics_table_is_a_day_a_server_and_every_metric() -> None:
    assert ("date", "server_id", *METRICS) == METRIC_COLUMNS


def test_generated_servers_carry_every_required_column_once() -> None:
    assert set(SERVER_REQUIRED_COLUMNS) <= set(SERVER_COLUMNS)
    assert len(set(SERVER_COLUMNS)) == len(SERVER_COLUMNS)
    groups = (SERVER_TEXT_COLUMNS, SERVER_CAPACITY_COLUMNS, SERVER_COST_COLUMNS)
    assert not set.intersection(*map(set, groups))
    assert ("server_id", *(c for g in groups for c in g)) == SERVER_REQUIRED_COLUMNS
