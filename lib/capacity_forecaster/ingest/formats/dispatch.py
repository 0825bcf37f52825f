"""One entry point for every export format: ``data.format`` names the reader."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import get_args

from capacity_forecaster.core.errors import ParamsError
from capacity_forecaster.core.params_formats import FormatName, FormatOptions
from capacity_forecaster.ingest.formats import FormatResult, SourceFile
from capacity_forecaster.ingest.formats.cloudwatch import read_cloudwatch_csv
from capacity_forecaster.ingest.formats.prometheus import read_prometheus_json
from capacity_forecaster.ingest.formats.samples import read_samples
from capacity_forecaster.ingest.formats.vm_trace import read_vm_trace

Reader = Callable[[Sequence[SourceFile], FormatOptions], FormatResult]

READERS: Mapping[str, Reader] = MappingProxyType(
    {
        "samples": read_samples,
        "cloudwatch_csv": read_cloudwatch_csv,
        "prometheus_json": read_prometheus_json,
        "vm_trace": read_vm_trace,
    }
)


def read_export(
    format_name: str, files: Sequence[SourceFile], options: FormatOptions | None = None
) -> FormatResult:
    """Read an export's ``(name, bytes)`` files with the reader of ``format_name``.

    Every reader ends in the daily contract; the result is validated by stage 02 like any
    daily metrics table. ``options`` default to ``FormatOptions()`` (UTC days, 0.8 coverage).
    """
    reader = READERS.get(format_name)
    if reader is None:
        raise ParamsError(
            f"data.format: unknown format {format_name!r}; use one of {', '.join(get_args(FormatName))}"
        )
    return reader(files, options or FormatOptions())
