"""latest.json: the newest run that succeeded, beside the run folders.

It sits at the run output prefix, the parent of every run folder: ``<run.output_root>/latest.json``
on disk and, with the s3 backend, ``s3://<bucket>/<prefix>/latest.json`` too (application/json).
It names the run (``run_id``), when it finished (``finished_at``, from its manifest) and the URIs
of its ``manifest`` and of its front page ``index`` (index.html at the run root), so a dashboard,
a bookmark or a script finds the newest good results without listing the runs.

The runner rewrites it right after a run's manifest, and only when that run's status is
"succeeded": a failed or incomplete run never moves it. The write is whole or absent (temp file
and rename on disk, one put in S3). It is not in the product catalog, which lists the products
inside a run: latest.json belongs to no run but to the output prefix.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from capacity_forecaster.core import catalog
from capacity_forecaster.core.storage import RunStorage

logger = logging.getLogger(__name__)

LATEST_KEY = "latest.json"


def latest_document(storage: RunStorage, manifest: dict[str, Any]) -> dict[str, str]:
    """What latest.json says about the run of ``storage`` whose manifest is ``manifest``."""
    return {
        "run_id": manifest["run_id"],
        "finished_at": manifest["finished_at"],
        "manifest": storage.uri(catalog.MANIFEST.key),
        "index": storage.uri(catalog.INDEX.key),
    }


def write_latest(storage: RunStorage, manifest: dict[str, Any]) -> str | None:
    """Point latest.json at this run if it succeeded; returns where it landed (None if not moved)."""
    if manifest["status"] != "succeeded":
        logger.info("latest.json not moved: run %s %s", manifest["run_id"], manifest["status"])
        return None
    text = json.dumps(latest_document(storage, manifest), indent=2) + "\n"
    location = storage.write_beside_runs(LATEST_KEY, text.encode("utf-8"))
    logger.info("latest.json now names run %s (%s)", manifest["run_id"], location)
    return location
