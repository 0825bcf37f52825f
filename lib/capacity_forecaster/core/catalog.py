"""The catalog of products: every artifact a stage writes, who reads it, and its schema.

Stages meet only through these products. Each is declared once here with its key (the
same on local disk and S3), the stage that writes it, the stages that read it, and its
schema: columns, kinds, nulls and ranges for tables (``core.tables``), a pydantic model for
JSON (``core.documents``). ``write`` and ``read`` check the schema on both sides, and a
stage may only read or write what the catalog says it does, so ``run_all.py --list``,
which prints this catalog, is always the truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ValidationError

from capacity_forecaster.core import documents
from capacity_forecaster.core.contract import (
    METRIC_COLUMNS,
    SERVER_CAPACITY_COLUMNS,
    SERVER_COST_COLUMNS,
    SERVER_REQUIRED_COLUMNS,
    SERVER_TEXT_COLUMNS,
)
from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.params import Params
from capacity_forecaster.core.storage import RunStorage, read_source
from capacity_forecaster.core.tables import Column, TableSchema
from capacity_forecaster.core.vocabulary import CHART_NAMES, METRICS, MODEL_NAMES

ProductKind = Literal["table", "json", "file"]

GENERATE = "01_generate"
LOAD = "02_load"
ETL = "03_etl"
TRAIN = "04_train"
FORECAST = "05_forecast"
RISK_STAGE = "06_risk"
CLUSTER = "07_cluster"
REPORT = "08_report"
VISUALIZE = "09_visualize"
RUNNER = "run_all"  # the runner itself: index.html reads the headline


@dataclass(frozen=True)
class Product:
    """One artifact: its key (a ``{name}`` template for a family), writer, readers, schema."""

    key: str
    writer: str
    readers: tuple[str, ...]
    description: str
    kind: ProductKind
    table: TableSchema | None = None
    document: type[BaseModel] | None = None
    names: tuple[str, ...] = field(default=())  # the members of a ``{name}`` family

    def key_for(self, name: str = "") -> str:
        """The key of this product, or of member ``name`` of a family such as fitted models."""
        if "{name}" not in self.key:
            return self.key
        if name not in self.names:
            raise StageCheckError(
                f"{self.key}: no member {name!r}; the catalog knows {', '.join(self.names)}"
            )
        return self.key.format(name=name)

    @property
    def folder(self) -> str:
        """The folder the product (or family) lives in, as a key prefix: ``reports/plots/``."""
        return self.key.rsplit("/", 1)[0] + "/" if "/" in self.key else ""

    def where(self) -> str:
        return f"{self.key} (written by {self.writer})"


def _utilisation(name: str, nullable: bool = False) -> Column:
    return Column(name, "float", nullable=nullable, min=0.0, max=100.0)


_SERIES_COLUMNS = (Column("server_id", "string"), Column("metric", "string"))
_SERVER_ATTRIBUTES = tuple(Column(name, "string") for name in SERVER_TEXT_COLUMNS)
_DAILY_METRICS = TableSchema(
    (
        Column("date", "datetime"),
        Column("server_id", "string"),
        *(_utilisation(metric, nullable=True) for metric in METRICS),
    )
)
assert _DAILY_METRICS.names == list(METRIC_COLUMNS)
_SERVERS = TableSchema(
    (
        Column("server_id", "string"),
        *_SERVER_ATTRIBUTES,
        # Sizes are whole numbers when generated; a user's may be fractional (0.5 vCPU).
        *(Column(name, "float", min=0.0) for name in SERVER_CAPACITY_COLUMNS),
        *(Column(name, "float", min=0.0) for name in SERVER_COST_COLUMNS),
    ),
    open=True,  # a user's inventory may carry more columns (hostname, os, ...): kept as they are
)
assert _SERVERS.names == list(SERVER_REQUIRED_COLUMNS)
_BACKTEST = (
    Column("model", "string"),
    Column("origin", "datetime"),
    *_SERIES_COLUMNS,
    Column("date", "datetime"),
    _utilisation("yhat"),
    _utilisation("actual"),
    Column("scale", "float", min=0.0),
    Column("horizon", "int", min=1),
)

RAW_METRICS = Product(
    "raw/metrics.parquet",
    GENERATE,
    (LOAD,),
    "the synthetic fleet's daily P95 utilisation (data.source: synthetic)",
    "table",
    _DAILY_METRICS,
)
RAW_SERVERS = Product(
    "raw/servers.parquet",
    GENERATE,
    (LOAD,),
    "the synthetic fleet's inventory (data.source: synthetic)",
    "table",
    _SERVERS,
)
METRICS_TABLE = Product(
    "validated/metrics.parquet",
    LOAD,
    (ETL,),
    "daily P95 utilisation per server, validated against the data contract",
    "table",
    _DAILY_METRICS,
)
SERVERS = Product(
    "validated/servers.parquet",
    LOAD,
    (ETL, TRAIN, RISK_STAGE, CLUSTER, REPORT),
    "the validated server inventory",
    "table",
    _SERVERS,
)
QUALITY = Product(
    "validated/quality.json",
    LOAD,
    (REPORT,),
    "what validation kept: rows, window, missing shares, warnings",
    "json",
    document=documents.Quality,
)
FEATURES = Product(
    "processed/features.parquet",
    ETL,
    (TRAIN, FORECAST, RISK_STAGE, CLUSTER, REPORT, VISUALIZE),
    "cleaned daily series (one row per server, metric and day) with calendar and lag features",
    "table",
    TableSchema(
        (
            *_SERIES_COLUMNS,
            Column("date", "datetime"),
            _utilisation("value"),
            _utilisation("value_raw", nullable=True),
            Column("is_outlier", "bool"),
            Column("is_imputed", "bool"),
            Column("day_of_week", "int", min=0, max=6),
            Column("month", "int", min=1, max=12),
            Column("quarter", "int", min=1, max=4),
            Column("day_of_year", "int", min=1, max=366),
            Column("day_of_month", "int", min=1, max=31),
            Column("is_weekend", "bool"),
            Column("business_days_to_month_end", "int", min=0),
            # Names of the params' calendar windows the day falls in, ", "-joined; "" for none.
            Column("calendar_windows", "string"),
            Column("is_holiday", "bool"),
            # Empty where the window reaches back past the series' first day or into a gap.
            *(_utilisation(f"lag_{lag}", nullable=True) for lag in (1, 7, 14, 28)),
            *(
                Column(f"roll_{stat}_{days}", "float", nullable=True, min=0.0)
                for days in (7, 28)
                for stat in ("mean", "std", "max")
            ),
        )
    ),
)
CALENDAR_EFFECTS = Product(
    "processed/calendar_effects.parquet",
    ETL,
    (REPORT,),
    "per series and calendar window: the raw values' uplift over the month's other business "
    "days, how often it was seen and whether it is a clear recurring uplift",
    "table",
    TableSchema(
        (
            *_SERIES_COLUMNS,
            Column("window", "string"),
            # Median over occurrences; empty (as share_up) where the window was never seen.
            Column("uplift_pts", "float", nullable=True, min=-100.0, max=100.0),
            Column("occurrences", "int", min=0),
            Column("share_up", "float", nullable=True, min=0.0, max=1.0),
            Column("clear", "bool"),
        )
    ),
)
CLEANING_SUMMARY = Product(
    "processed/summary.json",
    ETL,
    (REPORT,),
    "cleaning counts: rows in and out, outliers replaced, days imputed",
    "json",
    document=documents.CleaningSummary,
)
BACKTEST_REPORT = Product(
    "models/metrics.json",
    TRAIN,
    (FORECAST, RISK_STAGE, REPORT, VISUALIZE),
    "backtest accuracy by model and metric, the champions and the horizon validated",
    "json",
    document=documents.BacktestReport,
)
SERIES_SCORES = Product(
    "models/series_scores.parquet",
    TRAIN,
    (RISK_STAGE,),
    "backtest errors per model and series (MAE, RMSE, MAPE, sMAPE, MASE, coverage)",
    "table",
    TableSchema(
        (
            Column("model", "string"),
            *_SERIES_COLUMNS,
            Column("n", "int", min=1),
            *(Column(name, "float", min=0.0) for name in ("mae", "rmse", "smape", "mase")),
            # Undefined where every actual is under scoring.MAPE_FLOOR (an idle VM at 0 %).
            Column("mape", "float", nullable=True, min=0.0),
            Column("coverage", "float", min=0.0, max=1.0),
            Column("interval_width", "float", min=0.0),
        )
    ),
)
BACKTEST = Product(
    "models/backtest.parquet",
    TRAIN,
    (),
    "every backtest forecast next to its actual, by origin",
    "table",
    TableSchema(_BACKTEST),
)
SEASON_BACKTEST = Product(
    "models/season_backtest.parquet",
    TRAIN,
    (),
    "forecasts from a year before each origin, which calibrate seasonal models' intervals",
    "table",
    TableSchema((*_BACKTEST, Column("for_origin", "datetime"))),
)
CHAMPIONS = Product(
    "models/champions.parquet",
    TRAIN,
    (FORECAST, RISK_STAGE),
    "each series' champion model and why",
    "table",
    TableSchema(
        (
            *_SERIES_COLUMNS,
            Column("champion", "string"),
            Column("reason", "string"),
            Column("champion_mase", "float", nullable=True, min=0.0),
            Column("baseline_mase", "float", nullable=True, min=0.0),
        )
    ),
)
INTERVALS = Product(
    "models/intervals.parquet",
    TRAIN,
    (FORECAST,),
    "conformal interval offsets by model, metric and horizon bucket",
    "table",
    TableSchema(
        (
            Column("model", "string"),
            Column("metric", "string"),
            Column("bucket", "int", min=0),
            Column("q_lower", "float", max=0.0),
            Column("q_upper", "float", min=0.0),
            Column("n", "int", min=0),
            Column("horizon_mean", "float", min=1.0),  # how fast the width grows with days
        )
    ),
)
FITTED_MODEL = Product(
    "models/{name}.model",
    TRAIN,
    (FORECAST,),
    "a fitted model, refitted on the whole history (one file per enabled model)",
    "file",
    names=MODEL_NAMES,
)
FORECASTS = Product(
    "forecasts/forecasts.parquet",
    FORECAST,
    (RISK_STAGE, CLUSTER, REPORT, VISUALIZE),
    "every model's daily forecast with calibrated intervals; the champion's rows flagged",
    "table",
    TableSchema(
        (
            *_SERIES_COLUMNS,
            Column("date", "datetime"),
            Column("horizon", "int", min=1),
            Column("model", "string"),
            _utilisation("yhat"),
            _utilisation("yhat_lower"),
            _utilisation("yhat_upper"),
            Column("is_champion", "bool"),
            # Past the days the backtest scored (a short history): interval extrapolated.
            Column("beyond_backtest", "bool"),
        )
    ),
)
FORECAST_SUMMARY = Product(
    "forecasts/summary.json",
    FORECAST,
    (REPORT,),
    "what the forecast covers: series, models, dates and horizon",
    "json",
    document=documents.ForecastSummary,
)
RISK = Product(
    "risk/risk.parquet",
    RISK_STAGE,
    (CLUSTER, REPORT, VISUALIZE),
    "per series: threshold, current P95, forecast peak, breach dates and probability, level",
    "table",
    TableSchema(
        (
            Column("urgency_rank", "int", min=1),
            *_SERIES_COLUMNS,
            Column("model", "string"),
            Column("threshold", "float", min=0.0, max=100.0),
            _utilisation("current_p95"),
            Column("over_now", "bool"),  # current_p95 at or over the threshold
            _utilisation("forecast_peak"),
            Column("peak_date", "datetime"),
            Column("headroom_pts", "float", min=-100.0, max=100.0),
            Column("days_to_breach", "float", nullable=True, min=0.0),
            Column("breach_date", "datetime", nullable=True),
            Column("days_to_breach_upper", "float", nullable=True, min=0.0),
            Column("breach_date_upper", "datetime", nullable=True),
            Column("breach_probability", "float", min=0.0, max=1.0),
            Column("breach_probability_soon", "float", min=0.0, max=1.0),
            # Business-calendar windows of the first breach day ("month_end"; "" none), and
            # whether the series crosses its threshold on window days only.
            Column("breach_window", "string"),
            Column("breach_window_only", "bool"),
            Column("seasonal_peak", "bool"),
            Column("risk_level", "string"),
            Column("risk_reason", "string"),
            Column("trust_grade", "string"),  # A-D, risk.trust
            Column("trust_note", "string"),
            *_SERVER_ATTRIBUTES,
        )
    ),
)
RISK_SUMMARY = Product(
    "risk/summary.json",
    RISK_STAGE,
    (REPORT,),
    "risk levels, roll-ups by business unit and region, the earliest breaches, thresholds",
    "json",
    document=documents.RiskSummary,
)
CLUSTERS = Product(
    "clusters/clusters.parquet",
    CLUSTER,
    (REPORT, VISUALIZE),
    "per server: utilisation profile, cluster, right-sizing finding, consolidation placement",
    "table",
    TableSchema(
        (
            Column("server_id", "string"),
            Column("cluster", "int", min=0),
            Column("cluster_label", "string"),
            *(_utilisation(metric) for metric in METRICS),
            *(_utilisation(f"{metric[:-4]}_mean") for metric in METRICS),
            Column("cpu_volatility", "float", min=0.0),
            *(Column(f"{metric[:-4]}_growth", "float") for metric in METRICS),
            Column("pc1", "float"),
            Column("pc2", "float"),
            *(Column(name, "string") for name in ("environment", "criticality")),
            *(Column(name, "string") for name in ("business_unit", "region")),
            # Capacity as the inventory or export gives it: a VM may have 2.998 GB of memory.
            Column("cpu_cores", "float", min=0.0),
            Column("memory_gb", "float", min=0.0),
            Column("monthly_cost_usd", "float", min=0.0),
        ),
        open=True,  # right-sizing and placement columns follow the profile
    ),
)
RECOMMENDATIONS = Product(
    "clusters/recommendations.json",
    CLUSTER,
    (REPORT, VISUALIZE),
    "clusters, right-sizing findings, consolidation and their monthly savings",
    "json",
    document=documents.Recommendations,
)
HEADLINE = Product(
    "reports/summary.json",
    REPORT,
    (RUNNER,),
    "the headline figures for machines (the shape is core.documents.Headline)",
    "json",
    document=documents.Headline,
)
PDF_REPORT = Product("reports/summary.pdf", REPORT, (), "the summary report for people", "file")
WORKBOOK = Product(
    "reports/details.xlsx", REPORT, (), "the details workbook, one sheet per table", "file"
)
PLOT_PAGE = Product(
    "reports/plots/{name}.html",
    VISUALIZE,
    (),
    "interactive charts, one page each",
    "file",
    names=CHART_NAMES,
)
PLOT_IMAGE = Product(
    "reports/plots/{name}.png",
    VISUALIZE,
    (),
    "the same charts as images",
    "file",
    names=PLOT_PAGE.names,
)
PLOTLY_JS = Product(
    "reports/plots/plotly.min.js", VISUALIZE, (), "the one plotly.js the pages load", "file"
)

RUN_PARAMS = Product(
    "params.yaml", RUNNER, (), "the params this run used, after --set overrides", "file"
)
MANIFEST = Product(
    "manifest.json",
    RUNNER,
    (),
    'each stage\'s status, seconds and notebook; "running" while a run goes on, its final status last',
    "file",
)
INDEX = Product(
    "index.html", RUNNER, (), "the run's front page: headline figures and links", "file"
)

PRODUCTS: tuple[Product, ...] = tuple(
    value for value in list(globals().values()) if isinstance(value, Product)
)
STAGES = (GENERATE, LOAD, ETL, TRAIN, FORECAST, RISK_STAGE, CLUSTER, REPORT, VISUALIZE, RUNNER)


def stage_products(stage: str) -> tuple[list[Product], list[Product]]:
    """What ``stage`` reads and what it writes, in catalog order."""
    reads = [p for p in PRODUCTS if stage in p.readers]
    writes = [p for p in PRODUCTS if p.writer == stage]
    return reads, writes


def _require(product: Product, stage: str, role: Literal["reads", "writes"]) -> None:
    allowed = product.readers if role == "reads" else (product.writer,)
    if stage not in allowed:
        declared = ", ".join(allowed) or "no stage"
        raise StageCheckError(
            f"{stage} {role} {product.key}, but the catalog lists {declared}: declare it in "
            "capacity_forecaster.core.catalog first"
        )


def check_table(
    product: Product, frame: pd.DataFrame, columns: Sequence[str] | None = None
) -> None:
    """Raise one line naming the product and what is wrong when ``frame`` breaks its schema."""
    assert product.table is not None, product.key
    product.table.check(frame, product.where(), columns)


def check_document(product: Product, document: dict[str, Any]) -> None:
    """Raise one line naming the product, the key and what is wrong for a bad JSON document."""
    assert product.document is not None, product.key
    try:
        product.document.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise StageCheckError(f"{product.where()}: {location}: {first['msg']}{more}") from None


def write(storage: RunStorage, stage: str, product: Product, value: Any, name: str = "") -> str:
    """Check ``value`` against the product's schema, then write it; returns where it landed."""
    _require(product, stage, "writes")
    key = product.key_for(name)
    if product.kind == "table":
        assert product.table is not None, product.key
        frame = product.table.typed_if_empty(value)
        check_table(product, frame)
        return storage.write_parquet(key, frame)
    if product.kind == "json":
        check_document(product, value)
        return storage.write_json(key, value)
    data = value.encode("utf-8") if isinstance(value, str) else value
    return storage.write_bytes(key, data)


