"""The JSON products' shapes, as pydantic models: checked when written and when read.

reports/summary.json (``Headline``) is the contract other tools read; its fields are
documented here, once. The stage summaries are typed at the level their readers rely on.
Every number is a plain JSON number or null (never NaN); dates are ISO ``YYYY-MM-DD``;
shares and probabilities are fractions in [0, 1].
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Share = Annotated[float, Field(ge=0.0, le=1.0)]
Count = Annotated[int, Field(ge=0)]
IsoDate = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]
LevelCounts = dict[str, Count]  # {high, medium, low}: how many at each risk level


class _Document(BaseModel):
    """A JSON product: unknown keys are an error, so writer and readers cannot drift."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _Summary(BaseModel):
    """A stage summary: the keys its readers use are typed; more keys may follow."""

    model_config = ConfigDict(extra="allow", frozen=True)


# validated/quality.json (02_load)


class MetricQuality(_Document):
    monitored: bool  # False: no server reports it; every stage leaves it out
    missing_share: Share
    min: float | None
    max: float | None
    mean: float | None
    servers_not_reporting: list[str]  # servers without one value of a metric others report
    clipped_over_100: Count  # values above 100 % read as 100 (data.over_100: clip)


class Quality(_Summary):
    """What validation kept: rows, servers, the date window, per-metric quality, warnings."""

    rows: Count
    servers: Count
    date_start: IsoDate
    date_end: IsoDate
    days: Count
    metrics: dict[str, MetricQuality]
    metrics_monitored: list[str]
    missing_server_days_share: Share | None
    clipped_over_100: dict[str, dict[str, Count]]  # server -> metric -> values clipped
    all_zero_days: dict[str, Count]  # server -> days left out as all-zero (powered off)
    # Servers set aside, not forecast: {server_id, reason ("powered off" or "stale"),
    # last_seen (ISO date or null), all_zero_days, business_unit, region, monthly_cost_usd}.
    reclamation: list[dict[str, Any]]
    # Where the data came from: source, format, files or calls, and the export reader's counts
    # (duplicates, partial days, repeated timestamps, capacity changes, ...).
    source: dict[str, Any]
    warnings: list[str]


# processed/summary.json (03_etl)


class CleaningSummary(_Summary):
    """Cleaning counts over the whole fleet and by metric."""

    rows_in: Count
    rows_out: Count
    outliers: Count
    imputed: Count
    servers: Count
    series: Count
    date_min: IsoDate
    date_max: IsoDate
    feature_columns: list[str]
    by_metric: dict[str, dict[str, Count]]


# models/metrics.json (04_train)


class ModelAccuracy(_Summary):
    model: str
    series: Count
    mase: float | None
    coverage: Share | None


class BacktestPlanReport(_Summary):
    """Where the backtest's origins fell and how far it scored: the params, or what a short
    history could hold (``adjustments`` says what was changed)."""

    origins: list[IsoDate]
    scored_horizon_days: Annotated[int, Field(ge=1)]
    step_days: Annotated[int, Field(ge=1)]
    forecast_horizon_days: Annotated[int, Field(ge=1)]
    adjustments: list[str]


class BacktestReport(_Summary):
    """The backtest's accuracy by model, the champions and the horizon it validated."""

    interval_level: Annotated[float, Field(gt=0.0, lt=1.0)]
    horizon_days: Annotated[int, Field(ge=1)]
    origins: list[IsoDate]
    series: Count
    models: list[ModelAccuracy]
    models_by_metric: list[ModelAccuracy]
    interval_calibration: dict[str, str]
    champions: dict[str, Count]
    backtest: BacktestPlanReport


# forecasts/summary.json (05_forecast)


class ForecastSummary(_Summary):
    """What the forecast covers: rows, series, models and the dates ahead."""

    rows: Count
    series: Count
    models: list[str]
    first_date: IsoDate
    last_date: IsoDate
    horizon_days: Annotated[int, Field(ge=1)]


# risk/summary.json (06_risk)


class RiskLevels(_Document):
    series: LevelCounts
    servers: LevelCounts


class EarliestBreach(_Document):
    server_id: str
    metric: str
    breach_date: IsoDate | None = Field(
        description="the forecast's first day at or over the threshold; over now: the last day"
    )
    days_to_breach: float | None = Field(description="0 when over the threshold now")
    breach_window: str = Field(
        description="business-calendar windows the breach day falls in ('month_end'), or ''"
    )
    over_now: bool = Field(description="the recent P95 is at or over the threshold already")
    current_p95: float | None = Field(description="P95 of the last weeks of history, %")
    threshold: float | None = Field(description="the series' threshold, %")
    breach_probability: Share | None
    criticality: str | None
    business_unit: str | None
    trust_grade: str | None = Field(description="A-D: how far the date can be trusted")


class RiskSummary(_Summary):
    """Risk levels, per-metric counts, the earliest breaches, thresholds and roll-ups."""

    series: Count
    servers: Count
    levels: RiskLevels
    by_metric: dict[str, dict[str, float | None]]
    window_breaches: dict[str, dict[str, Count]] = Field(
        description="per calendar window: series whose first breach falls in it (breaches), "
        "and those crossing on its days only (window_only)"
    )
    series_over_now: Count = Field(
        description="series whose recent P95 is at or over the threshold"
    )
    earliest_breaches: list[EarliestBreach] = Field(
        description="at most 10 series: over the threshold now first, then the soonest breach"
    )
    thresholds: dict[str, Any]
    rules: list[str]
    rollups: dict[str, list[dict[str, Any]]]
    top: list[dict[str, Any]]


# clusters/recommendations.json (07_cluster)


