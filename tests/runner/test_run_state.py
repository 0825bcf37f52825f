"""A run built in pieces: the manifest always tells its current state, and its products come
from one set of params.

The pure parts (which params each stage depends on, the refusal and its message) are checked
on records; the rest through the real run_pipeline and papermill on stand-in notebooks.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

from capacity_forecaster.core.errors import StageFailedError
from capacity_forecaster.core.params import params_to_dict, parse_params
from capacity_forecaster.runner import run_state
from capacity_forecaster.runner.pipeline import discover_stages, run_pipeline
from capacity_forecaster.runner.run_state import (
    STAGE_PARAMS,
    ParamsChangedError,
    RunState,
    check_params_unchanged,
    params_digest,
)
from tests.runner.standins import file_data_params, standin_notebooks

STAGES = [s.name for s in discover_stages()]


def _params(**sections: Any) -> dict[str, Any]:
    return params_to_dict(parse_params(sections))


def _built_with(params: dict[str, Any], status: str = "succeeded") -> RunState:
    """A run whose every stage ran with ``params``."""
    state = RunState()
    for name in STAGES:
        state.set({"stage": name, "status": status}, params)
    return state


def _refusal(state: RunState, running: list[str], params: dict[str, Any]) -> str:
    with pytest.raises(ParamsChangedError) as info:
        check_params_unchanged("nightly", STAGES, running, state, params)
    message = str(info.value)
    assert "\n" not in message
    return message


BUILT_WITH: dict[str, Any] = {"forecast": {"horizon_days": 90}}
BUILT = _params(**BUILT_WITH)


def test_a_stage_rerun_with_another_horizon_is_refused_naming_the_key_and_the_from() -> None:
    message = _refusal(_built_with(BUILT), ["05_forecast"], _params(forecast={"horizon_days": 180}))
    assert "forecast.horizon_days 90 -> 180" in message
    assert "04_train, 06_risk" in message and "01_generate" not in message
    assert "--run-id nightly --from 04" in message


def test_rebuilding_from_the_first_changed_stage_is_allowed() -> None:
    changed = _params(forecast={"horizon_days": 180})
    check_params_unchanged("nightly", STAGES, STAGES[3:], _built_with(BUILT), changed)


@pytest.mark.parametrize(
    ("change", "from_stage"),
    [
        ({"report": {"top_n": 5}}, "06"),  # the risk summary lists the top n too
        ({"features": {"outlier_window": 21}}, "03"),
        # The synthetic fleet's month-end and quarter-end load follow the calendar.
        (
            {"calendar": {"windows": {"quarter_end": {"kind": "quarter_end", "business_days": 3}}}},
            "01",
        ),
        ({"run": {"seed": 8}}, "01"),
        ({"cluster": {"k": 5}}, "07"),
    ],
)
def test_the_suggested_from_is_the_first_stage_whose_own_params_changed(
    change: dict[str, Any], from_stage: str
) -> None:
    message = _refusal(_built_with(BUILT), ["08_report"], _params(**BUILT_WITH, **change))
    assert f"--from {from_stage} " in message


@pytest.mark.parametrize(
    "change",
    [
        {"compute": {"n_jobs": 1}},  # how many workers, not what they compute
        {"run": {"name": "other"}},  # names a new run id only
    ],
)
def test_keys_that_change_no_product_are_not_compared(change: dict[str, Any]) -> None:
    changed = _params(**BUILT_WITH, **change)
    check_params_unchanged("nightly", STAGES, ["05_forecast"], _built_with(BUILT), changed)


def test_only_records_that_vouch_for_products_are_compared() -> None:
    state = _built_with(BUILT, status="failed")
    check_params_unchanged("nightly", STAGES, ["05_forecast"], state, _params(forecast={"horizon_days": 180}))  # fmt: skip


def test_stage_01_does_not_matter_for_the_users_own_files() -> None:
    own = {"data": {"source": "file", "metrics_path": "m.csv", "servers_path": "s.csv"}}
    built = _built_with(_params(**own, run={"seed": 1}))
    # The seed shapes the synthetic fleet (01), which a file run does not use; 04 and 07 use
    # it too, so they are stale.
    message = _refusal(built, ["01_generate", "02_load"], _params(**own, run={"seed": 2}))
    assert "--from 04 " in message and "01_generate" not in message


def test_many_changes_are_named_within_one_line() -> None:
    changed = _params(
        forecast={"horizon_days": 180},
        cluster={"k": 5},
        report={"top_n": 3},
        models={"interval": 0.9},
        risk={"high_within_days": 10},
    )
    message = _refusal(_built_with(BUILT), ["09_visualize"], changed)
    assert "and 1 more" in message


def test_a_manifest_from_before_stage_params_were_recorded_names_the_runs_params() -> None:
    manifest = {
        "params": BUILT,
        "stages": [{"stage": n, "status": "succeeded"} for n in STAGES],
    }
    state = RunState.from_manifest(manifest)
    assert state.params_of("04_train") == BUILT
    _refusal(state, ["05_forecast"], _params(forecast={"horizon_days": 180}))


def test_a_stage_left_running_by_a_killed_invocation_is_settled_as_interrupted() -> None:
    stages = [
        {"stage": "01_generate", "status": "succeeded"},
        {"stage": "02_load", "status": "running"},
    ]
    state = RunState.from_manifest({"stages": stages})
    assert state.settle_unfinished() == ["02_load"]
    assert state.records["02_load"]["status"] == "interrupted"
    assert run_state.overall_status(state.ordered(["01_generate", "02_load"])) == "interrupted"


# The stages' own params, held to the notebooks: every params key a notebook reads is declared
# for its stage, so a change to it is never missed.

_KEY_READ = re.compile(r"\bparams((?:\.[a-z_][a-z_0-9]*)+)")
_PARAMS_PASSED = re.compile(r"\b([a-z_][a-z_0-9]*)\(([^()]*\bparams\b[^.][^()]*)\)")
# lib functions a notebook hands the whole params to, and the keys they read.
_READS_OF_CALLS = {
    "read_fleet": ("data", "storage"),
    "model_factories": (
        "models.enabled",
        "calendar",
        "compute.n_jobs",
        "run.seed",
    ),
}


def _code(path: Path) -> str:
    notebook = nbformat.read(path, as_version=4)
    return "\n".join(c.source for c in notebook.cells if c.cell_type == "code")


def _declared(stage: str, key: str) -> bool:
    prefixes = (*STAGE_PARAMS[stage], *run_state.COMMON_PARAMS, *run_state.IGNORED_PARAMS)
    return any(key == p or key.startswith(f"{p}.") for p in prefixes)


@pytest.mark.parametrize("stage", discover_stages(), ids=lambda s: s.name)
def test_every_params_key_a_notebook_reads_is_declared_for_its_stage(stage) -> None:
    code = _code(stage.path)
    keys = {chain.lstrip(".") for chain in _KEY_READ.findall(code)}
    for function, arguments in _PARAMS_PASSED.findall(code):
        if re.search(r"\bparams\b(?!\.)", arguments):
            assert function in _READS_OF_CALLS, (
                f"{stage.name} hands the params to {function}(): add the keys it reads to "
                "_READS_OF_CALLS here and to STAGE_PARAMS"
            )
            keys.update(_READS_OF_CALLS[function])
    missing = sorted(key for key in keys if not _declared(stage.name, key))
    assert not missing, f"{stage.name} reads {missing}: declare them in run_state.STAGE_PARAMS"


# Through run_pipeline and papermill, on stand-in notebooks.


def _manifest(run_root: Path) -> dict[str, Any]:
    return json.loads((run_root / "manifest.json").read_text())


def _statuses(manifest: dict[str, Any]) -> dict[str, str]:
    return {s["stage"]: s["status"] for s in manifest["stages"]}


def test_a_file_data_run_done_in_pieces_ends_succeeded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params, notebooks = file_data_params(tmp_path, monkeypatch), standin_notebooks(tmp_path / "nb")
    first = run_pipeline(params, run_id="pieces", only=["02"], notebooks_dir=notebooks)
    assert first["status"] == "incomplete"
    assert _statuses(first) == {"01_generate": "skipped", "02_load": "succeeded", "03_etl": "not_run"}  # fmt: skip
    second = run_pipeline(params, run_id="pieces", start="03", notebooks_dir=notebooks)
    assert second["status"] == "succeeded"
    assert set(_statuses(second).values()) == {"skipped", "succeeded"}
    assert json.loads((tmp_path / "out" / "latest.json").read_text())["run_id"] == "pieces"


def test_a_failing_rerun_never_leaves_the_earlier_succeeded_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = file_data_params(tmp_path, monkeypatch)
    assert (
        run_pipeline(params, run_id="r", notebooks_dir=standin_notebooks(tmp_path / "ok"))["status"]
        == "succeeded"
    )
    # The re-run's 02 notes what the manifest says while it changes products, then fails.
    seen = "import json\nmanifest = json.loads((run_root / 'manifest.json').read_text())\n"
    seen += "(run_root / 'seen.json').write_text(json.dumps(manifest))\nraise RuntimeError('boom')"
    failing = standin_notebooks(tmp_path / "failing", {"02_load": seen})
    with pytest.raises(StageFailedError, match=r"02_load failed in cell .*RuntimeError: boom"):
        run_pipeline(params, run_id="r", start="02", notebooks_dir=failing)
    during = json.loads((tmp_path / "out" / "r" / "seen.json").read_text())
    assert during["status"] == "running" and during["finished_at"] is None
    assert _statuses(during)["02_load"] == "running" and during["artifacts"] is None
    after = _manifest(tmp_path / "out" / "r")
    assert after["status"] == "failed" and after["failed_stage"] == "02_load"
    assert not (tmp_path / "out" / "r" / "run.lock").exists()


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_a_partial_run_with_other_params_is_refused_before_anything_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params, notebooks = file_data_params(tmp_path, monkeypatch), standin_notebooks(tmp_path / "nb")
    run_pipeline(params, run_id="r", notebooks_dir=notebooks)
    root = tmp_path / "out" / "r"
    before = _tree_digest(root)

    with pytest.raises(ParamsChangedError) as info:
        run_pipeline(params, overrides=["data.max_missing_share=0.2"], run_id="r", only=["02"], notebooks_dir=notebooks)  # fmt: skip
    assert str(info.value) == (
        "run r was built with other params (data.max_missing_share 0.1 -> 0.2): 03_etl would "
        "keep products built with the earlier values; run --run-id r --from 02 to rebuild "
        "them, or keep the earlier values"
    )
    assert _tree_digest(root) == before  # params.yaml and the manifest included

    # compute.* is not compared; the stage records name the params each ran with.
    manifest = run_pipeline(params, overrides=["compute.n_jobs=1"], run_id="r", only=["03"], notebooks_dir=notebooks)  # fmt: skip
    assert manifest["status"] == "succeeded"
    records = {s["stage"]: s for s in manifest["stages"]}
    assert records["03_etl"]["params_sha256"] == manifest["params_sha256"]
    assert records["03_etl"]["params_sha256"] == params_digest(manifest["params"])
    earlier = records["02_load"]["params_sha256"]
    assert earlier != manifest["params_sha256"]
    assert manifest["earlier_params"][earlier]["compute"]["n_jobs"] == -1


def test_new_data_under_the_same_params_outdates_the_stages_built_on_the_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = file_data_params(tmp_path, monkeypatch)
    metrics = tmp_path / "m.csv"
    metrics.write_text("day one\n")
    # 02 "validates" the user's file into its table: its data is the file's.
    load = "import yaml, shutil\nsource = Path(yaml.safe_load((run_root / 'params.yaml').read_text())['data']['metrics_path'])\n"
    load += "(run_root / 'validated').mkdir(exist_ok=True)\nshutil.copy(source, run_root / 'validated' / 'metrics.parquet')"
    notebooks = standin_notebooks(tmp_path / "nb", {"02_load": load})
    assert run_pipeline(params, run_id="r", notebooks_dir=notebooks)["status"] == "succeeded"

    # The same file loaded again: the same data, nothing outdated.
    again = run_pipeline(params, run_id="r", only=["02"], notebooks_dir=notebooks)
    assert again["status"] == "succeeded"

    metrics.write_text("day two\n")
    changed = run_pipeline(params, run_id="r", only=["02"], notebooks_dir=notebooks)
    assert changed["status"] == "incomplete"
    etl = {s["stage"]: s for s in changed["stages"]}["03_etl"]
    assert etl["status"] == "outdated"
    assert etl["error"] == (
        "03_etl: built on earlier data of 02_load, which has since rewritten it; "
        "run --run-id r --from 03 to rebuild"
    )
    assert 'class="status-outdated"' in (tmp_path / "out" / "r" / "index.html").read_text()
    rebuilt = run_pipeline(params, run_id="r", start="03", notebooks_dir=notebooks)
    assert rebuilt["status"] == "succeeded"
