"""Params: one schema, validated once; every bad key is named with its dotted path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from capacity_forecaster.core.errors import ParamsError
from capacity_forecaster.core.params import apply_overrides, load_params, parse_params
from tests.conftest import PARAMS_DIR


@pytest.mark.parametrize("name", ["local", "aws", "ci"])
def test_shipped_params_files_are_valid(name: str) -> None:
    params = load_params(PARAMS_DIR / f"{name}.yaml")
    assert params.run.name == name
    # Relative paths resolve against the params file's directory, not the cwd.
    assert params.run.output_root == (PARAMS_DIR.parent / "outputs").resolve()


def test_local_params_describe_the_default_fleet() -> None:
    params = load_params(PARAMS_DIR / "local.yaml")
    assert params.storage.backend == "local"
    assert 100 <= params.data.synthetic.n_servers <= 200
    assert params.data.synthetic.days >= 730


def test_aws_params_use_s3_without_secrets() -> None:
    text = (PARAMS_DIR / "aws.yaml").read_text()
    params = load_params(PARAMS_DIR / "aws.yaml")
    assert params.storage.backend == "s3" and params.storage.s3 is not None
    for secret_key in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token"):
        assert secret_key not in text.lower()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"data": {"synthtic": {}}}, "data.synthtic: unknown key"),
        ({"bogus": 1}, "bogus: unknown key"),
        (
            {"forecast": {"horizon_days": 366}},
            "forecast.horizon_days: Input should be less than or equal to 365",
        ),
        (
            {"forecast": {"horizon_days": 6}},
            "forecast.horizon_days: Input should be greater than or equal to 7",
        ),
        ({"forecast": {"horizon_days": "soon"}}, "forecast.horizon_days"),
        ({"cluster": {"k": 1}}, "cluster.k: Input should be greater than or equal to 2"),
        (
            {"cluster": {"k": 40}, "data": {"synthetic": {"n_servers": 10}}},
            "cluster.k = 40 is larger than the fleet",
        ),
        (
            {"risk": {"thresholds": {"cpu_p95": 120}}},
            "risk.thresholds: thresholds must be in (0, 100]",
        ),
        ({"risk": {"thresholds": {"gpu_p95": 50}}}, "risk.thresholds.gpu_p95"),
        ({"models": {"enabled": ["xgboost"]}}, "models.enabled.0"),
        ({"models": {"interval": 1.5}}, "models.interval"),
        ({"storage": {"backend": "s3"}}, "storage: backend is 's3' but the storage.s3 section"),
        (
            {"storage": {"backend": "s3", "s3": {"bucket": "My_Bucket"}}},
            "storage.s3.bucket: 'My_Bucket' is not a valid S3 bucket name",
        ),
        ({"storage": {"backend": "s3", "s3": {"bucket": "ab"}}}, "storage.s3.bucket"),
        ({"storage": {"backend": "s3", "s3": {"bucket": "192.168.1.1"}}}, "storage.s3.bucket"),
        ({"storage": {"backend": "gcs"}}, "storage.backend"),
        (
            {"data": {"source": "file"}},
            "data: source is 'file' but metrics_path and servers_path not set",
        ),
        ({"compute": {"n_jobs": 0}}, "compute.n_jobs"),
        ({"run": {"name": "has space"}}, "run.name"),
        ({"features": {"lags": [0, 7]}}, "features.lags"),
    ],
)
def test_bad_params_name_the_key(raw: dict, expected: str) -> None:
    with pytest.raises(ParamsError) as info:
        parse_params(raw, source="p.yaml")
    message = str(info.value)
    assert message.startswith("p.yaml: ")
    assert expected in message
    assert "\n" not in message


def test_misspelt_key_suggests_the_right_one() -> None:
    with pytest.raises(ParamsError, match="did you mean 'horizon_days'"):
        parse_params({"forecast": {"horizon_day": 90}})


def test_baseline_is_always_enabled() -> None:
    assert parse_params({"models": {"enabled": ["prophet"]}}).models.enabled == (
        "seasonal_naive",
        "prophet",
    )


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("run: {name: x\n")
    with pytest.raises(ParamsError, match=r"broken.yaml: not valid YAML at line"):
        load_params(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(ParamsError, match="expected a mapping"):
        load_params(listed)


def test_overrides_are_validated_too(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("forecast: {horizon_days: 120}\nrun: {output_root: out}\n")
    params = load_params(path, ["forecast.horizon_days=90", "data.synthetic.n_servers=7"])
    assert params.forecast.horizon_days == 90 and params.data.synthetic.n_servers == 7
    assert params.run.output_root == (tmp_path / "out").resolve()
    with pytest.raises(ParamsError, match=r"forecast\.horizon_days"):
        load_params(path, ["forecast.horizon_days=500"])
    with pytest.raises(ParamsError, match=r"expected dotted\.key=value"):
        apply_overrides({}, ["forecast.horizon_days"])


def test_relative_data_paths_resolve_against_the_params_file(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "p.yaml"
    path.parent.mkdir()
    path.write_text(
        "data: {source: file, metrics_path: ../data/m.csv, servers_path: s3://bucket/s.csv}\n"
    )
    params = load_params(path)
    assert params.data.metrics_path == str((tmp_path / "data" / "m.csv").resolve())
    assert params.data.servers_path == "s3://bucket/s.csv"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"compute": {"n_jobs": True}}, "compute.n_jobs"),
        ({"data": {"synthetic": {"n_servers": True}}}, "data.synthetic.n_servers"),
        ({"risk": {"high_probability": True}}, "risk.high_probability"),
        ({"risk": {"thresholds": {"cpu_p95": True}}}, "risk.thresholds"),
        ({"features": {"lags": [True, 7]}}, "features.lags"),
        ({"data": {"cloudwatch": {"monthly_cost_usd": {"m5.large": False}}}}, "data.cloudwatch.monthly_cost_usd"),
        ({"data": {"cloudwatch": {"max_attempts": True}}}, "data.cloudwatch.max_attempts"),
    ],
)  # fmt: skip
def test_true_or_false_is_never_a_number(raw: dict, key: str) -> None:
    # pydantic reads true as 1: `n_jobs: true` ran one worker, `high_probability: true` 1.0.
    with pytest.raises(
        ParamsError, match=rf"{re.escape(key)}: expected a number, not true or false"
    ):
        parse_params(raw)


def test_booleans_still_set_boolean_keys() -> None:
    params = parse_params(
        {"storage": {"local_fallback": False}, "cluster": {"consolidate_critical": True}}
    )
    assert params.storage.local_fallback is False and params.cluster.consolidate_critical is True


def test_echoed_values_are_cut_short() -> None:
    shared: list = ["lol"] * 9
    for _ in range(5):  # 9**6 strings, one list per level in memory, megabytes once printed
        shared = [shared] * 9
    for raw in (
        {"forecast": {"horizon_days": shared}},
        {"run": {"name": "x" * 100_000}},
        {"storage": {"backend": "s3", "s3": {"bucket": "B" * 100_000}}},
    ):
        with pytest.raises(ParamsError) as info:
            parse_params(raw, source="p.yaml")
        message = str(info.value)
        assert len(message) < 400 and ("..." in message or "…" in message), message[:500]


def test_many_errors_are_counted_not_listed() -> None:
    with pytest.raises(ParamsError, match=r"models\.enabled\.4: .*; and 995 more$"):
        parse_params({"models": {"enabled": ["nope"] * 1000}})


def test_a_broken_override_value_is_a_params_error() -> None:
    with pytest.raises(ParamsError, match=r"override 'run=\{name: \[': not valid YAML at column"):
        apply_overrides({}, ["run={name: ["])


def test_unreadable_params_files_are_one_line(tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"run: {name: \xff}\n")
    with pytest.raises(ParamsError, match=r"binary.yaml: not UTF-8 text \(byte 13\)"):
        load_params(binary)
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"#" * (2 << 20))
    with pytest.raises(ParamsError, match=r"huge.yaml: larger than 1024 KB"):
        load_params(huge)


def test_a_time_zone_too_long_for_a_file_name_is_one_short_line() -> None:
    with pytest.raises(ParamsError) as caught:
        parse_params({"data": {"timezone": "Europe/" + "x" * 5000}})
    message = str(caught.value)
    assert "is not an IANA time zone" in message and len(message) < 300
