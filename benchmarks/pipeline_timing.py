#!/usr/bin/env python
"""Wall-clock seconds per stage of a real pipeline run (papermill, kernels and all).

    .venv/bin/python benchmarks/pipeline_timing.py                          # params/local.yaml, once
    .venv/bin/python benchmarks/pipeline_timing.py --repeat 3 --params params/aws.yaml --set storage.backend=local

Runs ``run_all.py`` into a temporary output root ``--repeat`` times and prints each stage's
seconds (from the manifests), their median, and the median of stages 04+05 together. The
machine is shared and noisy: compare figures from one invocation, and quote medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--params", default=str(ROOT / "params" / "local.yaml"))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="cf-timing-") as output_root:
        for attempt in range(args.repeat):
            command = [sys.executable, str(ROOT / "run_all.py"), "--params", args.params, "--run-id", f"timing-{attempt}",
                       "--set", f"run.output_root={output_root}"]  # fmt: skip
            for override in args.overrides:
                command += ["--set", override]
            completed = subprocess.run(command, capture_output=True, text=True)
            if completed.returncode != 0:
                sys.exit(f"run {attempt} failed:\n{completed.stderr[-2000:]}")
            manifest = json.loads(
                (Path(output_root) / f"timing-{attempt}" / "manifest.json").read_text()
            )
            runs.append(
                {s["stage"]: s["seconds"] for s in manifest["stages"]}
                | {"total": manifest["seconds"]}
            )
            print(
                f"run {attempt}: " + ", ".join(f"{k} {v:.1f}s" for k, v in runs[-1].items()),
                flush=True,
            )

    print("\nmedian seconds per stage:")
    for stage in runs[0]:
        print(f"  {stage:14s} {statistics.median(r[stage] for r in runs):8.1f}")
    train_forecast = [r.get("04_train", 0) + r.get("05_forecast", 0) for r in runs]
    print(f"  {'04+05':14s} {statistics.median(train_forecast):8.1f}")


if __name__ == "__main__":
    main()
