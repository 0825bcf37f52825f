"""The runner's pieces that need no kernel: stage discovery, selection, run ids, manifest status."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from capacity_forecaster.core.errors import CapacityForecasterError
from capacity_forecaster.core.params import parse_params
from capacity_forecaster.runner.pipeline import discover_stages, new_run_id, select_stages
from capacity_forecaster.runner.run_state import overall_status


@pytest.fixture
def stages(tmp_path: Path):
    for name in ("01_generate", "02_load", "03_etl", "04_train", "scratch", "10_extra"):
        (tmp_path / f"{name}.ipynb").write_text("{}")
    return discover_stages(tmp_path)


def test_discovery_keeps_numbered_notebooks_in_order(stages) -> None:
    assert [s.name for s in stages] == ["01_generate", "02_load", "03_etl", "04_train", "10_extra"]


def test_the_project_notebooks_are_numbered_from_01() -> None:
    names = [s.name for s in discover_stages()]
    assert names[0] == "01_generate"
    assert [int(n[:2]) for n in names] == list(range(1, len(names) + 1))


@pytest.mark.parametrize(
    ("only", "start", "skip", "expected"),
    [
        (None, None, None, ["01", "02", "03", "04", "10"]),
        (["02,03"], None, None, ["02", "03"]),
        (["2", "etl"], None, None, ["02", "03"]),
        (None, "03", None, ["03", "04", "10"]),
        (None, "03_etl", ["04"], ["03", "10"]),
        (None, None, ["01", "10_extra"], ["02", "03", "04"]),
    ],
)
def test_selection(stages, only, start, skip, expected) -> None:
    assert [s.number for s in select_stages(stages, only=only, start=start, skip=skip)] == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"only": ["07"]}, "--only 07: no such stage"),
        ({"start": "99"}, "--from 99: no such stage"),
        ({"skip": ["nope"]}, "--skip nope: no such stage"),
        ({"only": ["02"], "start": "03"}, "--only and --from cannot be combined"),
    ],
)
def test_bad_selection_names_the_flag(stages, kwargs, message) -> None:
    with pytest.raises(CapacityForecasterError, match=message):
        select_stages(stages, **kwargs)


def test_no_notebooks_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CapacityForecasterError, match="no numbered notebooks"):
        discover_stages(tmp_path)


def test_run_id_is_sortable_and_path_safe() -> None:
    params = parse_params({"run": {"name": "nightly"}})
    assert (
        new_run_id(params, dt.datetime(2026, 11, 27, 8, 5, 9, tzinfo=dt.UTC))
        == "nightly-20261127T080509Z"
    )


@pytest.mark.parametrize(
    ("statuses", "overall"),
    [
        (["succeeded", "succeeded"], "succeeded"),
        (["skipped", "succeeded"], "succeeded"),
        (["succeeded", "failed", "not_run"], "failed"),
        (["succeeded", "not_run"], "incomplete"),
        (["succeeded", "interrupted", "not_run"], "interrupted"),
        (["succeeded", "interrupted", "failed"], "failed"),
        (["succeeded", "running", "failed"], "running"),
    ],
)
def test_overall_status(statuses, overall) -> None:
    assert overall_status([{"status": s} for s in statuses]) == overall
