"""The params schema: one YAML file describes a run and is validated once, before anything runs.

Unknown keys and out-of-range values are errors that name the key's dotted path. Relative paths
in a params file (``run.output_root``, ``data.metrics_path``, ``data.servers_path``) are resolved
against the directory of the params file itself, never the current working directory, so a run
behaves the same from JupyterLab, from ``run_all.py`` and from a scheduler.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from capacity_forecaster.core.errors import ParamsError
from capacity_forecaster.core.params_base import (
    ParamsSection,
    refuse_retired_key,
    short_repr,
    shorten,
)
from capacity_forecaster.core.params_calendar import CalendarParams
from capacity_forecaster.core.params_cloudwatch import CloudWatchSourceOptions
from capacity_forecaster.core.params_formats import FormatName, FormatOptions
from capacity_forecaster.core.params_yaml import load_yaml
from capacity_forecaster.core.vocabulary import MODEL_NAMES, MetricName, ModelName

# AWS bucket naming rules: 3-63 chars, lowercase letters, digits, dots and hyphens,
# starting and ending with a letter or digit, and not shaped like an IP address.
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_RE = re.compile(r"^\d+\.\d+\.\d+\.\d+$")

# A run name, and a run id: the name, optionally with the UTC time `new_run_id` appends. Both
# are one path segment and one S3 key segment: no separators, no `.` or `..`, nothing hidden.
RUN_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_RUN_ID_RE = re.compile(rf"{RUN_NAME_PATTERN}(-\d{{8}}T\d{{6}}Z)?")

MAX_PARAMS_BYTES = 1 << 20  # a params file is a few KB; this is surely not one
MAX_REPORTED_ERRORS = 5  # validation errors listed in the one-line message
MESSAGE_LIMIT = 200  # characters of one validation error (validators may echo long values)


class RunParams(ParamsSection):
    """What a run is called, its random seed and where its outputs land."""

    name: str = Field(
        "local",
        pattern=rf"^{RUN_NAME_PATTERN}$",
        description="Run name: the prefix of every run id, `<name>-YYYYmmddTHHMMSSZ`",
    )
    seed: int = Field(
        42,
        ge=0,
        le=2**32 - 1,
        description="Random seed of the synthetic fleet, the tree models and K-Means, for repeatable runs",
    )
    output_root: Path = Field(
        Path("outputs"),
        description="A run lands in `<output_root>/<run_id>/`; with the s3 backend, this is the local copy",
    )


class S3Params(ParamsSection):
    """The S3 bucket every artifact is mirrored to, and how objects are written there."""

    bucket: str = Field(description="S3 bucket the run's artifacts are mirrored to")
    prefix: str = Field(
        "", description="Key prefix: a run lands in `s3://<bucket>/<prefix>/<run_id>/`"
    )
    region: str | None = Field(
        None,
        description="AWS region of the bucket; null: the default from the AWS config or environment",
    )
    endpoint_url: str | None = Field(
        None,
        description="Endpoint of any S3-compatible store; null: AWS_ENDPOINT_URL_S3, else AWS S3",
    )
    sse: Literal["none", "AES256", "aws:kms"] = Field(
        "none",
        description="Server-side encryption: none, SSE-S3 (AES256) or SSE-KMS (aws:kms)",
    )
    kms_key_id: str | None = Field(
        None, description="KMS key id or ARN for sse aws:kms; null: the AWS-managed key aws/s3"
    )

    @field_validator("bucket")
    @classmethod
    def _valid_bucket(cls, bucket: str) -> str:
        if not _BUCKET_RE.match(bucket) or ".." in bucket or _IP_RE.match(bucket):
            raise ValueError(
                f"{short_repr(bucket)} is not a valid S3 bucket name "
                "(3-63 lowercase letters, digits, dots or hyphens; starts and ends with a letter or digit)"
            )
        return bucket

    @field_validator("prefix")
    @classmethod
    def _clean_prefix(cls, prefix: str) -> str:
        return prefix.strip("/")

    @model_validator(mode="after")
    def _kms_needs_key(self) -> S3Params:
        if self.kms_key_id and self.sse != "aws:kms":
            raise ValueError("kms_key_id is set but sse is not 'aws:kms'")
        return self


class StorageParams(ParamsSection):
    """Where a run's artifacts are kept: on local disk only, or also mirrored to S3."""

    backend: Literal["local", "s3"] = Field(
        "local", description="local: artifacts on local disk; s3: also mirrored to storage.s3"
    )
    s3: S3Params | None = Field(
        None, description="The S3 bucket and settings; needed by backend s3"
    )
    local_fallback: bool = Field(
        True,
        description="With s3: read an object missing in S3 from its local copy under run.output_root",
    )

    @model_validator(mode="after")
    def _s3_needs_bucket(self) -> StorageParams:
        if self.backend == "s3" and self.s3 is None:
            raise ValueError(
                "backend is 's3' but the storage.s3 section (bucket, prefix, region) is missing"
            )
        return self


