"""The bad-input matrix, through the real runner: every case ends in one clear line naming the
file, column, key or count; a non-zero exit; no half-written artifact; no 'succeeded' manifest.
Softer problems (an extra column, time zones, unsorted rows, servers without metrics) are
accepted with a warning recorded in validated/quality.json.

docs/troubleshooting.md lists these cases; keep the two in step.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.core.params import SyntheticParams
from capacity_forecaster.ingest import synthetic
from capacity_forecaster.runner.pipeline import discover_stages
from tests.cli import own_data_params, run_all
from tests.conftest import PARAMS_DIR
from tests.s3_fault_proxy import start_proxy

pytestmark = pytest.mark.e2e


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else ""


def assert_failed_cleanly(result: subprocess.CompletedProcess[str], root: Path, code: int) -> str:
    """Exit code, one 'error:' line, no traceback, no unfinished file, no succeeded manifest."""
    assert result.returncode == code, result.stderr[-3000:]
    line = error_line(result)
    assert line.startswith("error: "), result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    if root.exists():
        assert not [p for p in root.rglob("*") if ".tmp" in p.name], "unfinished file left"
        manifest = root / "manifest.json"
        if manifest.exists():
            assert json.loads(manifest.read_text())["status"] == "failed"
    return line


# --- a small good fleet, written as a user would export it -------------------------------


@pytest.fixture(scope="module")
def fleet() -> tuple[pd.DataFrame, pd.DataFrame]:
    metrics, servers = synthetic.generate_fleet(
        SyntheticParams(n_servers=3, days=120, end_date="2026-06-30"), seed=11
    )
    return metrics, servers


@dataclass(frozen=True)
class FileCase:
    """A user's own files, broken one way; ``fragments`` must all appear in the error line."""

    mutate: Callable[[pd.DataFrame, pd.DataFrame], tuple[pd.DataFrame | bytes, pd.DataFrame]]
    fragments: tuple[str, ...]


