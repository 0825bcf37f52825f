"""Run the numbered notebooks in order with papermill and record the run in manifest.json.

For each stage the executed notebook, its full HTML and a shareable HTML without code cells
land under ``<run root>/notebooks/``; index.html at the run root links them and the reports.
manifest.json is written last (params, versions,
per-stage status and seconds, every artifact with size and sha256), so a run without a
manifest did not finish, and a failed run's manifest says which stage failed and where.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import logging
import os
import platform
import re
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from capacity_forecaster import __version__
from capacity_forecaster.core import catalog
from capacity_forecaster.core.errors import CapacityForecasterError, StageFailedError
from capacity_forecaster.core.params import Params, check_run_id, load_params, params_to_dict
from capacity_forecaster.core.stage import PROJECT_ROOT
from capacity_forecaster.core.storage import RunStorage, iter_files, open_run_storage
from capacity_forecaster.reporting.index_page import render_index
from capacity_forecaster.runner.latest import write_latest

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
        if key == MANIFEST_KEY:
            continue
        entry = {"key": key, "bytes": path.stat().st_size, "sha256": sha256_of(path)}
        if storage.s3 is not None:
            entry["uri"] = storage.s3.uri(key)
        artifacts.append(entry)
    return artifacts


def _export_html(notebook_path: Path) -> None:
    """Full HTML (code and outputs) and a shareable report HTML with code cells hidden."""
    import nbconvert
    import nbformat

    notebook = nbformat.read(notebook_path, as_version=4)
    for suffix, exclude_input in ((".html", False), (".report.html", True)):
        exporter = nbconvert.HTMLExporter(
            exclude_input=exclude_input, exclude_input_prompt=exclude_input
        )
        body, _ = exporter.from_notebook_node(notebook)
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


def execute_stage(
    stage: Stage, storage: RunStorage, params_path: Path, run_id: str, kernel_name: str
) -> dict[str, Any]:
    """Execute one notebook with papermill; returns its manifest record (never raises on a cell error)."""
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
    try:
        with _kernel_stderr_to(kernel_log):
            papermill.execute_notebook(
                str(stage.path),
                str(partial),
                parameters={"params_path": str(params_path), "run_id": run_id},
                kernel_name=kernel_name,
                cwd=str(stage.path.parent),
                progress_bar=False,
                log_output=False,
            )
        record["status"] = "succeeded"
    except Exception as exc:
        message, cell = _failure_message(stage, exc)
        record.update(status="failed", error=message, failed_cell=cell)
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
    level = logging.INFO if record["status"] == "succeeded" else logging.ERROR
    logger.log(level, "%s: %s in %.1f s", stage.name, record["status"], record["seconds"])
    return record


def _previous_stages(storage: RunStorage) -> dict[str, dict[str, Any]]:
    """Stage records of an earlier manifest of the same run (to complete it with --from)."""
    if not storage.local.exists(MANIFEST_KEY):
        return {}
    try:
        return {s["stage"]: s for s in storage.read_json(MANIFEST_KEY).get("stages", [])}
    except (CapacityForecasterError, AttributeError, KeyError, TypeError):
        return {}


def _overall_status(records: list[dict[str, Any]]) -> str:
    statuses = {r["status"] for r in records}
    if "failed" in statuses:
        return "failed"
    return "succeeded" if statuses <= {"succeeded", "skipped"} else "incomplete"


def write_index(storage: RunStorage, run_id: str, records: list[dict[str, Any]]) -> str:
    """index.html at the run root: headline figures and links to every report and notebook."""
    root = storage.local.root
    keys = {path.relative_to(root).as_posix() for path in iter_files(root)} | {MANIFEST_KEY}
    headline = None
    if catalog.HEADLINE.key in keys:
        try:
            headline = catalog.read(storage, catalog.RUNNER, catalog.HEADLINE)
        except CapacityForecasterError as exc:
            logger.warning("index.html without headline figures: %s", exc)
    page = render_index(
        run_id,
        _overall_status(records),
        records,
        keys,
        headline if isinstance(headline, dict) else None,
        finished_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    return storage.write_text(catalog.INDEX.key, page)


def write_manifest(
    storage: RunStorage,
    params: Params,
    params_path: Path,
    run_id: str,
    records: list[dict[str, Any]],
    started: float,
) -> dict[str, Any]:
    """manifest.json, last: status, params, versions, stages and every artifact."""
    status = _overall_status(records)
    failed = next((r for r in records if r["status"] == "failed"), None)
    manifest = {
        "run_id": run_id,
        "status": status,
        "failed_stage": failed["stage"] if failed else None,
        "error": failed.get("error") if failed else None,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 2),
        "run_root": str(storage.local.root),
        "mirror": storage.root_uri if storage.s3 else None,
        "params_file": str(params_path),
        "params": params_to_dict(params),
        "versions": package_versions(),
        "stages": records,
        "artifacts": list_artifacts(storage),
    }
    storage.write_json(MANIFEST_KEY, manifest)
    return manifest


def _execute_stages(
    stages: list[Stage],
    chosen: list[Stage],
    storage: RunStorage,
    params: Params,
    run_params_path: Path,
    run_id: str,
    kernel_name: str,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Run the chosen stages in order until one fails: every stage's record, and the failure."""
    records = _previous_stages(storage)
    for stage in stages:
        records.setdefault(stage.name, {"stage": stage.name, "status": "not_run"})
    failure = None
    for stage in chosen:
        if stage.number == "01" and params.data.source != "synthetic":
            reason = f"data.source is {params.data.source!r}"
            records[stage.name] = {"stage": stage.name, "status": "skipped", "reason": reason}
            logger.info("%s: skipped (%s)", stage.name, reason)
            continue
        record = execute_stage(stage, storage, run_params_path, run_id, kernel_name)
        records[stage.name] = record
        if record["status"] == "failed":
            failure = record
            break
    known = {s.name for s in stages}
    ordered = [records[s.name] for s in stages] + [r for n, r in records.items() if n not in known]
    return ordered, failure


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

    Raises StageFailedError (after writing a 'failed' manifest) when a notebook fails, and
    ParamsError, before anything is written, for bad params or a run id that is not a name.
    """
    started = time.perf_counter()
    if run_id is not None:
        check_run_id(run_id)  # an empty one too: it must not quietly become a new run
    params = load_params(params_path, overrides)
    stages = discover_stages(notebooks_dir)
    chosen = select_stages(stages, only=only, start=start, skip=skip)
    run_id = run_id or new_run_id(params)
    storage = open_run_storage(params, run_id)
    logger.info("%s: stages %s", storage.describe(), ", ".join(s.name for s in chosen) or "none")

    # The run's own params file: validated, overrides applied, paths absolute. Notebooks read
    # this one, so a re-run of one stage sees exactly what the run saw.
    run_params_path = storage.local.path(RUN_PARAMS_KEY)
    storage.write_text(RUN_PARAMS_KEY, yaml.safe_dump(params_to_dict(params), sort_keys=False))
    # Kernels start as `python -m ipykernel_launcher`: put this interpreter first on PATH so the
    # kernel is the environment the runner runs in, whether or not that venv is activated.
    os.environ["PATH"] = os.pathsep.join(
        [str(Path(sys.executable).parent), os.environ.get("PATH", "")]
    )

    ordered, failure = _execute_stages(
        stages, chosen, storage, params, run_params_path, run_id, kernel_name
    )
    write_index(storage, run_id, ordered)
    manifest = write_manifest(storage, params, run_params_path, run_id, ordered, started)
    write_latest(storage, manifest)  # after the manifest, and only if the run succeeded
    logger.info(
        "run %s %s in %.1f s (manifest %s)",
        run_id,
        manifest["status"],
        manifest["seconds"],
        storage.uri(MANIFEST_KEY),
    )
    if failure is not None:
        raise StageFailedError(
            f"{failure['error']} (executed notebook: {storage.local.path(failure['notebook'])})"
        )
    return manifest