class SyntheticParams(ParamsSection):
    """The generated demo fleet: its size, its history and the defects injected into it."""

    n_servers: int = Field(150, ge=1, le=20_000, description="Servers in the generated fleet")
    # The range of days is bounded so a fleet fits in memory.
    days: int = Field(730, ge=1, le=1830, description="Days of daily history generated per server")
    end_date: dt.date = Field(dt.date(2026, 6, 30), description="Last day of the generated history")
    outlier_share: float = Field(
        0.002, ge=0, le=0.1, description="Share (0-1) of points replaced by spikes or drops"
    )
    missing_share: float = Field(
        0.01,
        ge=0,
        le=0.5,
        description="Share (0-1) of server-days lost to simulated monitoring outages",
    )
    month_end_share: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Share (0-1) of servers whose load rises on the month_end window's days "
        "(close, payroll, settlement), as bank fleets do",
    )
    month_end_uplift: tuple[float, float] = Field(
        (10.0, 25.0),
        description="Range of that rise, in percentage points of CPU (memory and disk rise "
        "less), drawn per server",
    )

    @field_validator("month_end_uplift")
    @classmethod
    def _uplift_range(cls, bounds: tuple[float, float]) -> tuple[float, float]:
        low, high = bounds
        if not 0 <= low <= high <= 60:
            raise ValueError("must be [low, high] with 0 <= low <= high <= 60 points")
        return bounds


# The shortest history the pipeline forecasts from: 14 days to train and two backtest origins
# each scored on 7 (``forecasting.backtest_plan.MIN_BACKTEST_DAYS``, which a test holds equal).
MIN_HISTORY_FLOOR = 22


# What ``data.format`` accepts: the daily contract itself, or a monitoring export's layout.
InputFormat = Literal["daily", FormatName]
ExportOverHundred = Literal["clip", "fail"]


class DataParams(FormatOptions):
    """Where the metrics and inventory come from, their layout (a daily table or a monitoring export), and the gaps and history they must meet."""

    # timezone, min_day_coverage, cloudwatch_csv and prometheus come from FormatOptions: the
    # export readers take these params as their options.

    source: Literal["synthetic", "file", "cloudwatch"] = Field(
        "synthetic",
        description=(
            "synthetic: generate a fleet; file: read metrics_path and servers_path; "
            "cloudwatch: read a live EC2 fleet and its metrics (see data.cloudwatch)"
        ),
    )
    format: InputFormat = Field(
        "daily",
        description=(
            "Layout of metrics_path (source file): daily (the daily P95 table), samples (raw "
            "timestamp, server_id, metric, value rows), cloudwatch_csv (a folder of CloudWatch "
            "exports), prometheus_json (query_range results) or vm_trace (Bitbrains-style "
            "per-VM CSVs)"
        ),
    )
    metrics_path: str | None = Field(
        None,
        description=(
            "Metrics for source file, path or s3:// URI: a CSV or parquet table (format daily), "
            "else a file or a folder (s3:// prefix) of the export's files"
        ),
    )
    servers_path: str | None = Field(
        None,
        description=(
            "Server inventory for source file: CSV or parquet, path or s3:// URI; capacity an "
            "export reports (vm_trace) overrides the inventory's"
        ),
    )
    synthetic: SyntheticParams = Field(
        SyntheticParams(), description="The generated fleet, used when source is synthetic"
    )
    cloudwatch: CloudWatchSourceOptions = Field(
        default_factory=CloudWatchSourceOptions,
        description="The live EC2 fleet and CloudWatch metrics, used when source is cloudwatch",
    )
    over_100: ExportOverHundred = Field(
        "clip",
        description=(
            "Utilisation above 100 %: clip (to 100, counted per server and metric in "
            "validated/quality.json) or fail"
        ),
    )
    stale_after_days: int = Field(
        7,
        ge=1,
        le=365,
        description=(
            "A server without a value in this many days before the fleet's last day is stale: "
            "not forecast, listed with its last-seen date as a reclamation candidate"
        ),
    )
    max_missing_share: float = Field(
        0.1,
        ge=0,
        le=1,
        description=(
            "A metric missing more than this share (0-1) of server-days fails validation "
            "(servers that never report the metric are listed instead)"
        ),
    )
    min_history_days: int = Field(
        28,
        ge=MIN_HISTORY_FLOOR,
        le=3650,
        description=(
            "Servers with fewer days of history are left out (and listed); at least "
            f"{MIN_HISTORY_FLOOR}, the shortest history a backtest fits"
        ),
    )

    @model_validator(mode="after")
    def _source_needs_its_settings(self) -> DataParams:
        if self.source == "file":
            missing = [k for k in ("metrics_path", "servers_path") if not getattr(self, k)]
            if missing:
                raise ValueError(f"source is 'file' but {' and '.join(missing)} not set")
        elif self.format != "daily":
            raise ValueError(
                f"format {self.format!r} reads files: set source to 'file' and metrics_path "
                "to the export"
            )
        return self


