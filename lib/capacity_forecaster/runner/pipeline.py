"""Run the numbered notebooks in order with papermill and record the run in manifest.json.

For each stage the executed notebook, its full HTML and a shareable HTML without code cells
land under ``<run root>/notebooks/``; index.html at the run root links them and the reports.
manifest.json (params, versions, each stage's latest record, every artifact with size and
sha256) always tells the run's current state: it says 'running' from the moment an invocation
starts and before each stage, and is written last with the final status, so a failed or
interrupted run's manifest says which stage and where, and one killed mid-stage still says
'running' (never an earlier 'succeeded' beside changed products). See run_state for how a run
built in pieces is judged, lock for one invocation at a time, interrupt for Ctrl-C.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import re
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from capacity_forecaster import __version__
from capacity_forecaster.core import catalog
from capacity_forecaster.core.errors import CapacityForecasterError, StageFailedError
from capacity_forecaster.core.params import Params, check_run_id, load_params, params_to_dict
from capacity_forecaster.core.stage import PROGRESS_KEY, PROJECT_ROOT
from capacity_forecaster.core.storage import RunStorage, iter_files, open_run_storage
from capacity_forecaster.reporting.index_page import render_index
from capacity_forecaster.runner import progress
from capacity_forecaster.runner.interrupt import InterruptWatch, RunInterrupted
from capacity_forecaster.runner.latest import write_latest
from capacity_forecaster.runner.lock import LOCK_KEY, run_lock
from capacity_forecaster.runner.report_notebook import shareable
from capacity_forecaster.runner.run_state import (
    OUTDATED,
    RunState,
    check_params_unchanged,
    overall_status,
    params_digest,
    stage_not_needed,
)

logger = logging.getLogger(__name__)

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
RUN_PARAMS_KEY = catalog.RUN_PARAMS.key
MANIFEST_KEY = catalog.MANIFEST.key
_STAGE_RE = re.compile(r"^(\d{2})_([a-z0-9_]+)\.ipynb$")
_RECORDED_PACKAGES = (
    "pandas", "numpy", "pyarrow", "pydantic", "papermill", "nbconvert", "prophet", "scikit-learn",
    "boto3", "holidays", "plotly", "seaborn", "openpyxl", "reportlab",
)  # fmt: skip


@dataclass(frozen=True)
class Stage:
    """One numbered notebook: ``01_generate.ipynb`` is number '01', name '01_generate'."""

    number: str
    name: str
    path: Path


def discover_stages(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Stage]:
    """The numbered notebooks in run order."""
    stages = []
    for path in sorted(notebooks_dir.glob("*.ipynb")):
        match = _STAGE_RE.match(path.name)
        if match:
            stages.append(Stage(number=match.group(1), name=path.stem, path=path))
    if not stages:
        raise CapacityForecasterError(
            f"no numbered notebooks (NN_name.ipynb) found in {notebooks_dir}"
        )
    return stages


def describe_pipeline(stages: list[Stage]) -> str:
    """Each stage (notebook) with the products it reads and writes, from the catalog."""
    lines = []
    for stage in [*stages, Stage(number="--", name=catalog.RUNNER, path=Path("run_all.py"))]:
        reads, writes = catalog.stage_products(stage.name)
        lines.append(f"{stage.number}  {stage.name}  ({stage.path.name})")
        if not reads and not writes:
            lines.append("      (not in the catalog: declare its products in core/catalog.py)")
        lines.extend(f"      reads  {product.key}" for product in reads)
        lines.extend(f"      writes {product.key:<32} {product.description}" for product in writes)
    return "\n".join(lines)


def _parse_stage_list(values: Iterable[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def _match(stages: list[Stage], token: str, flag: str) -> Stage:
    for stage in stages:
        if token in (stage.number, stage.name, stage.name[3:]) or (
            token.isdigit() and int(token) == int(stage.number)
        ):
            return stage
    known = ", ".join(s.name for s in stages)
    raise CapacityForecasterError(f"{flag} {token}: no such stage (stages: {known})")


def select_stages(
    stages: list[Stage],
    only: Iterable[str] | None = None,
    start: str | None = None,
    skip: Iterable[str] | None = None,
) -> list[Stage]:
    """Stages chosen by ``--only``, ``--from`` and ``--skip`` (numbers like 02 or names like 02_load)."""
    only_tokens = _parse_stage_list(only)
    if only_tokens and start:
        raise CapacityForecasterError("--only and --from cannot be combined")
    chosen = stages
    if only_tokens:
        wanted = {_match(stages, t, "--only").name for t in only_tokens}
        chosen = [s for s in stages if s.name in wanted]
    elif start:
        first = _match(stages, start, "--from")
        chosen = [s for s in stages if s.number >= first.number]
    skipped = {_match(stages, t, "--skip").name for t in _parse_stage_list(skip)}
    return [s for s in chosen if s.name not in skipped]


def new_run_id(params: Params, now: dt.datetime | None = None) -> str:
    """``<run.name>-YYYYmmddTHHMMSSZ``: sortable, unique per second, safe in paths and S3 keys."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{params.run.name}-{now.strftime('%Y%m%dT%H%M%SZ')}"


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "capacity_forecaster": __version__}
    for name in _RECORDED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def list_artifacts(storage: RunStorage) -> list[dict[str, Any]]:
    """Every file of the run (local copy, which is always complete) with size and sha256."""
    root = storage.local.root
    artifacts = []
    for path in iter_files(root):
        key = path.relative_to(root).as_posix()
        if key in (MANIFEST_KEY, LOCK_KEY):
            continue
        entry = {"key": key, "bytes": path.stat().st_size, "sha256": sha256_of(path)}
        if storage.s3 is not None:
            entry["uri"] = storage.s3.uri(key)
        artifacts.append(entry)
    return artifacts