def _set(column: str, rows: list[int], values: list[object]):
    def mutate(m: pd.DataFrame, s: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        m = m.copy()
        m[column] = m[column].astype(object)
        for row, value in zip(rows, values, strict=True):
            m.at[row, column] = value
        return m, s

    return mutate


def _missing_share(m: pd.DataFrame, s: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    m = m.copy()
    m.loc[m.index[: int(len(m) * 0.3)], "cpu_p95"] = np.nan
    return m, s


def _unknown_server(m: pd.DataFrame, s: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    m = m.copy()
    m["server_id"] = m["server_id"].astype(object)
    m.loc[m["server_id"] == "srv-00003", "server_id"] = "srv-ghost"
    return m, s


def _repeated_column(m: pd.DataFrame, s: pd.DataFrame) -> tuple[bytes, pd.DataFrame]:
    text = m.assign(cpu_again=m["cpu_p95"]).to_csv(index=False)
    return text.replace("cpu_again", "cpu_p95", 1).encode(), s


def _dates_written(fmt: str):
    def mutate(m: pd.DataFrame, s: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        return m.assign(date=m["date"].dt.strftime(fmt)), s

    return mutate


def _hourly(m: pd.DataFrame, s: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    hours = [m.assign(date=m["date"] + pd.Timedelta(hours=h), cpu_p95=h) for h in range(24)]
    return pd.concat(hours, ignore_index=True), s


def _mistyped_year(m: pd.DataFrame, s: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    m = m.copy()
    m.at[1, "date"] = m.at[1, "date"] - pd.DateOffset(years=1)  # line 3: 2025 for 2026
    return m, s


def _direction_override(m: pd.DataFrame, s: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    m = m.copy()
    m["server_id"] = m["server_id"].astype(object)
    m.at[4, "server_id"] = "srv-00001\u202e"  # line 6
    return m, s


def _servers_with(**changes: object):
    def mutate(m: pd.DataFrame, s: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        s = s.copy()
        for column, value in changes.items():
            s[column] = s[column].astype(object)
            s.at[0, column] = value
        return m, s

    return mutate


FILE_ERRORS = {
    "empty-file": FileCase(lambda m, s: (b"", s), ("metrics.csv", "file is empty")),
    "header-only": FileCase(lambda m, s: (m.iloc[:0], s), ("metrics.csv", "0 rows")),
    "binary-not-csv": FileCase(
        lambda m, s: (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", s), ("metrics.csv", "not UTF-8")
    ),
    "no-metric-column": FileCase(
        lambda m, s: (m.drop(columns=["cpu_p95", "mem_p95", "disk_p95"]), s),
        ("metrics.csv", "no metric column", "'cpu_p95'"),
    ),
    "non-numeric-strings": FileCase(
        _set("cpu_p95", [5, 9], ["high", "12,5"]),
        ("metrics.csv", "'cpu_p95'", "2 non-numeric values", "'high'", "has a comma"),
    ),
    "unparseable-date": FileCase(
        _set("date", [3], ["yesterday"]),
        ("metrics.csv", "'date'", "1 unparseable", "'yesterday'", "at line 5"),
    ),
    "day-first-dates": FileCase(
        _dates_written("%d/%m/%Y"),
        ("metrics.csv", "'date'", "look day-first", "write every date as YYYY-MM-DD"),
    ),
    "stray-date": FileCase(
        _mistyped_year,
        ("metrics.csv", "'date'", "2025-03-04 at line 3", "before the rest", "fix the date"),
    ),
    "duplicate-column-name": FileCase(
        _repeated_column, ("metrics.csv", "duplicate column name 'cpu_p95' (columns 3 and 6)")
    ),
    "several-rows-per-server-day": FileCase(
        _hourly, ("metrics.csv", "'srv-00001' with 24 rows on", "data.format: samples")
    ),
    "server-id-with-direction-override": FileCase(
        _direction_override, ("metrics.csv", "'server_id'", "(U+202E) at line 6")
    ),
    "duplicate-server-days": FileCase(
        lambda m, s: (pd.concat([m, m.iloc[:4]]), s),
        ("metrics.csv", "4 duplicate rows", "one row per server per day", "remove the copies"),
    ),
    "negative-values": FileCase(
        _set("disk_p95", [2], [-4.0]), ("metrics.csv", "'disk_p95'", "below 0 percent", "-4")
    ),
    "infinite-value": FileCase(
        _set("mem_p95", [7], [float("inf")]), ("metrics.csv", "'mem_p95'", "1 value infinite")
    ),
    "missing-share-above-threshold": FileCase(
        _missing_share, ("metrics.csv", "'cpu_p95'", "missing share", "data.max_missing_share")
    ),
    "server-not-in-metadata": FileCase(
        _unknown_server, ("metrics.csv", "1 server not in", "servers.csv", "'srv-ghost'")
    ),
    "history-too-short": FileCase(
        lambda m, s: (m[m["date"] > m["date"].max() - pd.Timedelta(days=20)], s),
        ("metrics.csv", "20 days of history", "data.min_history_days is 28", "supply more"),
    ),
    "single-day": FileCase(
        lambda m, s: (m[m["date"] == m["date"].max()], s), ("metrics.csv", "only 1 day of data")
    ),
    "servers-missing-column": FileCase(
        lambda m, s: (m, s.drop(columns="region")), ("servers.csv", "missing column: 'region'")
    ),
    "servers-wrong-dtype": FileCase(
        _servers_with(cpu_cores="many"), ("servers.csv", "'cpu_cores'", "non-numeric", "'many'")
    ),
    "duplicate-servers": FileCase(
        lambda m, s: (m, pd.concat([s, s.iloc[:1]])),
        ("servers.csv", "'server_id'", "1 duplicate value", "one row per server"),
    ),
}

FILE_WARNINGS = {
    "extra-column": (lambda m, s: (m.assign(note="x"), s), "1 extra column dropped: 'note'"),
    "server-without-metrics": (
        lambda m, s: (m, pd.concat([s, s.iloc[:1].assign(server_id="srv-idle")])),
        "1 server without metrics in",
    ),
    "timezone-aware-timestamps": (
        lambda m, s: (m.assign(date=m["date"].dt.tz_localize("Europe/Berlin")), s),
        "local calendar day kept",
    ),
    "dates-out-of-order": (lambda m, s: (m.sample(frac=1.0, random_state=3), s), None),
    "semicolon-separated-export": (
        lambda m, s: (m.to_csv(index=False, sep=";", decimal=",").encode(), s),
        "semicolon-separated",
    ),
}


@pytest.mark.parametrize("case", list(FILE_ERRORS), ids=list(FILE_ERRORS))
def test_bad_data_fails_with_one_clear_line(
    case: str, fleet: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    metrics, servers = FILE_ERRORS[case].mutate(*fleet)
    params = own_data_params(tmp_path, metrics, servers)
    result = run_all("--params", str(params), "--run-id", "bad", "--only", "02,03")
    root = tmp_path / "out" / "bad"
    line = assert_failed_cleanly(result, root, 1)
    assert line.startswith("error: 02_load failed in cell"), line
    for fragment in FILE_ERRORS[case].fragments:
        assert fragment in line, (fragment, line)
    assert not (root / "validated").exists()  # nothing of 02 was written
    assert not (root / "processed").exists()  # and 03 never ran


@pytest.mark.parametrize("case", list(FILE_WARNINGS), ids=list(FILE_WARNINGS))
def test_soft_problems_are_accepted_with_a_warning(
    case: str, fleet: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    mutate, warning = FILE_WARNINGS[case]
    metrics, servers = mutate(*fleet)
    params = own_data_params(tmp_path, metrics, servers)
    result = run_all("--params", str(params), "--run-id", "soft", "--only", "02")
    assert result.returncode == 0, result.stderr[-3000:]
    root = tmp_path / "out" / "soft"
    warnings = json.loads((root / "validated" / "quality.json").read_text())["warnings"]
    if warning is None:
        assert warnings == []
    else:
        assert any(warning in w for w in warnings), warnings
    validated = pd.read_parquet(root / "validated" / "metrics.parquet")
    expected = fleet[0].sort_values(["server_id", "date"], ignore_index=True)
    pd.testing.assert_frame_equal(validated, expected, check_dtype=False)  # no data lost


def test_missing_data_file_names_the_path(tmp_path: Path, fleet) -> None:
    params = own_data_params(tmp_path, *fleet)
    (tmp_path / "metrics.csv").unlink()
    result = run_all("--params", str(params), "--run-id", "bad", "--only", "02")
    line = assert_failed_cleanly(result, tmp_path / "out" / "bad", 1)
    assert str(tmp_path / "metrics.csv") in line and "not found" in line, line


def test_a_single_server_fleet_runs_to_the_report_with_one_cluster(tmp_path: Path) -> None:
    metrics, servers = synthetic.generate_fleet(
        SyntheticParams(n_servers=1, days=240, end_date="2026-06-30"), seed=3
    )
    params = own_data_params(tmp_path, metrics, servers)
    result = run_all("--params", str(params), "--run-id", "one", "--from", "02")
    assert result.returncode == 0, result.stderr[-3000:]
    root = tmp_path / "out" / "one"
    stages = json.loads((root / "manifest.json").read_text())["stages"]
    # Stage 01 is recorded skipped: the fleet is the user's own data.
    assert {s["stage"]: s["status"] for s in stages if s["status"] != "not_run"} == {
        "01_generate": "skipped",
        **{stage.name: "succeeded" for stage in discover_stages()[1:]},
    }
    # cluster.k is 3 in the ci params: one server makes one cluster, and says why.
    note = "cluster.k=3 but the fleet has only 1 server: 1 cluster"
    assert note in (root / "notebooks" / "07_cluster.ipynb").read_text()
    recommendations = json.loads((root / "clusters" / "recommendations.json").read_text())
    assert recommendations["k"] == 1 and recommendations["k_note"] == note
    assert pd.read_parquet(root / "clusters" / "clusters.parquet")["server_id"].tolist() == [
        servers["server_id"].iloc[0]
    ]
    assert (root / "reports" / "summary.pdf").stat().st_size > 0


# --- params: refused before any notebook starts, exit 2 ----------------------------------

PARAMS_ERRORS = {
    "unknown-key": (["--set", "forecast.horizon_dayz=90"], "forecast.horizon_dayz: unknown key"),
    "wrong-type": (["--set", "cluster.k=many"], "cluster.k"),
    "horizon-out-of-range": (["--set", "forecast.horizon_days=400"], "forecast.horizon_days"),
    "k-out-of-range": (["--set", "cluster.k=1"], "cluster.k"),
    "invalid-bucket-name": (
        ["--set", "storage.backend=s3", "--set", "storage.s3.bucket=Not_A_Bucket!"],
        "'Not_A_Bucket!' is not a valid S3 bucket name",
    ),
    "file-source-without-paths": (["--set", "data.source=file"], "metrics_path and servers_path"),
    "malformed-override": (["--set", "forecast.horizon_days"], "forecast.horizon_days"),
}


@pytest.mark.parametrize("case", list(PARAMS_ERRORS), ids=list(PARAMS_ERRORS))
def test_bad_params_exit_2_before_anything_runs(case: str, tmp_path: Path) -> None:
    args, fragment = PARAMS_ERRORS[case]
    result = run_all("--params", str(PARAMS_DIR / "ci.yaml"),
                     "--set", f"run.output_root={tmp_path}", *args)  # fmt: skip
    line = assert_failed_cleanly(result, tmp_path, 2)
    assert fragment in line, line
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("content", "fragment"),
    [pytest.param(None, "not found", id="missing-params-file"),
     pytest.param("run: [unclosed\n", "YAML", id="broken-yaml")],
)  # fmt: skip
def test_unreadable_params_file_exits_2(content: str | None, fragment: str, tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    if content is not None:
        path.write_text(content)
    result = run_all("--params", str(path))
    line = assert_failed_cleanly(result, tmp_path / "outputs", 2)
    assert str(path) in line and fragment in line, line


# --- storage: S3 problems, one line each --------------------------------------------------


@pytest.fixture
def s3_run(tmp_path: Path, s3_bucket: str, aws_env: dict[str, str]) -> Callable[..., tuple]:
    """Run a few stages of the ci fleet on S3; returns (result, run root)."""

    def run(*args: str, bucket: str = s3_bucket, env: dict[str, str] | None = None) -> tuple:
        env = {**aws_env, "AWS_ENDPOINT_URL_S3": os.environ["AWS_ENDPOINT_URL_S3"], **(env or {})}
        result = run_all(
            "--params", str(PARAMS_DIR / "ci.yaml"), "--set", f"run.output_root={tmp_path}",
            "--set", "storage.backend=s3", "--set", f"storage.s3.bucket={bucket}",
            "--set", "storage.s3.prefix=cf", "--run-id", "s3bad", *args, env=env,
        )  # fmt: skip
        return result, tmp_path / "s3bad"

    return run


@pytest.mark.s3
def test_no_credentials(s3_run, tmp_path: Path) -> None:
    result, root = s3_run(
        "--only", "01", env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    )
    line = assert_failed_cleanly(result, root, 1)
    assert "S3: no AWS credentials found" in line, line


@pytest.mark.s3
def test_missing_bucket(s3_run) -> None:
    result, root = s3_run("--only", "01", bucket="cf-no-such-bucket-here")
    line = assert_failed_cleanly(result, root, 1)
    assert "bucket 'cf-no-such-bucket-here' does not exist" in line, line


@pytest.mark.s3
def test_unreachable_endpoint(s3_run, unused_port: int) -> None:
    result, root = s3_run(
        "--only", "01", env={"AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{unused_port}"}
    )
    line = assert_failed_cleanly(result, root, 1)
    assert "S3: cannot reach the endpoint" in line, line


@pytest.mark.s3
def test_access_denied_mid_run(s3_run, s3_endpoint: str) -> None:
    proxy, server = start_proxy(s3_endpoint)
    try:
        proxy.fail("PUT", "/validated/", 403, times=1000)
        result, root = s3_run("--only", "01,02", env={"AWS_ENDPOINT_URL_S3": proxy.url})
    finally:
        server.shutdown()
        server.server_close()
    line = assert_failed_cleanly(result, root, 1)
    assert line.startswith("error: 02_load failed in cell") and "S3: access denied" in line, line
    assert "validated/" in line


@pytest.mark.s3
def test_an_object_that_vanished_between_stages(s3_run, s3_bucket: str, s3_endpoint: str) -> None:
    result, root = s3_run("--only", "01")
    assert result.returncode == 0, result.stderr[-3000:]
    boto3.client("s3", endpoint_url=s3_endpoint).delete_object(
        Bucket=s3_bucket, Key="cf/s3bad/raw/metrics.parquet"
    )
    (root / "raw" / "metrics.parquet").unlink()
    result, root = s3_run("--only", "02")
    line = assert_failed_cleanly(result, root, 1)
    assert "raw/metrics.parquet" in line and "not found" in line, line


# --- transient S3 faults in a real run ----------------------------------------------------


@pytest.fixture
def fault_proxy(s3_endpoint: str) -> Iterator:
    proxy, server = start_proxy(s3_endpoint)
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.s3
def test_transient_s3_faults_during_a_run_are_retried(s3_run, fault_proxy) -> None:
    rules = [
        fault_proxy.fail("PUT", "/raw/metrics.parquet", 503, times=2),
        fault_proxy.fail("GET", "/raw/metrics.parquet", 500, times=1),
        fault_proxy.fail("PUT", "/validated/quality.json", 0, times=1),
        fault_proxy.fail("PUT", "/manifest.json", 503, times=1),
    ]
    result, root = s3_run("--only", "01,02", env={"AWS_ENDPOINT_URL_S3": fault_proxy.url})
    assert result.returncode == 0, result.stderr[-3000:]
    assert [rule.hits for rule in rules] == [2, 1, 1, 1]
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["status"] == "incomplete"  # stages 03.. not run here, none failed
    assert {s["stage"]: s["status"] for s in manifest["stages"]}["02_load"] == "succeeded"
