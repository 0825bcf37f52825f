"""Compare the products of two finished runs: which are equal, which differ, and where.

Used to show that a refactor leaves a run's products as they were, e.g.::

    python benchmarks/compare_runs.py outputs/<before> outputs/<after>

Tables are compared frame by frame (values to 1e-9 relative, so thread-order noise in the
last bits of a float is not a difference); JSON documents key by key, with time-stamps and
timings left out; other files byte by byte. Prints one line per product and exits 1 if any
product differs.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import pandas as pd

# Keys that are expected to differ between any two runs: when, how long, which run.
VOLATILE_KEYS = {"generated_at", "fit_seconds_per_series", "run_id", "finished_at", "seconds"}
# Workbook rows and PDF lines that carry the time the report was built.
VOLATILE_LABELS = {"Generated at"}
VOLATILE_TEXT = re.compile(r"((?:G|g)enerated(?: at)?:?\s*)\S+")
# Files that carry the run's id or time in their bytes, or are the runner's own record.
SKIPPED = {"manifest.json", "params.yaml", "index.html"}


def _json_differences(before: Any, after: Any, path: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in sorted(set(before) | set(after)):
            if key in VOLATILE_KEYS:
                continue
            where = f"{path}.{key}" if path else key
            if key not in after:
                found.append(f"{where}: only before")
            elif key not in before:
                found.append(f"{where}: only after")
            else:
                found.extend(_json_differences(before[key], after[key], where))
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            d
            for i, (b, a) in enumerate(zip(before, after, strict=True))
            for d in _json_differences(b, a, f"{path}[{i}]")
        ]
    if isinstance(before, float) and isinstance(after, float):
        return (
            []
            if abs(before - after) <= 1e-9 * max(1.0, abs(before))
            else [f"{path}: {before} -> {after}"]
        )
    return [] if before == after else [f"{path}: {str(before)[:60]} -> {str(after)[:60]}"]


def _table_difference(before: Path, after: Path) -> str:
    left = pd.read_parquet(before)
    right = pd.read_parquet(after)
    try:
        pd.testing.assert_frame_equal(left, right, check_exact=False, rtol=1e-9, atol=1e-12)
    except AssertionError as exc:
        return " ".join(str(exc).split())[:200]
    return ""


def _workbook_difference(before: Path, after: Path) -> str:
    import openpyxl

    left, right = openpyxl.load_workbook(before), openpyxl.load_workbook(after)
    if left.sheetnames != right.sheetnames:
        return f"sheets {left.sheetnames} -> {right.sheetnames}"
    found = []
    for name in left.sheetnames:
        rows_left = list(left[name].iter_rows(values_only=True))
        rows_right = list(right[name].iter_rows(values_only=True))
        if len(rows_left) != len(rows_right):
            found.append(f"{name}: {len(rows_left)} -> {len(rows_right)} rows")
            continue
        for a, b in zip(rows_left, rows_right, strict=True):
            if a != b and not (a and a[0] in VOLATILE_LABELS):
                found.append(f"{name}: {str(a)[:70]} -> {str(b)[:70]}")
    return "; ".join(found)


def _lines_difference(before: list[str], after: list[str]) -> str:
    removed = [line for line in before if line not in after]
    added = [line for line in after if line not in before]
    parts = [f"- {line[:90]}" for line in removed] + [f"+ {line[:90]}" for line in added]
    return " | ".join(parts)


def _pdf_lines(path: Path, run_id: str) -> list[str]:
    import pypdf

    text = "\n".join(page.extract_text() or "" for page in pypdf.PdfReader(path).pages)
    text = re.sub(rf"\b{re.escape(run_id)}\b", "<run>", text)
    return [VOLATILE_TEXT.sub(r"\1<when>", line) for line in text.splitlines()]


def _text_difference(before: Path, after: Path, run_ids: tuple[str, str]) -> str:
    left = re.sub(rf"\b{re.escape(run_ids[0])}\b", "<run>", before.read_text(errors="replace"))
    right = re.sub(rf"\b{re.escape(run_ids[1])}\b", "<run>", after.read_text(errors="replace"))
    if left == right:
        return ""
    return _lines_difference(left.splitlines(), right.splitlines())[:300] or "bytes differ"


def compare(before_root: Path, after_root: Path) -> list[tuple[str, str]]:
    """(key, difference) for every product of either run; an empty difference means equal."""
    keys = sorted(
        {
            p.relative_to(root).as_posix()
            for root in (before_root, after_root)
            for p in root.rglob("*")
            if p.is_file() and not p.relative_to(root).as_posix().startswith("notebooks/")
        }
        - SKIPPED
    )
    rows = []
    for key in keys:
        before, after = before_root / key, after_root / key
        if not before.exists() or not after.exists():
            rows.append((key, "only after" if after.exists() else "only before"))
        elif key.endswith(".parquet"):
            rows.append((key, _table_difference(before, after)))
        elif key.endswith(".xlsx"):
            rows.append((key, _workbook_difference(before, after)))
        elif key.endswith(".pdf"):
            rows.append(
                (
                    key,
                    _lines_difference(
                        _pdf_lines(before, before_root.name), _pdf_lines(after, after_root.name)
                    )[:400],
                )
            )
        elif key.endswith(".html"):
            run_ids = (before_root.name, after_root.name)
            rows.append((key, _text_difference(before, after, run_ids)))
        elif key.endswith(".json"):
            found = _json_differences(json.loads(before.read_text()), json.loads(after.read_text()))
            rows.append((key, "; ".join(found)[:300]))
        else:
            same = before.read_bytes() == after.read_bytes()
            rows.append((key, "" if same else "bytes differ"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    rows = compare(args.before, args.after)
    out = io.StringIO()
    for key, difference in rows:
        out.write(
            f"{'equal ' if not difference else 'DIFFER'}  {key}{'  ' + difference if difference else ''}\n"
        )
    differing = sum(1 for _, d in rows if d)
    out.write(f"{len(rows) - differing} of {len(rows)} products equal\n")
    sys.stdout.write(out.getvalue())
    return 1 if differing else 0


if __name__ == "__main__":
    raise SystemExit(main())