def products_digest(storage: RunStorage, stage: str) -> str | None:
    """sha256 over the tables ``stage`` wrote (None when it writes none): equal digests, equal
    data for the stages that read them."""
    _, writes = catalog.stage_products(stage)
    digest = hashlib.sha256()
    tables = sorted(p.key for p in writes if p.kind == "table" and "{name}" not in p.key)
    for key in tables:
        path = storage.local.path(key)
        digest.update(f"{key}={sha256_of(path) if path.exists() else '-'}\n".encode())
    return digest.hexdigest() if tables else None


def _export_html(notebook_path: Path) -> None:
    """Full HTML (code and outputs) and a shareable report HTML with code cells hidden and
    without the run's log lines and progress bars (``report_notebook.shareable``)."""
    import nbconvert
    import nbformat

    notebook = nbformat.read(notebook_path, as_version=4)
    for suffix, exclude_input in ((".html", False), (".report.html", True)):
        exporter = nbconvert.HTMLExporter(
            exclude_input=exclude_input, exclude_input_prompt=exclude_input
        )
        shown = shareable(notebook) if exclude_input else notebook
        body, _ = exporter.from_notebook_node(shown)
        target = notebook_path.with_suffix(suffix)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(body, encoding="utf-8")
        os.replace(tmp, target)


@contextmanager
def _kernel_stderr_to(path: Path) -> Iterator[None]:
    """Send what the kernel process writes to stderr (its own logs, and the tracebacks jupyter
    prints when a kernel shuts down mid-message) to ``path`` instead of the user's terminal.

    The kernel inherits this process's file descriptor 2, so it is swapped for the file while
    the notebook executes. Cell output is not affected: it travels to the notebook itself.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with path.open("ab") as log:
            os.dup2(log.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _failure_message(stage: Stage, exc: BaseException) -> tuple[str, int | None]:
    """One line naming the notebook, the cell and the error; and the failing cell's index."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        cell = exc.cell_index
        return (
            f"{stage.name} failed in cell {cell} (execution {exc.exec_count}): {exc.ename}: {exc.evalue}",
            cell,
        )
    return f"{stage.name} failed: {type(exc).__name__}: {exc}", None


def _stage_ended(
    stage: Stage, record: dict[str, Any], exc: Exception, interrupts: InterruptWatch | None
) -> None:
    """Record how a notebook that raised ended: interrupted (Ctrl-C, SIGTERM), or failed."""
    message, cell = _failure_message(stage, exc)
    if interrupts is not None and interrupts.requested:
        where = f" in cell {cell}" if cell is not None else ""
        record.update(
            status="interrupted", error=f"{stage.name} interrupted{where} ({interrupts.cause})"
        )
        if cell is not None:
            record["interrupted_cell"] = cell
    else:
        record.update(status="failed", error=message, failed_cell=cell)


