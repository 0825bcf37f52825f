"""Format ``prometheus_json``: Prometheus ``query_range`` results, one JSON file per query.

A file is the HTTP API's answer, ``{"status": "success", "data": {"resultType": "matrix",
"result": [...]}}``, or only its ``result`` array (as the Red Hat Thoth exports keep it). Each
series has ``metric`` (its labels) and ``values``, ``[epoch seconds, "value"]`` pairs. The
server is the value of ``prometheus.server_label``, the metric the value of
``prometheus.metric_label`` mapped by ``prometheus.metric_names``; values are multiplied by
``prometheus.value_scale``. Series without the server label, or of another metric, are skipped
and named in a warning. Several series of one server and metric (e.g. per-pod series under one
``instance``) are pooled into one, with a warning. Aggregation: ``daily.aggregate_samples``.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from capacity_forecaster.core.params_formats import FormatOptions, PrometheusOptions
from capacity_forecaster.core.vocabulary import METRICS, MetricName
from capacity_forecaster.ingest.formats import FormatResult, SourceFile
from capacity_forecaster.ingest.formats.daily import aggregate_samples
from capacity_forecaster.ingest.formats.sample_tables import SampleTable, sample_table
from capacity_forecaster.ingest.messages import fail, names, one_line, show, warn

logger = logging.getLogger(__name__)

SeriesKey = tuple[str, MetricName]
# Characters of a series' labels shown in a warning (enough for a few labels and a URL).
_SHOWN_LABELS = 200


def read_prometheus_json(files: Sequence[SourceFile], options: FormatOptions) -> FormatResult:
    """Daily P95 per server and metric of Prometheus ``query_range`` JSON results."""
    if not files:
        raise fail("prometheus_json export", "no files given")
    warnings: list[str] = []
    skipped = {"series_without_server": 0, "series_unmapped": 0}
    parts = _file_parts(files, options.prometheus, warnings, skipped)
    result = aggregate_samples(parts, options.timezone, options.min_day_coverage)
    result.warnings[:0] = warnings
    result.counts.update({**skipped, "files_read": len(files)})
    return result


def _file_parts(
    files: Sequence[SourceFile],
    settings: PrometheusOptions,
    warnings: list[str],
    skipped: dict[str, int],
) -> Iterator[SampleTable]:
    """One sample table per server and metric of each file (several series pooled)."""
    for source, data in files:
        grouped = _grouped_series(_result(data, source), source, settings, warnings, skipped)
        for (server_id, metric), series in grouped.items():
            if len(series) > 1:
                warn(
                    warnings,
                    source,
                    f"{len(series)} series share {settings.server_label}={show(server_id)} "
                    f"and metric {metric}: their samples are pooled into one series",
                )
            times, values = _samples(series, source, server_id)
            label = f"{source} [{server_id} {metric}]"
            yield (
                label,
                sample_table(pa.array(times), server_id, metric, values * settings.value_scale),
            )


def _result(data: bytes, source: str) -> list[dict[str, Any]]:
    """The ``result`` array of a range query's answer; fail on errors and other result types."""
    try:
        answer = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise fail(source, f"not JSON: {one_line(str(exc))[:120]}") from None
    if isinstance(answer, list):
        return answer
    if not isinstance(answer, dict):
        raise fail(source, "not a Prometheus answer: expected an object with status and data")
    if answer.get("status") != "success":
        reason = f"{answer.get('errorType', '')} {answer.get('error', '')}".strip()
        raise fail(
            source,
            f"the query did not succeed (status {show(answer.get('status'))}"
            f"{': ' + show(reason) if reason else ''}): export a successful query_range answer",
        )
    body = answer.get("data") or {}
    if body.get("resultType") != "matrix":
        raise fail(
            source,
            f"resultType is {show(body.get('resultType'))}, not 'matrix': export a range query "
            "(/api/v1/query_range), not an instant query",
        )
    result = body.get("result")
    if not isinstance(result, list):
        raise fail(source, "data.result is not a list of series")
    return result


def _grouped_series(
    result: list[dict[str, Any]],
    source: str,
    settings: PrometheusOptions,
    warnings: list[str],
    skipped: dict[str, int],
) -> dict[SeriesKey, list[list[Any]]]:
    """``{(server, metric): [values of each series]}``; skipped series named in warnings."""
    lookup: dict[str, MetricName] = {**{m: m for m in METRICS}, **settings.metric_names}
    grouped: dict[SeriesKey, list[list[Any]]] = defaultdict(list)
    no_server: list[str] = []
    unmapped: list[str] = []
    for series in result:
        labels = (series.get("metric") or {}) if isinstance(series, dict) else {}
        server_id = labels.get(settings.server_label)
        metric = lookup.get(str(labels.get(settings.metric_label, "")))
        if not server_id:
            no_server.append(_labels_text(labels))
        elif metric is None:
            unmapped.append(str(labels.get(settings.metric_label, "<no label>")))
        else:
            grouped[(str(server_id), metric)].append(series.get("values") or [])
    if no_server:
        warn(
            warnings,
            source,
            f"{len(no_server)} series skipped: no label {show(settings.server_label)} "
            f"(prometheus.server_label): {'; '.join(t[:_SHOWN_LABELS] for t in no_server[:3])}",
        )
    if unmapped:
        warn(
            warnings,
            source,
            f"{len(unmapped)} series skipped: their {settings.metric_label} is not in "
            f"prometheus.metric_names: {names(sorted(set(unmapped)))}",
        )
    skipped["series_without_server"] += len(no_server)
    skipped["series_unmapped"] += len(unmapped)
    return grouped


def _samples(series: list[list[Any]], source: str, server_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(epoch seconds, values) of the pooled ``[time, "value"]`` pairs of ``series``."""
    pairs = [pair for values in series for pair in values]
    try:
        times = np.array([pair[0] for pair in pairs], dtype=float)
        # Prometheus writes values as text: "0.5", "NaN", "+Inf" (the last two are dropped).
        values = np.array([pair[1] for pair in pairs], dtype=float)
    except (ValueError, TypeError, IndexError):
        bad = next(p for p in pairs if not _is_pair(p))
        raise fail(
            source,
            f'a sample of server {show(server_id)} is not [epoch seconds, "number"]: '
            f"{show(json.dumps(bad))}",
        ) from None
    return times, values


def _is_pair(pair: Any) -> bool:
    try:
        float(pair[0])
        float(pair[1])
    except (ValueError, TypeError, IndexError, KeyError):
        return False
    return isinstance(pair, list | tuple) and len(pair) == 2


def _labels_text(labels: dict[str, Any]) -> str:
    """``{a="x", b="y"}`` as Prometheus writes a series."""
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