class FeatureParams(ParamsSection):
    """Cleaning of each daily series (outliers, gaps) and the features built from it."""

    outlier_window: int = Field(
        15, ge=3, le=91, description="Days in the centred rolling window of the outlier filter"
    )
    outlier_mad_threshold: float = Field(
        6.0,
        gt=0,
        le=50,
        description="Outlier threshold, in scaled MADs (about standard deviations) from the rolling median",
    )
    impute_limit_days: int = Field(
        7,
        ge=0,
        le=60,
        description="Gaps of up to this many days are interpolated; longer gaps stay gaps",
    )
    lags: tuple[int, ...] = Field(
        (1, 7, 14, 28),
        description="Lag features: the value this many days earlier, one column per lag",
    )
    rolling_windows: tuple[int, ...] = Field(
        (7, 28),
        description="Rolling mean, std and max features over this many past days, per window",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_quarter_end_business_days(cls, data: Any) -> Any:
        # The quarter end is one window of the business calendar now, beside month end.
        return refuse_retired_key(
            data,
            "quarter_end_business_days",
            "moved to the business calendar: set calendar.windows.quarter_end.business_days "
            "instead",
        )

    @field_validator("lags", "rolling_windows")
    @classmethod
    def _positive_sorted(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        if not values or any(v < 1 or v > 365 for v in values):
            raise ValueError("must be a non-empty list of integers between 1 and 365")
        return tuple(sorted(set(values)))


class ModelParams(ParamsSection):
    """Which forecasting models run, and how the backtest scores and calibrates them."""

    enabled: tuple[ModelName, ...] = Field(
        MODEL_NAMES,
        description="Models fitted and compared; seasonal_naive always runs as the baseline",
    )
    backtest_origins: int = Field(
        3, ge=3, le=12, description="Rolling backtest origins the models are scored on"
    )
    backtest_step_days: int = Field(28, ge=7, le=180, description="Days between backtest origins")
    interval: float = Field(
        0.8,
        gt=0.5,
        lt=1,
        description="Prediction interval level (coverage, 0-1), calibrated on the backtest",
    )

    @field_validator("enabled")
    @classmethod
    def _baseline_always(cls, enabled: tuple[str, ...]) -> tuple[str, ...]:
        # Every model is judged against the seasonal-naive baseline, so it always runs.
        return tuple(dict.fromkeys(("seasonal_naive", *enabled)))


class ForecastParams(ParamsSection):
    """How far ahead every server and metric is forecast."""

    horizon_days: int = Field(
        120,
        ge=7,
        le=365,
        description=(
            "Days forecast ahead, and scored at each backtest origin (fewer when the history "
            "is too short: models/metrics.json says so)"
        ),
    )


_DEFAULT_THRESHOLDS: dict[MetricName, float] = {"cpu_p95": 80.0, "mem_p95": 85.0, "disk_p95": 90.0}


def _check_percent_thresholds(thresholds: dict[MetricName, float]) -> dict[MetricName, float]:
    bad = {k: v for k, v in thresholds.items() if not 0 < v <= 100}
    if bad:
        raise ValueError(f"thresholds must be in (0, 100] percent, got {bad}")
    return thresholds


class RiskParams(ParamsSection):
    """Capacity thresholds, and the rules that turn forecasts into high, medium or low risk."""

    thresholds: dict[MetricName, float] = Field(
        default_factory=lambda: dict(_DEFAULT_THRESHOLDS),
        description="Breach threshold per metric (percent); a metric left out keeps its default",
    )
    overrides: dict[Literal["criticality", "environment"], dict[str, dict[MetricName, float]]] = (
        Field(
            default_factory=dict,
            description="Stricter thresholds by tier, e.g. `{criticality: {critical: {cpu_p95: 70}}}`; strictest wins",
        )
    )
    high_within_days: int = Field(
        30, ge=1, le=180, description="A forecast breach within this many days is high risk"
    )
    high_probability: float = Field(
        0.3,
        gt=0,
        le=1,
        description="P(breach within high_within_days) at or above this (0-1): high risk",
    )
    medium_probability: float = Field(
        0.2,
        gt=0,
        le=1,
        description="P(breach within the horizon) at or above this (0-1): medium risk",
    )

    @field_validator("thresholds")
    @classmethod
    def _in_percent(cls, thresholds: dict[MetricName, float]) -> dict[MetricName, float]:
        return {**_DEFAULT_THRESHOLDS, **_check_percent_thresholds(thresholds)}

    @field_validator("overrides")
    @classmethod
    def _overrides_in_percent(
        cls, overrides: dict[str, dict[str, dict[MetricName, float]]]
    ) -> dict[str, dict[str, dict[MetricName, float]]]:
        for groups in overrides.values():
            for thresholds in groups.values():
                _check_percent_thresholds(thresholds)
        return overrides

    @model_validator(mode="after")
    def _probabilities_ordered(self) -> RiskParams:
        if self.medium_probability > self.high_probability:
            raise ValueError("medium_probability must not exceed high_probability")
        return self


_DEFAULT_HEADROOM: dict[Literal["cpu_p95", "mem_p95"], float] = {"cpu_p95": 0.2, "mem_p95": 0.2}


class RightSizingParams(ParamsSection):
    """How each server's forecast peak becomes a recommended size and a finding."""

    percentile: float = Field(
        95,
        ge=50,
        le=100,
        description="Percentile of the champion forecast over the horizon taken as the peak",
    )
    headroom: dict[Literal["cpu_p95", "mem_p95"], float] = Field(
        default_factory=lambda: dict(_DEFAULT_HEADROOM),
        description="Share of capacity (0-1) kept free above the forecast peak, per metric",
    )
    idle_cpu_p95: float = Field(
        5.0,
        ge=0,
        le=50,
        description="CPU P95 (percent) over lookback_days, less one standard deviation of its "
        "daily values, below this (and the mean below it too): the server is idle",
    )
    lookback_days: int = Field(
        90,
        ge=7,
        le=730,
        description="Days of recent history that profile each server (clusters, idle test)",
    )
    disk_usd_per_gb_month: float = Field(
        0.08,
        ge=0,
        le=10,
        description="Monthly price of one GB of disk (default: EBS gp3 in us-east-1); a disk "
        "grown for risk adds its new GB at this price to the server's monthly cost change",
    )
    over_utilisation: float = Field(
        0.4,
        gt=0,
        le=1,
        description="Forecast peak below this share (0-1) of capacity: over-provisioned "
        "(under-provisioned is a CPU or memory series at high or medium risk)",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_under_utilisation(cls, data: Any) -> Any:
        # One notion of too small: the risk thresholds. A server at 89 % CPU against an 80 %
        # threshold was high risk yet "optimal" under the old 90 % cut.
        return refuse_retired_key(
            data,
            "under_utilisation",
            "was removed: a server is under-provisioned when a CPU or memory series is at "
            "high or medium risk (risk.thresholds); delete the key",
        )


class ClusterParams(ParamsSection):
    """Server clusters, right-sizing, and consolidation (which never mixes environments)."""

    k: int = Field(
        4,
        ge=2,
        le=50,
        description="K-Means clusters of server profiles (fewer if the fleet has fewer distinct servers)",
    )
    target_utilisation: float = Field(
        0.7,
        gt=0,
        le=1,
        description="Consolidation packs hosts up to this share (0-1) of cores and memory",
    )
    right_sizing: RightSizingParams = Field(
        RightSizingParams(), description="Recommended sizes and findings from the forecast peak"
    )
    consolidate_critical: bool = Field(
        False, description="Allow consolidating the critical tier, which is otherwise never touched"
    )
    cross_region_moves: Literal["never", "flag"] = Field(
        "never",
        description="Consolidation moving a server to a host in another region: never proposed "
        "(latency, data residency), or proposed and flagged",
    )
    cross_business_unit_moves: Literal["never", "flag"] = Field(
        "flag",
        description="Consolidation moving a server to a host of another business unit: never "
        "proposed, or proposed and flagged (chargeback and ownership change)",
    )

    @property
    def closed_boundaries(self) -> tuple[str, ...]:
        """The inventory columns consolidation never moves a server across."""
        moves = {"region": self.cross_region_moves, "business_unit": self.cross_business_unit_moves}
        return tuple(column for column, rule in moves.items() if rule == "never")


class ReportParams(ParamsSection):
    """What the risk summary, reports and charts list."""

    top_n: int = Field(
        20,
        ge=1,
        le=1000,
        description="How many of the most urgent at-risk series the risk summary, reports and charts list",
    )


class ComputeParams(ParamsSection):
    """How many workers run the models, and where."""

    n_jobs: int = Field(
        -1, ge=-1, le=1024, description="Parallel workers for model fitting; -1: all cores"
    )
    # A Dask backend (scheduler_address) is planned, and refused until it exists rather than
    # silently ignored.
    backend: Literal["local"] = Field("local", description="local: joblib on this machine")
    scheduler_address: str | None = Field(
        None, description="Dask scheduler address, for the planned Dask backend; not used yet"
    )

    @field_validator("n_jobs")
    @classmethod
    def _not_zero(cls, n_jobs: int) -> int:
        if n_jobs == 0:
            raise ValueError("n_jobs must be -1 (all cores) or a positive number of workers")
        return n_jobs


class Params(ParamsSection):
    """A whole run: one section per concern, all validated before anything runs."""

    run: RunParams = Field(RunParams(), description="Run name, seed and output folder")
    storage: StorageParams = Field(
        StorageParams(), description="Where artifacts are kept: local disk, or mirrored to S3"
    )
    data: DataParams = Field(
        DataParams(), description="Input data (synthetic or files) and its quality gates"
    )
    features: FeatureParams = Field(
        FeatureParams(), description="Cleaning of each series and the features built from it"
    )
    models: ModelParams = Field(
        ModelParams(), description="Forecasting models, backtest and prediction intervals"
    )
    calendar: CalendarParams = Field(
        CalendarParams(),
        description="Business calendar: recurring windows of load (month end, quarter end, "
        "your own) and extra holidays",
    )
    forecast: ForecastParams = Field(ForecastParams(), description="Forecast horizon")
    risk: RiskParams = Field(RiskParams(), description="Thresholds and risk-level rules")
    cluster: ClusterParams = Field(
        ClusterParams(), description="Clusters, right-sizing and consolidation"
    )
    report: ReportParams = Field(ReportParams(), description="What the reports list")
    compute: ComputeParams = Field(ComputeParams(), description="Parallel workers")

    @model_validator(mode="after")
    def _cluster_fits_fleet(self) -> Params:
        fleet = self.data.synthetic.n_servers
        if self.data.source == "synthetic" and self.cluster.k > fleet:
            raise ValueError(
                f"cluster.k = {self.cluster.k} is larger than the fleet ({fleet} servers)"
            )
        return self


def _describe(error: ErrorDetails, model: type[BaseModel]) -> str:
    """One line for one pydantic error: dotted key, what is wrong, what was given (cut short)."""
    key = ".".join(shorten(str(part)) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, error["loc"][:-1])
        close = difflib.get_close_matches(str(error["loc"][-1]), allowed, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"{key}: unknown key (allowed here: {', '.join(allowed)}){hint}"
    message = shorten(error["msg"].removeprefix("Value error, "), MESSAGE_LIMIT)
    given = error.get("input")
    shown = "" if isinstance(given, dict) or given is None else f" (got {short_repr(given)})"
    return f"{key}: {message}{shown}"


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: type[BaseModel] | None = model
    for part in loc:
        assert current is not None
        field = current.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        candidates = getattr(annotation, "__args__", (annotation,))
        current = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if current is None:
            return []
    return list(current.model_fields) if current is not None else []


def parse_params(raw: dict[str, Any], source: str = "params") -> Params:
    """Validate a params mapping; errors name every bad key with its dotted path."""
    if not isinstance(raw, dict):
        raise ParamsError(
            f"{source}: expected a mapping of sections (run, storage, data, ...), got {type(raw).__name__}"
        )
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        lines = [_describe(e, Params) for e in errors[:MAX_REPORTED_ERRORS]]
        if len(errors) > MAX_REPORTED_ERRORS:
            lines.append(f"and {len(errors) - MAX_REPORTED_ERRORS} more")
        raise ParamsError(f"{source}: " + "; ".join(lines)) from None


def check_run_id(run_id: str) -> str:
    """``run_id`` if it is a run name, optionally with its ``-YYYYmmddTHHMMSSZ`` suffix.

    A run id becomes a folder under ``run.output_root`` and a key segment under the S3 prefix:
    anything else (``..``, a path, a separator, a control character) could land elsewhere.
    """
    if not _RUN_ID_RE.fullmatch(run_id):
        raise ParamsError(
            f"run id {short_repr(run_id)} is not allowed: use a name of letters, digits, '_', "
            "'.' and '-' that starts with a letter or digit (at most 64 characters), optionally "
            "followed by -YYYYmmddTHHMMSSZ, e.g. 'local' or 'local-20260630T120000Z'"
        )
    return run_id


def read_params_file(path: str | Path) -> dict[str, Any]:
    """Read a params YAML file into a mapping, with a clear error when it is missing or broken."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file not found: {path}")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PARAMS_BYTES + 1)
    except OSError as exc:
        raise ParamsError(f"cannot read params file {path}: {exc.strerror}") from None
    if len(data) > MAX_PARAMS_BYTES:
        raise ParamsError(
            f"{path}: larger than {MAX_PARAMS_BYTES // 1024} KB; a params file is a few KB: "
            "is this the right file?"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParamsError(
            f"{path}: not UTF-8 text (byte {exc.start + 1}); save the params file as UTF-8"
        ) from None
    raw = load_yaml(text, str(path))
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ParamsError(
            f"{path}: expected a mapping of sections (run, storage, data, ...), got {type(raw).__name__}"
        )
    return raw


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``dotted.key=value`` overrides (values parsed as YAML) to a params mapping."""
    merged: dict[str, Any] = copy.deepcopy(raw)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParamsError(
                f"override {short_repr(item)}: expected dotted.key=value, e.g. forecast.horizon_days=90"
            )
        node = merged
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ParamsError(f"override {short_repr(item)}: {shorten(part)} is not a section")
            node = child
        # The same bounded loader as the file: one line, so no line numbers.
        node[parts[-1]] = load_yaml(value, f"override {short_repr(item)}", with_lines=False)
    return merged


def _resolve_paths(params: Params, base_dir: Path) -> Params:
    """Make relative paths absolute against the params file's directory (never the cwd)."""

    def resolve(value: str | None) -> str | None:
        if value is None or "://" in value or Path(value).is_absolute():
            return value
        return str((base_dir / value).resolve())

    run = params.run.model_copy(
        update={"output_root": Path(resolve(str(params.run.output_root)) or ".")}
    )
    data = params.data.model_copy(
        update={
            "metrics_path": resolve(params.data.metrics_path),
            "servers_path": resolve(params.data.servers_path),
        }
    )
    return params.model_copy(update={"run": run, "data": data})


def load_params(path: str | Path, overrides: list[str] | None = None) -> Params:
    """Read, override and validate a params file; relative paths resolve against its directory."""
    path = Path(path)
    raw = apply_overrides(read_params_file(path), overrides or [])
    return _resolve_paths(parse_params(raw, source=str(path)), path.resolve().parent)


def params_to_dict(params: Params) -> dict[str, Any]:
    """A JSON-ready copy of the validated params, as recorded in the manifest."""
    return params.model_dump(mode="json")
