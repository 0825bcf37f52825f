"""A run's state across the invocations of run_all.py that share its run id.

A run may be built in pieces (``--only 02,03`` today, ``--from 04`` tomorrow), so manifest.json
keeps every stage's latest record, whichever invocation wrote it, and the run's status is
computed from all of them: a run done in pieces ends "succeeded" like a run done at once.

Each stage record names the params the stage ran with (``params_sha256``, the digest of the
params: the manifest's ``params`` when they are the current ones, else one of its
``earlier_params``). The products of a run are built from one set of params: a partial run
(``--only``, ``--from``, ``--skip``) is refused before anything runs when a stage it leaves
alone was built with other values of the params that stage depends on, which are its own keys
(STAGE_PARAMS) and those of every stage whose products it reads, through the catalog.

Each record also names the data it wrote (``products_sha256``, a digest of the stage's
tables). Params alone do not vouch for products: ``--only 02`` after the user's metrics file
changed rewrites the validated data under the same params. A stage whose tables changed
outdates the stages built on them that it did not re-run: they are recorded "outdated", and
the run is incomplete until ``--from`` rebuilds them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from capacity_forecaster.core import catalog
from capacity_forecaster.core.errors import ParamsError

# Keys that change how a run is done, not what it builds: the number of workers (models are
# seeded, so results do not depend on it), the name a new run id starts with, and the output
# root (the run's own folder: records are only found under the same one).
IGNORED_PARAMS = ("compute", "run.name", "run.output_root")
# Where every stage's products are kept: a stage written before storage.backend became s3
# would be missing from the S3 mirror the manifest names.
COMMON_PARAMS = ("storage",)
# The params each stage's notebook reads (tests/runner/test_run_state.py holds this to the
# notebooks). A stage not listed here depends on every key.
STAGE_PARAMS: dict[str, tuple[str, ...]] = {
    catalog.GENERATE: ("run.seed", "data.synthetic", "calendar"),
    catalog.LOAD: ("data",),
    catalog.ETL: ("features", "calendar"),
    catalog.TRAIN: ("run.seed", "calendar", "models", "forecast.horizon_days"),
    catalog.FORECAST: ("models", "forecast"),
    catalog.RISK_STAGE: (
        "calendar",
        "models.interval",
        "risk",
        "report.top_n",
    ),
    catalog.CLUSTER: ("run.seed", "cluster"),
    catalog.REPORT: ("report",),
    catalog.VISUALIZE: ("report",),
}
_EVERY_KEY = ""  # a prefix every dotted key is under
OUTDATED = "outdated"  # succeeded once, on products an upstream stage has since rewritten
_CLAIMS_PRODUCTS = ("succeeded",)  # statuses whose record vouches for the stage's products
_SHOWN_CHANGES = 4


class ParamsChangedError(ParamsError):
    """A partial run would leave products built from other params beside its own."""


def params_digest(params: dict[str, Any]) -> str:
    """sha256 of the params as canonical JSON: equal digests, equal params."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"forecast": {"horizon_days": 90}}`` as ``{"forecast.horizon_days": 90}``."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def _under(key: str, prefixes: Iterable[str]) -> bool:
    return any(p == _EVERY_KEY or key == p or key.startswith(f"{p}.") for p in prefixes)


def differing_keys(
    before: dict[str, Any], after: dict[str, Any], prefixes: Iterable[str]
) -> list[str]:
    """Dotted keys under ``prefixes`` whose values differ (ignored keys left out)."""
    old, new, prefixes = flatten(before), flatten(after), tuple(prefixes)
    return sorted(
        key
        for key in old.keys() | new.keys()
        if _under(key, prefixes)
        and not _under(key, IGNORED_PARAMS)
        and old.get(key) != new.get(key)
    )


def stage_not_needed(stage: str, params: dict[str, Any]) -> str | None:
    """Why ``stage`` has nothing to do with these params (it is then recorded as skipped)."""
    source = params["data"]["source"]
    if stage == catalog.GENERATE and source != "synthetic":
        return f"data.source is {source!r}"
    return None


def _own_params(stage: str) -> tuple[str, ...]:
    return (*STAGE_PARAMS.get(stage, (_EVERY_KEY,)), *COMMON_PARAMS)


def _upstream(stage: str, stage_names: Sequence[str]) -> list[str]:
    """The stages whose products ``stage`` reads; every earlier stage if it is not in the catalog."""
    reads, writes = catalog.stage_products(stage)
    if not reads and not writes:
        return [name for name in stage_names if name < stage]
    return sorted({p.writer for p in reads if p.writer in stage_names and p.writer != stage})


def downstream_of(stage: str, stage_names: Sequence[str]) -> list[str]:
    """The stages built on ``stage``'s products, directly or through others, in run order."""
    built_on = {stage}
    found = []
    for name in stage_names:  # run order: a stage's inputs are written before it runs
        if name != stage and built_on & set(_upstream(name, stage_names)):
            found.append(name)
            built_on.add(name)
    return found


def params_depended_on(
    stage: str, stage_names: Sequence[str], params: dict[str, Any]
) -> tuple[str, ...]:
    """Key prefixes ``stage``'s products depend on: its own and its inputs' writers', on up."""
    prefixes: set[str] = set()
    seen: set[str] = set()
    pending = [stage]
    while pending:
        name = pending.pop()
        if name in seen or (name != stage and stage_not_needed(name, params)):
            continue
        seen.add(name)
        prefixes.update(_own_params(name))
        pending.extend(_upstream(name, stage_names))
    return tuple(sorted(prefixes))


