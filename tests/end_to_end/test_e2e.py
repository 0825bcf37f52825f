"""End to end: the real run_all.py executes the real notebooks with papermill on params/ci.yaml."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import boto3
import openpyxl
import pandas as pd
import pypdf
import pytest

from tests.cli import own_data_params, run_all
from tests.conftest import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, PARAMS_DIR, PROJECT_ROOT

pytestmark = pytest.mark.e2e


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stage_names() -> list[str]:
    return sorted(p.stem for p in (PROJECT_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def ci_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    output_root = tmp_path_factory.mktemp("outputs")
    result = run_all(
        "--params",
        str(PARAMS_DIR / "ci.yaml"),
        "--set",
        f"run.output_root={output_root}",
        "--run-id",
        "e2e",
    )
    return output_root / "e2e", result


def test_run_succeeds(ci_run) -> None:
    _, result = ci_run
    assert result.returncode == 0, result.stderr[-3000:]
    for stage in _stage_names():
        assert f"{stage}: succeeded" in result.stderr
    # The kernels' own stderr (jupyter's logs) goes to a log per stage, not the terminal.
    assert "IPKernelApp" not in result.stderr
    root, _ = ci_run
    assert "IPKernelApp" in (root / "notebooks" / "01_generate.kernel.log").read_text()


def test_manifest_is_complete_and_true(ci_run) -> None:
    root, _ = ci_run
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["status"] == "succeeded" and manifest["run_id"] == "e2e"
    assert [s["stage"] for s in manifest["stages"]] == _stage_names()
    assert all(s["status"] == "succeeded" and s["seconds"] > 0 for s in manifest["stages"])
    assert manifest["params"]["data"]["synthetic"]["n_servers"] == 10
    assert manifest["versions"]["pandas"] == pd.__version__
    listed = {a["key"]: a for a in manifest["artifacts"]}
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {
        "manifest.json"
    }
    assert set(listed) == on_disk
    for key, artifact in listed.items():
        assert artifact["bytes"] == (root / key).stat().st_size > 0, key
        assert artifact["sha256"] == _sha256(root / key), key


def test_executed_notebooks_and_html(ci_run) -> None:
    root, _ = ci_run
    for stage in _stage_names():
        notebook = json.loads((root / "notebooks" / f"{stage}.ipynb").read_text())
        injected = [
            c for c in notebook["cells"] if "injected-parameters" in c["metadata"].get("tags", [])
        ]
        assert injected and 'run_id = "e2e"' in "".join(injected[0]["source"])
        assert not [
            o
            for c in notebook["cells"]
            for o in c.get("outputs", [])
            if o.get("output_type") == "error"
        ]
        full = (root / "notebooks" / f"{stage}.html").read_text()
        report = (root / "notebooks" / f"{stage}.report.html").read_text()
        assert "open_stage" in full and "open_stage" not in report  # the shareable copy hides code
    assert not [p for p in root.rglob(".*") if "tmp" in p.name]  # no unfinished writes left


def test_raw_data_contract(ci_run) -> None:
    root, _ = ci_run
    metrics = pd.read_parquet(root / "raw" / "metrics.parquet")
    servers = pd.read_parquet(root / "raw" / "servers.parquet")
    assert list(metrics.columns) == ["date", "server_id", "cpu_p95", "mem_p95", "disk_p95"]
    assert servers["server_id"].is_unique and len(servers) == 10
    assert set(metrics["server_id"]) <= set(servers["server_id"])
    values = metrics[["cpu_p95", "mem_p95", "disk_p95"]]
    assert ((values >= 0) & (values <= 100) | values.isna()).all().all()
    # 10 servers x 600 days, less the injected monitoring gaps (about 1 %).
    assert 0.95 * 10 * 600 <= len(metrics) <= 10 * 600


def test_validated_data_and_quality_summary(ci_run) -> None:
    root, _ = ci_run
    metrics = pd.read_parquet(root / "validated" / "metrics.parquet")
    quality = json.loads((root / "validated" / "quality.json").read_text())
    assert quality["rows"] == len(metrics) and quality["servers"] == metrics["server_id"].nunique()
    assert not metrics.duplicated(["server_id", "date"]).any()


def test_features_are_long_by_metric_and_finite(ci_run) -> None:
    root, _ = ci_run
    features = pd.read_parquet(root / "processed" / "features.parquet")
    assert list(features.columns[:4]) == ["server_id", "metric", "date", "value"]
    assert set(features["metric"]) == {"cpu_p95", "mem_p95", "disk_p95"}
    # Lag and rolling columns are empty where their window reaches before the series' first
    # day (every valid day is kept, none dropped to warm them up); nothing else is.
    windowed = [c for c in features.columns if c.startswith(("lag_", "roll_"))]
    numeric = features.select_dtypes("number").drop(columns=["value_raw", *windowed])
    assert numeric.notna().all().all()
    first_day = features.groupby(["server_id", "metric"])["date"].transform("min")
    late = (features["date"] - first_day).dt.days >= 28 + 28  # past every window and gap
    assert features.loc[late & ~features["is_imputed"], "lag_7"].notna().mean() > 0.95
    # value_raw keeps what was measured: missing exactly where a gap was imputed.
    assert (features["value_raw"].isna() == features["is_imputed"]).all()
    assert (numeric.abs() < float("inf")).all().all()
    calendar = {"day_of_month", "business_days_to_month_end", "calendar_windows", "is_holiday"}
    assert {"lag_7", "roll_mean_28", *calendar} <= set(features.columns)
    # The ci params keep the default windows: every month has its month end.
    month_ends = features.loc[features["calendar_windows"].str.contains("month_end"), "date"]
    assert month_ends.dt.to_period("M").nunique() == features["date"].dt.to_period("M").nunique()


def test_models_backtest_and_metrics(ci_run) -> None:
    root, _ = ci_run
    report = json.loads((root / "models" / "metrics.json").read_text())
    models = {m["model"]: m for m in report["models"]}
    enabled = ["seasonal_naive", "robust_trend", "prophet", "random_forest", "gradient_boosting"]
    assert set(models) == {*enabled, "champion"}
    assert len(report["origins"]) == 3
    for name, figures in models.items():
        assert figures["series"] == 30, name  # 10 servers x 3 metrics
        assert 0 < figures["mase"] < 50 and 0 <= figures["coverage"] <= 1, name
    for name in enabled:
        assert (root / "models" / f"{name}.model").stat().st_size > 0
    champions = pd.read_parquet(root / "models" / "champions.parquet")
    assert len(champions) == 30 and champions["reason"].str.len().gt(0).all()
    scores = pd.read_parquet(root / "models" / "series_scores.parquet")
    assert {"mae", "rmse", "mape", "smape", "mase", "coverage"} <= set(scores.columns)
    # 600 days are enough for the season a year earlier: the year-less models' intervals come
    # from it, the forecast's from the rows 52 weeks before the last day.
    calibration = report["interval_calibration"]
    season = pd.read_parquet(root / "models" / "season_backtest.parquet")
    assert set(season["model"]) == {
        "seasonal_naive",
        "robust_trend",
        "random_forest",
        "gradient_boosting",
    }
    for name in enabled:
        expected = "the same season" if name in set(season["model"]) else "the backtest origins"
        assert calibration[name].startswith(expected), name
    last_day = pd.read_parquet(root / "processed" / "features.parquet")["date"].max()
    assert last_day in set(season["for_origin"])
    assert (season["date"] < season["for_origin"] - pd.Timedelta(days=364 - 90 - 1)).all()


def test_forecasts_cover_the_horizon_with_ordered_intervals(ci_run) -> None:
    root, _ = ci_run
    forecasts = pd.read_parquet(root / "forecasts" / "forecasts.parquet")
    features = pd.read_parquet(root / "processed" / "features.parquet")
    last = features["date"].max()
    assert forecasts["date"].min() == last + pd.Timedelta(days=1)
    assert forecasts["date"].max() == last + pd.Timedelta(days=90)
    assert len(forecasts) == 30 * 90 * 5  # series x days x enabled models
    assert forecasts[["yhat", "yhat_lower", "yhat_upper"]].notna().all().all()
    assert (
        (forecasts["yhat_lower"] <= forecasts["yhat"])
        & (forecasts["yhat"] <= forecasts["yhat_upper"])
    ).all()
    assert forecasts[["yhat_lower", "yhat_upper"]].stack().between(0, 100).all()
    assert (forecasts[forecasts["is_champion"]].groupby(["server_id", "metric"]).size() == 90).all()


def test_risk_has_every_series_and_a_summary(ci_run) -> None:
    root, _ = ci_run
    risk = pd.read_parquet(root / "risk" / "risk.parquet")
    assert len(risk) == 30 and not risk.duplicated(["server_id", "metric"]).any()
    assert risk["breach_probability"].between(0, 1).all()
    assert set(risk["risk_level"]) <= {"high", "medium", "low"}
    crossing = risk["forecast_peak"] >= risk["threshold"]
    assert risk.loc[crossing, "days_to_breach"].between(1, 90).all()
    assert risk.loc[~crossing, "days_to_breach"].isna().all()
    summary = json.loads((root / "risk" / "summary.json").read_text())
    assert {"business_unit", "region", "criticality", "environment"} <= set(summary["rollups"])


def test_clusters_and_recommendations(ci_run) -> None:
    root, _ = ci_run
    clusters = pd.read_parquet(root / "clusters" / "clusters.parquet")
    assert len(clusters) == 10 and clusters["server_id"].is_unique
    assert clusters["cluster"].nunique() == 3  # params/ci.yaml: k = 3
    assert clusters["cluster_label"].notna().all()
    recommendations = json.loads((root / "clusters" / "recommendations.json").read_text())
    assert -1 <= recommendations["silhouette"] <= 1


def test_reports_read_back_with_the_headline_figures(ci_run) -> None:
    root, _ = ci_run
    reports = root / "reports"
    headline = json.loads((reports / "summary.json").read_text())
    assert headline["schema_version"] == 1 and headline["run_id"] == "e2e"
    assert headline["fleet"]["servers"] == 10
    risk = pd.read_parquet(root / "risk" / "risk.parquet")
    at_risk_servers = risk.loc[risk["risk_level"] != "low", "server_id"].nunique()
    assert headline["risk"]["servers_at_risk"] == at_risk_servers
    recommendations = json.loads((root / "clusters" / "recommendations.json").read_text())
    assert headline["savings"]["monthly_usd_total"] == pytest.approx(
        recommendations["total_savings_usd"]
    )

    pdf = pypdf.PdfReader(reports / "summary.pdf")
    assert len(pdf.pages) >= 3
    text = " ".join(page.extract_text() for page in pdf.pages)
    assert "Server capacity outlook" in text and "e2e" in text
    assert f"{headline['savings']['monthly_usd_total']:,.0f}" in text
    for breach in headline["risk"]["earliest_breaches"][:3]:
        assert breach["server_id"] in text

    workbook = openpyxl.load_workbook(reports / "details.xlsx", read_only=True)
    assert workbook.sheetnames == ["Summary", "Risk (all series)", "Forecasts", "Model metrics",
                                   "Clusters", "Recommendations", "Recurring peaks",
                                   "Data quality"]  # fmt: skip
    forecasts = pd.read_parquet(root / "forecasts" / "forecasts.parquet")

    def data_rows(sheet: str) -> int:
        """Rows under the header, down to the blank row before the sheet's notes."""
        rows = 0
        for values in workbook[sheet].iter_rows(min_row=2, values_only=True):
            if all(v is None for v in values):
                break
            rows += 1
        return rows

    assert data_rows("Forecasts") == int(forecasts["is_champion"].sum())
    assert data_rows("Risk (all series)") == len(risk)
    legend = [
        r[0] for r in workbook["Risk (all series)"].iter_rows(values_only=True) if r and r[0]
    ][-1]
    assert str(legend).startswith("Trust: A: ")