class Recommendations(_Summary):
    """Clusters, right-sizing findings and consolidation, with their savings (monthly USD)."""

    k: Annotated[int, Field(ge=1)]
    k_note: str
    silhouette: float | None
    clusters: list[dict[str, Any]]
    findings: dict[str, Count]
    servers: Count
    servers_freed: Count
    consolidation_savings_usd: float
    right_sizing_savings_usd: float
    total_savings_usd: float
    savings_note: str
    consolidation: dict[str, Any]
    top_right_sizing_actions: list[dict[str, Any]]
    upsize_cost_usd: float = Field(
        description="monthly cost of upsizing the servers with a CPU or memory series at risk"
    )
    top_upsize_actions: list[dict[str, Any]]


# reports/summary.json (08_report): the headline figures other tools read


class HeadlineFleet(_Document):
    servers: Count = Field(description="servers in the validated inventory")
    series: Count = Field(description="server x metric series assessed for risk")
    date_start: IsoDate = Field(description="first day of the validated history")
    date_end: IsoDate = Field(description="last day of the validated history")
    days: Count = Field(description="days from date_start to date_end inclusive")
    metrics_monitored: list[str] = Field(
        description="metrics with data; the others are not monitored and were left out"
    )
    business_units: Count = Field(description="distinct business units in the inventory")
    regions: Count = Field(description="distinct regions in the inventory")


class HeadlineForecast(_Document):
    horizon_days: Annotated[int, Field(ge=1)] = Field(
        description="days ahead forecast, the horizon the models were backtested for"
    )
    scored_horizon_days: Annotated[int, Field(ge=1)] = Field(
        description=(
            "days ahead the backtest scored (below horizon_days on a short history: the "
            "intervals past it are extrapolated and flagged beyond_backtest)"
        )
    )
    first_date: IsoDate = Field(description="first forecast day")
    last_date: IsoDate = Field(description="last forecast day")


class Rollup(_Summary):
    """One business unit's or region's servers at risk (the group's name is the first key)."""

    servers: Count
    servers_at_risk: Count
    share_at_risk: Share | None
    high: Count
    medium: Count


class HeadlineRisk(_Document):
    servers_by_level: LevelCounts = Field(description="servers by their worst level")
    series_by_level: LevelCounts = Field(description="series (server x metric) by level")
    servers_assessed: Count = Field(description="servers with at least one assessed series")
    servers_at_risk: Count = Field(description="servers whose worst level is high or medium")
    series_over_now: Count = Field(
        description="series whose recent P95 is at or over the threshold"
    )
    earliest_breaches: list[EarliestBreach] = Field(
        description="at most 10 series: over the threshold now first, then the soonest breach"
    )
    by_business_unit: list[Rollup]
    by_region: list[Rollup]


class ChampionAccuracy(_Document):
    mase: float | None
    mase_median: float | None
    coverage: Share | None
    beats_baseline_share: Share | None


class BaselineAccuracy(_Document):
    model: str
    mase: float | None
    coverage: Share | None


class MetricAccuracy(_Document):
    metric: str
    champion_mase: float | None
    baseline_mase: float | None
    champion_coverage: Share | None
    baseline_coverage: Share | None
    beats_baseline_share: Share | None


class HeadlineAccuracy(_Document):
    champion: ChampionAccuracy
    baseline: BaselineAccuracy = Field(description="the seasonal-naive baseline")
    mase_reduction: float | None = Field(
        description="1 - champion MASE / baseline MASE (> 0: the champion is better)"
    )
    interval_level: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        description="the nominal coverage of the forecast intervals"
    )
    champion_models: dict[str, Count] = Field(description="series each model is champion for")
    interval_calibration: dict[str, str] = Field(
        description="where each model's interval calibration comes from, in words"
    )
    by_metric: list[MetricAccuracy]


class HeadlineSavings(_Document):
    monthly_usd_total: float = Field(description="consolidation_usd + right_sizing_usd")
    consolidation_usd: float = Field(description="monthly cost of servers freed")
    right_sizing_usd: float = Field(
        description="right-sizing of servers neither freed nor hosting freed ones"
    )
    servers_freed: Count
    annual_usd_total: float = Field(description="12 x monthly_usd_total")
    note: str = Field(description="how the savings are counted")


class ReclamationCandidate(_Document):
    server_id: str
    reason: str = Field(
        description="'powered off' (all-zero throughout), 'stale' (stopped reporting) or "
        "values in the wrong units (fractions)"
    )
    last_seen: IsoDate | None = Field(description="last day with a value; null when powered off")
    all_zero_days: Count
    business_unit: str | None
    region: str | None
    monthly_cost_usd: float | None = Field(description="what reclaiming it would save a month")


class HeadlineDataQuality(_Document):
    missing_share: Share | None = Field(description="share of expected server-days with no row")
    missing_share_by_metric: dict[str, Share | None]
    outliers: Count = Field(description="values replaced as outliers in cleaning")
    imputed: Count = Field(description="missing days interpolated in cleaning")
    warnings: list[str] = Field(description="from loading the data")
    reclamation: list[ReclamationCandidate] = Field(
        description="servers set aside in loading, not forecast: powered off or stale (to "
        "reclaim), or reporting in the wrong units"
    )


class Headline(_Document):
    """reports/summary.json: the run's headline figures, read by index.html and other tools."""

    schema_version: int = Field(description="1; bumped when a key changes meaning or goes")
    run_id: str
    generated_at: str = Field(description="ISO 8601 time the report was built")
    fleet: HeadlineFleet
    forecast: HeadlineForecast
    risk: HeadlineRisk
    accuracy: HeadlineAccuracy
    savings: HeadlineSavings
    data_quality: HeadlineDataQuality
