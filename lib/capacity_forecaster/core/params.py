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

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from capacity_forecaster.core.errors import ParamsError
from capacity_forecaster.core.vocabulary import MODEL_NAMES, MetricName

# AWS bucket naming rules: 3-63 chars, lowercase letters, digits, dots and hyphens,
# starting and ending with a letter or digit, and not shaped like an IP address.
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_RE = re.compile(r"^\d+\.\d+\.\d+\.\d+$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunParams(_Section):
    name: str = Field("local", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    seed: int = Field(42, ge=0, le=2**32 - 1)
    output_root: Path = Path("outputs")


class S3Params(_Section):
    bucket: str
    prefix: str = ""
    region: str | None = None
    # Any S3-compatible store; when unset, boto3 also honours AWS_ENDPOINT_URL_S3.
    endpoint_url: str | None = None
    sse: Literal["none", "AES256", "aws:kms"] = "none"
    kms_key_id: str | None = None

    @field_validator("bucket")
    @classmethod
    def _valid_bucket(cls, bucket: str) -> str:
        if not _BUCKET_RE.match(bucket) or ".." in bucket or _IP_RE.match(bucket):
            raise ValueError(
                f"{bucket!r} is not a valid S3 bucket name "
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


class StorageParams(_Section):
    backend: Literal["local", "s3"] = "local"
    s3: S3Params | None = None
    # With the s3 backend every artifact is also kept under run.output_root; reads try S3 first
    # and fall back to that local copy when the object is missing in S3.
    local_fallback: bool = True

    @model_validator(mode="after")
    def _s3_needs_bucket(self) -> StorageParams:
        if self.backend == "s3" and self.s3 is None:
            raise ValueError(
                "backend is 's3' but the storage.s3 section (bucket, prefix, region) is missing"
            )
        return self


class SyntheticParams(_Section):
    n_servers: int = Field(150, ge=1, le=20_000)
    days: int = Field(730, ge=1, le=1830)  # bounded so a fleet fits in memory
    end_date: dt.date = dt.date(2026, 6, 30)
    outlier_share: float = Field(0.002, ge=0, le=0.1)
    missing_share: float = Field(0.01, ge=0, le=0.5)


class DataParams(_Section):
    source: Literal["synthetic", "file"] = "synthetic"
    metrics_path: str | None = None
    servers_path: str | None = None
    synthetic: SyntheticParams = SyntheticParams()
    max_missing_share: float = Field(0.1, ge=0, le=1)
    min_history_days: int = Field(56, ge=1, le=3650)

    @model_validator(mode="after")
    def _file_needs_paths(self) -> DataParams:
        if self.source == "file":
            missing = [k for k in ("metrics_path", "servers_path") if not getattr(self, k)]
            if missing:
                raise ValueError(f"source is 'file' but {' and '.join(missing)} not set")
        return self


class FeatureParams(_Section):
    outlier_window: int = Field(15, ge=3, le=91)
    outlier_mad_threshold: float = Field(6.0, gt=0, le=50)
    impute_limit_days: int = Field(7, ge=0, le=60)
    lags: tuple[int, ...] = (1, 7, 14, 28)
    rolling_windows: tuple[int, ...] = (7, 28)
    quarter_end_business_days: int = Field(5, ge=1, le=20)

    @field_validator("lags", "rolling_windows")
    @classmethod
    def _positive_sorted(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        if not values or any(v < 1 or v > 365 for v in values):
            raise ValueError("must be a non-empty list of integers between 1 and 365")
        return tuple(sorted(set(values)))


class ModelParams(_Section):
    enabled: tuple[Literal[MODEL_NAMES], ...] = MODEL_NAMES  # type: ignore[valid-type]
    backtest_origins: int = Field(3, ge=3, le=12)
    backtest_step_days: int = Field(28, ge=7, le=180)  # days between backtest origins
    interval: float = Field(0.8, gt=0.5, lt=1)

    @field_validator("enabled")
    @classmethod
    def _baseline_always(cls, enabled: tuple[str, ...]) -> tuple[str, ...]:
        # Every model is judged against the seasonal-naive baseline, so it always runs.
        return tuple(dict.fromkeys(("seasonal_naive", *enabled)))


class ForecastParams(_Section):
    horizon_days: int = Field(120, ge=90, le=180)


_DEFAULT_THRESHOLDS: dict[MetricName, float] = {"cpu_p95": 80.0, "mem_p95": 85.0, "disk_p95": 90.0}


def _check_percent_thresholds(thresholds: dict[MetricName, float]) -> dict[MetricName, float]:
    bad = {k: v for k, v in thresholds.items() if not 0 < v <= 100}
    if bad:
        raise ValueError(f"thresholds must be in (0, 100] percent, got {bad}")
    return thresholds


class RiskParams(_Section):
    thresholds: dict[MetricName, float] = Field(default_factory=lambda: dict(_DEFAULT_THRESHOLDS))
    # Stricter thresholds for some tiers, e.g. {criticality: {critical: {cpu_p95: 70}}}; the
    # strictest applicable threshold wins.
    overrides: dict[Literal["criticality", "environment"], dict[str, dict[MetricName, float]]] = (
        Field(default_factory=dict)
    )
    high_within_days: int = Field(30, ge=1, le=180)  # a breach this soon (or likely) is high risk
    high_probability: float = Field(0.3, gt=0, le=1)  # P(breach within high_within_days)
    medium_probability: float = Field(0.2, gt=0, le=1)

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


class RightSizingParams(_Section):
    percentile: float = Field(95, ge=50, le=100)  # of the forecast P95 over the horizon
    headroom: dict[Literal["cpu_p95", "mem_p95"], float] = Field(
        default_factory=lambda: dict(_DEFAULT_HEADROOM)
    )  # share of capacity kept free above the forecast peak
    idle_cpu_p95: float = Field(5.0, ge=0, le=50)  # P95 CPU below this over the lookback: idle
    lookback_days: int = Field(90, ge=7, le=730)
    under_utilisation: float = Field(
        0.9, gt=0, le=1
    )  # peak demand above this share: under-provisioned
    over_utilisation: float = Field(
        0.4, gt=0, le=1
    )  # peak demand below this share: over-provisioned

    @model_validator(mode="after")
    def _bands_ordered(self) -> RightSizingParams:
        if self.over_utilisation >= self.under_utilisation:
            raise ValueError("over_utilisation must be below under_utilisation")
        return self


class ClusterParams(_Section):
    k: int = Field(4, ge=2, le=50)
    target_utilisation: float = Field(0.7, gt=0, le=1)
    right_sizing: RightSizingParams = RightSizingParams()
    # Consolidation never mixes environments; the most critical tier stays untouched unless allowed.
    consolidate_critical: bool = False


class ReportParams(_Section):
    top_n: int = Field(20, ge=1, le=1000)


class ComputeParams(_Section):
    n_jobs: int = Field(-1, ge=-1, le=1024)
    # joblib on this machine; a Dask backend (scheduler_address) is planned, and refused until
    # it exists rather than silently ignored.
    backend: Literal["local"] = "local"
    scheduler_address: str | None = None

    @field_validator("n_jobs")
    @classmethod
    def _not_zero(cls, n_jobs: int) -> int:
        if n_jobs == 0:
            raise ValueError("n_jobs must be -1 (all cores) or a positive number of workers")
        return n_jobs


class Params(_Section):
    run: RunParams = RunParams()
    storage: StorageParams = StorageParams()
    data: DataParams = DataParams()
    features: FeatureParams = FeatureParams()
    models: ModelParams = ModelParams()
    forecast: ForecastParams = ForecastParams()
    risk: RiskParams = RiskParams()
    cluster: ClusterParams = ClusterParams()
    report: ReportParams = ReportParams()
    compute: ComputeParams = ComputeParams()

    @model_validator(mode="after")
    def _cluster_fits_fleet(self) -> Params:
        fleet = self.data.synthetic.n_servers
        if self.data.source == "synthetic" and self.cluster.k > fleet:
            raise ValueError(
                f"cluster.k = {self.cluster.k} is larger than the fleet ({fleet} servers)"
            )
        return self


def _describe(error: ErrorDetails, model: type[BaseModel]) -> str:
    """One line for one pydantic error: dotted key, what is wrong, what was given."""
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, error["loc"][:-1])
        close = difflib.get_close_matches(str(error["loc"][-1]), allowed, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"{key}: unknown key (allowed here: {', '.join(allowed)}){hint}"
    message = error["msg"].removeprefix("Value error, ")
    given = error.get("input")
    shown = "" if isinstance(given, dict) or given is None else f" (got {given!r})"
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
        lines = [_describe(e, Params) for e in exc.errors()]
        raise ParamsError(f"{source}: " + "; ".join(lines)) from None


def read_params_file(path: str | Path) -> dict[str, Any]:
    """Read a params YAML file into a mapping, with a clear error when it is missing or broken."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ParamsError(
            f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}"
        ) from None
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
                f"override {item!r}: expected dotted.key=value, e.g. forecast.horizon_days=90"
            )
        node = merged
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ParamsError(f"override {item!r}: {part} is not a section")
            node = child
        node[parts[-1]] = yaml.safe_load(value)
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