def test_plot_pages_and_pngs(ci_run) -> None:
    root, _ = ci_run
    plots = root / "reports" / "plots"
    stems = ["urgent_servers", "risk_heatmap", "clusters", "model_accuracy", "savings"]
    assert (plots / "plotly.min.js").stat().st_size > 1_000_000
    for stem in stems:
        page = (plots / f"{stem}.html").read_text()
        sources = re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", page)
        assert sources == ["plotly.min.js"], (stem, sources)  # one shared copy, no CDN
        assert (plots / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _hrefs(page: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', page)


def test_index_links_every_report_and_notebook(ci_run) -> None:
    root, _ = ci_run
    page = (root / "index.html").read_text()
    hrefs = _hrefs(page)
    assert hrefs and all((root / href).is_file() for href in hrefs), hrefs
    for stage in _stage_names():
        assert f"notebooks/{stage}.report.html" in hrefs and f"notebooks/{stage}.html" in hrefs
    assert {f"reports/plots/{p.name}" for p in (root / "reports" / "plots").glob("*.html")} <= set(
        hrefs
    )
    assert "manifest.json" in hrefs


def _chromium() -> str | None:
    return next(
        (path for name in ("chromium", "chromium-browser", "google-chrome")
         if (path := shutil.which(name))),
        None,
    )  # fmt: skip


def _dump_dom(browser: str, page: Path, profile: Path) -> str:
    """The page's DOM after its scripts ran, from a file:// URL with networking disabled."""
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom",
         page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_index_and_plots_render_in_headless_chromium(ci_run, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium on this machine (apt install chromium to run this check)")
    root, _ = ci_run
    # A copy elsewhere: links are relative, so the copied folder works on its own.
    copy = tmp_path / "shared-run"
    shutil.copytree(root, copy)
    index = _dump_dom(browser, copy / "index.html", tmp_path / "profile")
    assert "Capacity forecast" in index and "Stages" in index
    page = _dump_dom(browser, copy / "reports" / "plots" / "urgent_servers.html", tmp_path / "p2")
    assert 'class="main-svg"' in page  # plotly.js loaded from the folder and drew the figure


def test_one_stage_reruns_alone_on_a_finished_run(ci_run) -> None:
    root, _ = ci_run
    before = _sha256(root / "processed" / "features.parquet")
    output_root = root.parent
    result = run_all("--params", str(PARAMS_DIR / "ci.yaml"), "--set", f"run.output_root={output_root}",
                     "--run-id", "e2e", "--only", "03")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["status"] == "succeeded"
    assert _sha256(root / "processed" / "features.parquet") == before  # deterministic


def test_a_failing_stage_names_itself_and_records_the_failure(tmp_path: Path) -> None:
    # Stage 02 on a run where 01 never ran: its input is missing.
    result = run_all("--params", str(PARAMS_DIR / "ci.yaml"), "--set", f"run.output_root={tmp_path}",
                     "--run-id", "broken", "--only", "02")  # fmt: skip
    assert result.returncode == 1
    error_line = result.stderr.strip().splitlines()[-1]
    assert error_line.startswith("error: 02_load failed in cell")
    assert "raw/metrics.parquet: not found" in error_line
    manifest = json.loads((tmp_path / "broken" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["failed_stage"] == "02_load"
    assert (tmp_path / "broken" / "notebooks" / "02_load.html").is_file()
    assert not (tmp_path / "broken" / "validated").exists()
    # Re-running from 01 on the same run id replaces the failure (later stages left out here
    # to keep the test fast: the run is then incomplete, no longer failed).
    later = ",".join(name[:2] for name in _stage_names() if name > "03")
    result = run_all("--params", str(PARAMS_DIR / "ci.yaml"), "--set", f"run.output_root={tmp_path}",
                     "--run-id", "broken", "--from", "01", "--skip", later)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((tmp_path / "broken" / "manifest.json").read_text())
    assert manifest["status"] == "incomplete" and manifest["failed_stage"] is None
    assert {s["stage"]: s["status"] for s in manifest["stages"]}["02_load"] == "succeeded"


def test_users_own_csv_files_are_loaded(ci_run, tmp_path: Path) -> None:
    root, _ = ci_run
    # The fleet of the ci run, exported as a user would: CSV, shuffled rows, ISO dates.
    metrics = pd.read_parquet(root / "raw" / "metrics.parquet").sample(frac=1.0, random_state=0)
    servers = pd.read_parquet(root / "raw" / "servers.parquet")
    params = own_data_params(tmp_path, metrics, servers)
    result = run_all("--params", str(params), "--run-id", "own", "--only", "01,02,03")
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((tmp_path / "out" / "own" / "manifest.json").read_text())
    stages = {s["stage"]: s for s in manifest["stages"]}
    assert (
        stages["01_generate"]["status"] == "skipped"
        and "data.source" in stages["01_generate"]["reason"]
    )
    validated = pd.read_parquet(tmp_path / "out" / "own" / "validated" / "metrics.parquet")
    expected = pd.read_parquet(root / "validated" / "metrics.parquet")
    pd.testing.assert_frame_equal(validated, expected, check_dtype=False)


def test_misspelt_key_fails_fast_naming_the_key(tmp_path: Path) -> None:
    started = time.perf_counter()
    result = run_all("--params", str(PARAMS_DIR / "ci.yaml"), "--set", f"run.output_root={tmp_path}",
                     "--set", "forecast.horizon_dayz=90")  # fmt: skip
    seconds = time.perf_counter() - started
    assert result.returncode == 2
    assert (
        "forecast.horizon_dayz: unknown key" in result.stderr
        and "did you mean 'horizon_days'" in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not any(tmp_path.iterdir())  # nothing started, nothing written
    print(f"misspelt key rejected in {seconds:.2f} s")


def test_list_shows_the_stages_with_their_products() -> None:
    result = run_all("--list")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    stage_lines = [line for line in lines if not line.startswith(" ")]
    assert [line.split()[1] for line in stage_lines] == [*_stage_names(), "run_all"]
    assert "not in the catalog" not in result.stdout
    # Every stage after the first reads something, and the products' keys are listed.
    assert any(line.startswith("      writes processed/features.parquet  ") for line in lines)
    assert "      reads  processed/features.parquet" in lines


@pytest.mark.s3
def test_s3_run_mirrors_every_artifact(
    tmp_path: Path, s3_bucket: str, aws_env: dict[str, str]
) -> None:
    env = {**aws_env, "AWS_ENDPOINT_URL_S3": os.environ["AWS_ENDPOINT_URL_S3"]}
    result = run_all(
        "--params", str(PARAMS_DIR / "aws.yaml"),
        "--set", f"run.output_root={tmp_path}",
        "--set", f"storage.s3.bucket={s3_bucket}",
        "--set", "data.synthetic.n_servers=8", "--set", "data.synthetic.days=300", "--set", "cluster.k=3",
        "--run-id", "s3run",
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"])
    prefix = "capacity-forecaster/s3run/"
    keys = {
        o["Key"][len(prefix) :]
        for o in client.list_objects_v2(Bucket=s3_bucket, Prefix=prefix).get("Contents", [])
    }
    local = {
        p.relative_to(tmp_path / "s3run").as_posix()
        for p in (tmp_path / "s3run").rglob("*")
        if p.is_file()
    }
    assert keys == local
    assert {
        "raw/metrics.parquet",
        "validated/metrics.parquet",
        "processed/features.parquet",
        "manifest.json",
    } <= keys
    manifest = json.loads(
        client.get_object(Bucket=s3_bucket, Key=prefix + "manifest.json")["Body"].read()
    )
    assert (
        manifest["status"] == "succeeded"
        and manifest["mirror"] == f"s3://{s3_bucket}/capacity-forecaster/s3run"
    )
    head = client.head_object(Bucket=s3_bucket, Key=prefix + "raw/metrics.parquet")
    assert head["ServerSideEncryption"] == "AES256"
    # No secret anywhere: not in the log, the manifest, the executed notebooks or the reports
    # (parquet and xlsx are compressed, so they are searched after decompressing too).
    secrets = [FAKE_ACCESS_KEY.encode(), FAKE_SECRET_KEY.encode()]
    assert not [x for x in secrets if x in (result.stdout + result.stderr).encode()]
    for path in (tmp_path / "s3run").rglob("*"):
        if path.is_file():
            for blob in _searchable(path):
                assert not [x for x in secrets if x in blob], path
    for key in keys:
        acl = client.get_object_acl(Bucket=s3_bucket, Key=prefix + key)
        assert not [g for g in acl["Grants"] if "AllUsers" in str(g.get("Grantee", {}))], key


def _searchable(path: Path) -> list[bytes]:
    """A file's bytes, plus the members of zip containers (xlsx) and parquet as text."""
    data = path.read_bytes()
    blobs = [data]
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as package:
            blobs += [package.read(name) for name in package.namelist()]
    if path.suffix == ".parquet":
        blobs.append(pd.read_parquet(path).to_csv().encode())
    return blobs