def overall_status(records: Iterable[dict[str, Any]]) -> str:
    """The run's status from every stage's latest record.

    running: a stage is under way; failed / interrupted: a stage ended so and has not
    succeeded since; succeeded: every stage succeeded or had nothing to do; else incomplete.
    """
    statuses = {r["status"] for r in records}
    for status in ("running", "failed", "interrupted"):
        if status in statuses:
            return status
    return "succeeded" if statuses <= {"succeeded", "skipped"} else "incomplete"


@dataclass
class RunState:
    """Every stage's latest record and the params sets they name, by digest."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    params_sets: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> RunState:
        """The state an earlier manifest of the run recorded (empty for a new run)."""
        state = cls()
        params = manifest.get("params")
        if isinstance(params, dict):
            current = manifest.get("params_sha256") or params_digest(params)
            state.params_sets[current] = params
        else:
            current = None
        earlier = manifest.get("earlier_params")
        if isinstance(earlier, dict):
            state.params_sets.update(earlier)
        for record in manifest.get("stages") or []:
            if not isinstance(record, dict) or "stage" not in record or "status" not in record:
                continue
            record = dict(record)
            # A manifest from before stage records named their params: the run's params are
            # the best knowledge of what its stages ran with.
            if current and "params_sha256" not in record and record["status"] != "not_run":
                record["params_sha256"] = current
            state.records[record["stage"]] = record
        return state

    def set(self, record: dict[str, Any], params: dict[str, Any] | None = None) -> None:
        """Record a stage's latest state; ``params`` are those it ran with."""
        if params is not None:
            digest = params_digest(params)
            self.params_sets.setdefault(digest, params)
            record = {**record, "params_sha256": digest}
        self.records[record["stage"]] = record

    def settle_unfinished(self) -> list[str]:
        """Stages an ended invocation left 'running' (it was killed): now 'interrupted'."""
        settled = []
        for name, record in self.records.items():
            if record["status"] == "running":
                record.update(
                    status="interrupted",
                    error=f"{name}: the run ended while this stage ran (killed?)",
                )
                settled.append(name)
        return settled

    def outdate_after(self, stage: str, stage_names: Sequence[str], run_id: str) -> list[str]:
        """``stage`` rewrote its tables with other data: the succeeded stages built on them
        become 'outdated' (a later stage of this invocation re-records itself when it runs)."""
        outdated = []
        for name in downstream_of(stage, stage_names):
            record = self.records.get(name)
            if record is None or record["status"] not in _CLAIMS_PRODUCTS:
                continue
            record.update(
                status=OUTDATED,
                error=(
                    f"{name}: built on earlier data of {stage}, which has since rewritten it; "
                    f"run --run-id {run_id} --from {name[:2]} to rebuild"
                ),
            )
            outdated.append(name)
        return outdated

    def ordered(self, stage_names: Sequence[str]) -> list[dict[str, Any]]:
        """Records in run order ('not_run' for a stage never run), then any unknown to the pipeline."""
        rows = [self.records.get(n, {"stage": n, "status": "not_run"}) for n in stage_names]
        return rows + [r for n, r in self.records.items() if n not in stage_names]

    def earlier_params(self, current: str) -> dict[str, dict[str, Any]]:
        """The params sets stage records name, other than ``current``."""
        named = {r.get("params_sha256") for r in self.records.values()}
        return {d: p for d, p in self.params_sets.items() if d in named and d != current}

    def params_of(self, stage: str) -> dict[str, Any] | None:
        """The params ``stage`` last ran with, if its record names known ones."""
        digest = self.records.get(stage, {}).get("params_sha256")
        return self.params_sets.get(digest) if digest else None


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else f"{text[:37]}..."


def check_params_unchanged(
    run_id: str,
    stage_names: Sequence[str],
    running: Iterable[str],
    state: RunState,
    params: dict[str, Any],
) -> None:
    """Refuse a run that would leave a stage not in ``running`` built from other params.

    Raises ParamsChangedError naming the differing keys (earlier and new values), the stages
    built with the earlier ones, and the ``--from`` that rebuilds them: the first stage whose
    own params changed.
    """
    running = set(running)
    stale: dict[str, list[str]] = {}
    for name in stage_names:
        before = state.params_of(name)
        if (
            name in running
            or before is None
            or state.records[name]["status"] not in _CLAIMS_PRODUCTS
        ):
            continue
        keys = differing_keys(before, params, params_depended_on(name, stage_names, params))
        if keys:
            stale[name] = keys
    if not stale:
        return
    # Rebuild from the first stage whose own params changed (or, failing a record of it,
    # the first stale one): every stale stage comes after it.
    changed = [
        name
        for name in stage_names
        if (before := state.params_of(name)) is not None
        and state.records[name]["status"] in _CLAIMS_PRODUCTS
        and not stage_not_needed(name, params)
        and differing_keys(before, params, _own_params(name))
    ]
    restart = min([*changed, *stale])
    first = state.params_of(next(iter(stale))) or {}
    old, new = flatten(first), flatten(params)
    keys = sorted({key for keys in stale.values() for key in keys})
    changes = ", ".join(
        f"{key} {_shown(old.get(key, '(unset)'))} -> {_shown(new.get(key, '(unset)'))}"
        for key in keys[:_SHOWN_CHANGES]
    )
    if len(keys) > _SHOWN_CHANGES:
        changes += f" and {len(keys) - _SHOWN_CHANGES} more"
    raise ParamsChangedError(
        f"run {run_id} was built with other params ({changes}): {', '.join(stale)} would "
        f"keep products built with the earlier values; run --run-id {run_id} --from "
        f"{restart[:2]} to rebuild them, or keep the earlier values"
    )