def execute_stage(
    stage: Stage,
    storage: RunStorage,
    params_path: Path,
    run_id: str,
    kernel_name: str,
    interrupts: InterruptWatch | None = None,
) -> dict[str, Any]:
    """Execute one notebook with papermill; returns its manifest record (never raises on a cell
    error). With ``interrupts``, a Ctrl-C stops the notebook and its record says 'interrupted'."""
    import papermill

    notebooks_dir = storage.local.root / "notebooks"
    notebooks_dir.mkdir(parents=True, exist_ok=True)
    output = notebooks_dir / f"{stage.name}.ipynb"
    # papermill saves as cells run: execute into a temp name so a half-executed notebook is
    # never taken for a finished one.
    partial = notebooks_dir / f".{stage.name}.tmp.ipynb"
    record: dict[str, Any] = {"stage": stage.name, "notebook": f"notebooks/{output.name}"}
    started = time.perf_counter()
    record["started_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    logger.info("%s: running", stage.name)
    kernel_log = notebooks_dir / f"{stage.name}.kernel.log"
    kernel_log.unlink(missing_ok=True)
    watch = interrupts.stage() if interrupts is not None else nullcontext(None)
    try:
        progress_file = storage.local.path(PROGRESS_KEY.format(stage=stage.name))
        with (
            progress.reporting(stage.name, progress_file),  # first: it keeps the terminal
            _kernel_stderr_to(kernel_log),
            watch as kernel_manager_class,
        ):
            extra = {"kernel_manager_class": kernel_manager_class} if kernel_manager_class else {}
            papermill.execute_notebook(
                str(stage.path),
                str(partial),
                parameters={"params_path": str(params_path), "run_id": run_id},
                kernel_name=kernel_name,
                cwd=str(stage.path.parent),
                progress_bar=False,
                log_output=False,
                **extra,
            )
        record["status"] = "succeeded"
    except Exception as exc:
        _stage_ended(stage, record, exc, interrupts)
    finally:
        record["seconds"] = round(time.perf_counter() - started, 2)
        if partial.exists():
            os.replace(partial, output)
            _export_html(output)
            record["html"] = f"notebooks/{stage.name}.html"
            record["report_html"] = f"notebooks/{stage.name}.report.html"
            for key in (record["notebook"], record["html"], record["report_html"]):
                storage.mirror_file(key)
        if kernel_log.exists() and kernel_log.stat().st_size == 0:
            kernel_log.unlink()
        elif kernel_log.exists():
            record["kernel_log"] = f"notebooks/{kernel_log.name}"
            storage.mirror_file(record["kernel_log"])
    level = {"succeeded": logging.INFO, "interrupted": logging.WARNING}.get(
        record["status"], logging.ERROR
    )
    logger.log(level, "%s: %s in %.1f s", stage.name, record["status"], record["seconds"])
    return record


DATA_WARNINGS_SHOWN = 10  # at the end of a run; the rest are in validated/quality.json


def _log_data_warnings(storage: RunStorage) -> None:
    """Repeat the fleet's data warnings (validated/quality.json) at the end of the run, where
    the person who started it reads."""
    key = catalog.QUALITY.key
    if not storage.local.exists(key):
        return
    try:
        warnings = json.loads(storage.local.read_bytes(key)).get("warnings") or []
    except (CapacityForecasterError, ValueError, AttributeError):
        return
    for line in warnings[:DATA_WARNINGS_SHOWN]:
        logger.warning("data: %s", line)
    if len(warnings) > DATA_WARNINGS_SHOWN:
        logger.warning("data: and %d more in %s", len(warnings) - DATA_WARNINGS_SHOWN, key)


def _log_outdated(manifest: dict[str, Any]) -> None:
    """Stages left built on data an upstream stage has since rewritten: the --from that fixes it."""
    outdated = [s for s in manifest["stages"] if s["status"] == OUTDATED]
    if outdated:
        first = outdated[0]["stage"]
        logger.warning(
            "%s built on earlier data (an upstream stage rewrote its tables); run --run-id %s "
            "--from %s to rebuild",
            ", ".join(s["stage"] for s in outdated),
            manifest["run_id"],
            first[:2],
        )


def _read_manifest(storage: RunStorage) -> dict[str, Any]:
    """The run's manifest so far, from its local copy ({} for a new run or an unreadable one)."""
    if not storage.local.exists(MANIFEST_KEY):
        return {}
    try:
        manifest = json.loads(storage.local.read_bytes(MANIFEST_KEY))
    except (CapacityForecasterError, ValueError) as exc:
        logger.warning("%s: unreadable, the run's earlier records are lost: %s", MANIFEST_KEY, exc)
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _artifact_keys(storage: RunStorage) -> set[str]:
    root = storage.local.root
    keys = {path.relative_to(root).as_posix() for path in iter_files(root)} - {LOCK_KEY}
    # A stage's progress file (its log lines for the terminal) is the runner's, not a product.
    return {key for key in keys if not re.fullmatch(r"notebooks/\..*\.progress", key)}


def write_index(storage: RunStorage, run_id: str, records: list[dict[str, Any]]) -> str:
    """index.html at the run root: headline figures and links to every report and notebook."""
    keys = _artifact_keys(storage) | {MANIFEST_KEY}
    headline = None
    if catalog.HEADLINE.key in keys:
        try:
            headline = catalog.read(storage, catalog.RUNNER, catalog.HEADLINE)
        except CapacityForecasterError as exc:
            logger.warning("index.html without headline figures: %s", exc)
    page = render_index(
        run_id,
        overall_status(records),
        records,
        keys,
        headline if isinstance(headline, dict) else None,
        finished_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    return storage.write_text(catalog.INDEX.key, page)


@dataclass
class _Invocation:
    """One call of run_pipeline on a run: what it runs with, and the run's state so far."""

    run_id: str
    storage: RunStorage
    params: dict[str, Any]  # params_to_dict of the validated params
    params_path: Path  # the run's own params.yaml, which the notebooks read
    stage_names: list[str]
    state: RunState
    started: float = field(default_factory=time.perf_counter)
    started_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    )

    def record(self, record: dict[str, Any]) -> None:
        self.state.set(record, self.params)


def write_manifest(invocation: _Invocation, *, final: bool = True) -> dict[str, Any]:
    """manifest.json: status, params, versions, every stage's latest record and, when final,
    every artifact. A run writes it when it starts and before each stage ('running'), and
    last, so it always tells the run's current state."""
    storage, records = invocation.storage, invocation.state.ordered(invocation.stage_names)
    status = overall_status(records)
    failed = next((r for r in records if r["status"] == "failed"), None)
    interrupted = next((r for r in records if r["status"] == "interrupted"), None)
    stopped = failed or interrupted
    digest = params_digest(invocation.params)
    manifest = {
        "run_id": invocation.run_id,
        "status": status,
        "failed_stage": failed["stage"] if failed else None,
        "interrupted_stage": interrupted["stage"] if interrupted else None,
        "error": stopped.get("error") if stopped else None,
        "started_at": invocation.started_at,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds") if final else None,
        "seconds": round(time.perf_counter() - invocation.started, 2),
        "run_root": str(storage.local.root),
        "mirror": storage.root_uri if storage.s3 else None,
        "params_file": str(invocation.params_path),
        "params": invocation.params,
        "params_sha256": digest,
        "earlier_params": invocation.state.earlier_params(digest),
        "versions": package_versions(),
        "stages": records,
        # Listed once the run has stopped changing them (null while it runs).
        "artifacts": list_artifacts(storage) if final else None,
    }
    storage.write_json(MANIFEST_KEY, manifest)
    return manifest


def _execute_stages(
    invocation: _Invocation,
    chosen: list[Stage],
    kernel_name: str,
    interrupts: InterruptWatch,
) -> dict[str, Any] | None:
    """Run the chosen stages in order until one fails or Ctrl-C stops the run; returns the
    record of the stage the run stopped at (None when every chosen stage succeeded)."""
    for stage in chosen:
        if interrupts.requested:
            # Ctrl-C between stages: the run is interrupted at the stage that did not start.
            record = {
                "stage": stage.name,
                "status": "interrupted",
                "error": (
                    f"{stage.name} not started: the run was interrupted before it "
                    f"({interrupts.cause})"
                ),
                "started": False,
            }
            invocation.record(record)
            return record
        if stage_not_needed(stage.name, invocation.params):
            continue  # recorded as skipped when the run started
        earlier_products = invocation.state.records.get(stage.name, {}).get("products_sha256")
        invocation.record({"stage": stage.name, "status": "running"})
        write_manifest(invocation, final=False)
        record = execute_stage(
            stage,
            invocation.storage,
            invocation.params_path,
            invocation.run_id,
            kernel_name,
            interrupts,
        )
        if record["status"] == "succeeded":
            record["products_sha256"] = products_digest(invocation.storage, stage.name)
        invocation.record(record)
        if record["status"] != "succeeded":
            return record
        if earlier_products and earlier_products != record["products_sha256"]:
            for name in invocation.state.outdate_after(
                stage.name, invocation.stage_names, invocation.run_id
            ):
                logger.info("%s: outdated by %s's new data", name, stage.name)
    return None


def _start(invocation: _Invocation, stages: list[Stage], chosen: list[Stage]) -> None:
    """Check the run may go ahead (raises before writing anything), then write its params."""
    state, run_id = invocation.state, invocation.run_id
    for name in state.settle_unfinished():
        logger.warning("%s: an earlier invocation of run %s ended while it ran", name, run_id)
    not_needed = {
        s.name: reason for s in stages if (reason := stage_not_needed(s.name, invocation.params))
    }
    check_params_unchanged(
        run_id,
        invocation.stage_names,
        {s.name for s in chosen} | set(not_needed),
        state,
        invocation.params,
    )
    storage = invocation.storage
    logger.info("%s: stages %s", storage.describe(), ", ".join(s.name for s in chosen) or "none")
    # The run's own params file: validated, overrides applied, paths absolute. Notebooks read
    # this one, so a re-run of one stage sees exactly what the run saw.
    storage.write_text(RUN_PARAMS_KEY, yaml.safe_dump(invocation.params, sort_keys=False))
    for name, reason in not_needed.items():
        invocation.record({"stage": name, "status": "skipped", "reason": reason})
        logger.info("%s: skipped (%s)", name, reason)


def _interrupted_message(run_id: str, record: dict[str, Any]) -> str:
    """One line for a run stopped by Ctrl-C: where, and the command that completes it."""
    name = record["stage"]
    where = "in" if record.get("started", True) else "before"
    return (
        f"interrupted {where} stage {name}; the run can be completed with "
        f"--run-id {run_id} --from {name[:2]}"
    )


def _record_crash(invocation: _Invocation, exc: BaseException) -> None:
    """After an unexpected error or a second Ctrl-C: the stage under way says how it ended."""
    for record in invocation.state.records.values():
        if record["status"] == "running":
            if isinstance(exc, KeyboardInterrupt):
                record.update(status="interrupted", error=f"{record['stage']} interrupted (Ctrl-C)")
            else:
                record.update(status="failed", error=f"runner: {type(exc).__name__}: {exc}")
    try:
        write_manifest(invocation)
    except Exception as error:  # the original error is the one to report
        logger.error("%s not updated: %s", MANIFEST_KEY, error)


def run_pipeline(
    params_path: str | Path,
    *,
    overrides: list[str] | None = None,
    run_id: str | None = None,
    only: Iterable[str] | None = None,
    start: str | None = None,
    skip: Iterable[str] | None = None,
    notebooks_dir: Path = NOTEBOOKS_DIR,
    kernel_name: str = "python3",
) -> dict[str, Any]:
    """Validate params, execute the chosen stages in order and write the manifest.

    Raises StageFailedError (after writing a 'failed' manifest) when a notebook fails,
    RunInterrupted (after writing an 'interrupted' one) on Ctrl-C, RunLockedError when
    another invocation runs the same run id, and ParamsError, before anything is written, for
    bad params, a run id that is not a name, or params that differ from those the stages this
    run leaves alone were built with.
    """
    if run_id is not None:
        check_run_id(run_id)  # an empty one too: it must not quietly become a new run
    params = load_params(params_path, overrides)
    stages = discover_stages(notebooks_dir)
    chosen = select_stages(stages, only=only, start=start, skip=skip)
    run_id = run_id or new_run_id(params)
    storage = open_run_storage(params, run_id)
    with run_lock(storage.local.root, run_id), InterruptWatch() as interrupts:
        invocation = _Invocation(
            run_id=run_id,
            storage=storage,
            params=params_to_dict(params),
            params_path=storage.local.path(RUN_PARAMS_KEY),
            stage_names=[s.name for s in stages],
            state=RunState.from_manifest(_read_manifest(storage)),
        )
        _start(invocation, stages, chosen)
        # Kernels start as `python -m ipykernel_launcher`: put this interpreter first on PATH so
        # the kernel is the environment the runner runs in, whether or not that venv is active.
        os.environ["PATH"] = os.pathsep.join(
            [str(Path(sys.executable).parent), os.environ.get("PATH", "")]
        )
        try:
            write_manifest(invocation, final=False)  # before any product changes
            stopped_at = _execute_stages(invocation, chosen, kernel_name, interrupts)
            write_index(storage, run_id, invocation.state.ordered(invocation.stage_names))
            manifest = write_manifest(invocation)
        except BaseException as exc:
            _record_crash(invocation, exc)
            raise
        write_latest(storage, manifest)  # after the manifest, and only if the run succeeded
    _log_data_warnings(storage)
    _log_outdated(manifest)
    logger.info(
        "run %s %s in %.1f s (manifest %s); open %s",
        run_id,
        manifest["status"],
        manifest["seconds"],
        storage.uri(MANIFEST_KEY),
        storage.local.path(catalog.INDEX.key),
    )
    if stopped_at is not None and stopped_at["status"] == "interrupted":
        raise RunInterrupted(_interrupted_message(run_id, stopped_at), interrupts.exit_code)
    if stopped_at is not None:
        raise StageFailedError(
            f"{stopped_at['error']} (executed notebook: "
            f"{storage.local.path(stopped_at['notebook'])})"
        )
    return manifest