def read(
    storage: RunStorage,
    stage: str,
    product: Product,
    columns: Sequence[str] | None = None,
    name: str = "",
) -> Any:
    """Read a product and check it against its schema (only ``columns`` when given)."""
    _require(product, stage, "reads")
    key = product.key_for(name)
    if product.kind == "table":
        frame = storage.read_parquet(key)
        check_table(product, frame, columns)
        return frame[list(columns)] if columns is not None else frame
    if product.kind == "json":
        document = storage.read_json(key)
        check_document(product, document)
        return document
    return storage.read_bytes(key)


def read_inputs(storage: RunStorage, stage: str, params: Params) -> dict[str, tuple[str, bytes]]:
    """The fleet's inputs as ``{"metrics": (source, bytes), "servers": (source, bytes)}``.

    The user's own files when ``data.source`` is 'file' (local path or s3:// URI), else the
    raw products stage 01 wrote (S3 preferred, local fallback). Parsing and validating them
    against the data contract is stage 02's work, with messages that name the user's file.
    """
    data, s3 = params.data, params.storage.s3
    if data.source == "file":
        assert data.metrics_path and data.servers_path  # guaranteed by the schema
        return {
            "metrics": (data.metrics_path, read_source(data.metrics_path, s3)),
            "servers": (data.servers_path, read_source(data.servers_path, s3)),
        }
    inputs = {}
    for name, product in (("metrics", RAW_METRICS), ("servers", RAW_SERVERS)):
        _require(product, stage, "reads")
        inputs[name] = (product.key, storage.read_bytes(product.key))
    return inputs
