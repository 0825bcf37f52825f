"""Format prometheus_json on a real query_range export (tests/fixtures/real/prometheus)."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from capacity_forecaster.core.errors import DataValidationError
from capacity_forecaster.core.params_formats import FormatOptions, PrometheusOptions
from capacity_forecaster.ingest.formats import read_export
from tests.ingest.formats.builders import day_of, local_dates, p95, real_files

METRIC = "badger_disk_reads:rate1m"
ALPHA_3 = "https://prometheus-exporter-alpha-3.thoth-dgraph-stage.svc:8080/debug/prometheus_metrics"
STAGE = "prometheus-aggregate-exporter-thoth-dgraph-stage.cloud.paas.psi.redhat.com:80"


def _options(**prometheus: Any) -> FormatOptions:
    return FormatOptions(
        prometheus=PrometheusOptions(metric_names={METRIC: "disk_p95"}, **prometheus)
    )


def _series() -> list[dict[str, Any]]:
    return json.loads(real_files("prometheus")[0][1])


def test_each_series_by_its_source_label() -> None:
    result = read_export(
        "prometheus_json", real_files("prometheus"), _options(server_label="ae_source")
    )

    assert result.counts["samples_read"] == sum(len(s["values"]) for s in _series()) == 5908
    # 2019-08-14 16:10 UTC to 2019-08-16 00:59 UTC: only 08-15 is a full day.
    assert result.metrics["date"].dt.strftime("%Y-%m-%d").unique().tolist() == ["2019-08-15"]
    assert result.counts["days_out"] == 3
    assert json.loads(json.dumps(result.counts)) == result.counts
    assert result.counts["partial_days"] == 6
    alpha_3 = next(s for s in _series() if s["metric"]["ae_source"] == ALPHA_3)
    samples = pd.DataFrame(alpha_3["values"], columns=["time", "value"]).astype(float)
    on_day = samples.loc[local_dates(samples["time"], "UTC") == pd.Timestamp("2019-08-15").date()]
    assert len(on_day) == 1439  # one 2-minute gap in the real series
    assert day_of(result.metrics, ALPHA_3, "2019-08-15")["disk_p95"] == pytest.approx(
        p95(on_day["value"])
    )


def test_series_sharing_a_server_label_are_pooled_with_a_warning() -> None:
    result = read_export("prometheus_json", real_files("prometheus"), _options())
    assert sorted(result.metrics["server_id"]) == sorted(
        [STAGE, STAGE.replace("dgraph-stage", "test-core")]
    )
    assert any("2 series share instance=" in w and "pooled" in w for w in result.warnings)
    # Two series on one 1-minute grid: every time of one repeats in the other.
    assert result.counts["repeated_timestamps_by_server"] == {STAGE: 1969}


def test_value_scale_multiplies_every_value() -> None:
    plain = read_export(
        "prometheus_json", real_files("prometheus"), _options(server_label="ae_source")
    )
    scaled = read_export(
        "prometheus_json",
        real_files("prometheus"),
        _options(server_label="ae_source", value_scale=100),
    )
    assert scaled.metrics["disk_p95"].to_numpy() == pytest.approx(
        100 * plain.metrics["disk_p95"].to_numpy()
    )


def test_the_full_api_answer_and_skipped_series() -> None:
    series = _series()
    del series[1]["metric"]["instance"]
    series[2]["metric"]["__name__"] = "node_network_receive_bytes_total"
    answer = {"status": "success", "data": {"resultType": "matrix", "result": series}}
    result = read_export("prometheus_json", [("q.json", json.dumps(answer).encode())], _options())
    assert result.counts["series_without_server"] == 1
    assert result.counts["series_unmapped"] == 1
    warnings = " | ".join(result.warnings)
    assert "no label 'instance'" in warnings and "thoth-test-core" in warnings
    assert "'node_network_receive_bytes_total'" in warnings


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        pytest.param(
            {"status": "error", "errorType": "bad_data", "error": "parse error"},
            "did not succeed",
            id="error status",
        ),
        pytest.param(
            {"status": "success", "data": {"resultType": "vector", "result": []}},
            "not 'matrix'",
            id="instant query",
        ),
        pytest.param(
            [{"metric": {"instance": "a", "__name__": "cpu"}, "values": [[1.0, "x"]]}],
            "is not [epoch seconds",
            id="non-numeric value",
        ),
        pytest.param("not json at all", "not JSON", id="not json"),
    ],
)
def test_bad_answers_fail_in_one_line(answer: Any, fragment: str) -> None:
    data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
    with pytest.raises(DataValidationError) as caught:
        read_export("prometheus_json", [("q.json", data)])
    assert str(caught.value).startswith("q.json: ")
    assert fragment in str(caught.value)
