"""FormatOptions: defaults, ranges, unknown keys, described fields; read_export's format names."""

from __future__ import annotations

import re
from typing import get_args

import pytest
from pydantic import BaseModel, ValidationError

from capacity_forecaster.core.errors import ParamsError
from capacity_forecaster.core.params_formats import (
    DEFAULT_FILENAME_PATTERNS,
    CloudWatchCsvOptions,
    FormatName,
    FormatOptions,
    PrometheusOptions,
)
from capacity_forecaster.ingest.formats import read_export
from capacity_forecaster.ingest.formats.dispatch import READERS


def test_defaults() -> None:
    options = FormatOptions()
    assert options.timezone == "UTC"
    assert options.min_day_coverage == 0.8
    assert options.cloudwatch_csv.metric_names["CPUUtilization"] == "cpu_p95"
    assert options.cloudwatch_csv.metric_names["mem_used_percent"] == "mem_p95"
    assert options.cloudwatch_csv.metric_names["disk_used_percent"] == "disk_p95"
    assert options.prometheus.server_label == "instance"
    assert options.prometheus.metric_label == "__name__"
    assert options.prometheus.value_scale == 1.0


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        pytest.param({"timezone": "Mars/Olympus"}, "not an IANA time zone", id="unknown zone"),
        pytest.param({"timezone": "europe/paris"}, "did you mean 'Europe/Paris'", id="zone case"),
        pytest.param({"min_day_coverage": 0}, "greater than 0", id="coverage zero"),
        pytest.param({"min_day_coverage": 1.5}, "less than or equal to 1", id="coverage above 1"),
        pytest.param({"timezon": "UTC"}, "Extra inputs", id="misspelt key"),
        pytest.param(
            {"cloudwatch_csv": {"filename_patterns": [r"(?P<server_id>.+)\.csv"]}},
            "(?P<metric>...)",
            id="pattern without metric group",
        ),
        pytest.param(
            {"cloudwatch_csv": {"metric_names": {"CPUUtilization": "cpu"}}},
            "cpu_p95",
            id="mapping to a non-contract metric",
        ),
        pytest.param({"prometheus": {"value_scale": 0}}, "greater than 0", id="zero scale"),
    ],
)
def test_invalid_options_are_refused(values: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        FormatOptions.model_validate(values)
    assert fragment in str(caught.value)


@pytest.mark.parametrize("model", [FormatOptions, CloudWatchCsvOptions, PrometheusOptions])
def test_every_field_is_described_and_unknown_keys_are_errors(model: type[BaseModel]) -> None:
    assert model.model_config.get("extra") == "forbid"
    for name, info in model.model_fields.items():
        assert info.description, f"{model.__name__}.{name} has no description"


@pytest.mark.parametrize(
    ("file_name", "server_id", "metric"),
    [
        ("ec2_cpu_utilization_5f5533.csv", "5f5533", "cpu_utilization"),
        ("rds_cpu_utilization_cc0c53.csv", "cc0c53", "cpu_utilization"),
        ("ec2_disk_write_bytes_1ef3de.csv", "1ef3de", "disk_write_bytes"),
        ("i-0abc_CPUUtilization.csv", "i-0abc", "CPUUtilization"),
        ("iio_us-east-1_i-a2eb1cd9_NetworkIn.csv", "i-a2eb1cd9", "NetworkIn"),
        ("i-0123456789abcdef0_mem_used_percent.csv.gz", "i-0123456789abcdef0", "mem_used_percent"),
    ],
)
def test_default_file_name_patterns(file_name: str, server_id: str, metric: str) -> None:
    match = next(m for p in DEFAULT_FILENAME_PATTERNS if (m := re.search(p, file_name)))
    assert (match["server_id"], match["metric"]) == (server_id, metric)


def test_every_format_name_has_a_reader() -> None:
    assert set(READERS) == set(get_args(FormatName))


def test_an_unknown_format_names_the_choices() -> None:
    with pytest.raises(ParamsError, match=r"unknown format 'csv'.*cloudwatch_csv"):
        read_export("csv", [])
