"""Which models exist, by their params name, and how to make a fresh one.

The classes are imported on first use: Prophet alone takes a second to import, and a run
without it enabled never needs it.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from capacity_forecaster.core.params import Params
from capacity_forecaster.core.params_calendar import CalendarParams
from capacity_forecaster.core.vocabulary import BASELINE_MODEL, MODEL_NAMES

if TYPE_CHECKING:
    from capacity_forecaster.forecasting.models.base import ForecastModel

# Params name -> (module of this package, class).
_CLASSES: dict[str, tuple[str, str]] = {
    BASELINE_MODEL: ("baseline", "SeasonalNaiveModel"),
    "robust_trend": ("trend", "RobustTrendModel"),
    "prophet": ("prophet", "ProphetModel"),
    "random_forest": ("trees", "RandomForestModel"),
    "gradient_boosting": ("trees", "GradientBoostingModel"),
    "recent_level": ("level", "RecentLevelModel"),
}

# Models that do not fit the yearly cycle, so that how wrong they are depends on the season: their
# intervals are calibrated on the same season a year earlier (``backtest.run_season_backtest``).
# Prophet fits the year itself. The tree models follow it only in part, through last year's
# values: calibrated on the backtest origins, their 80 % intervals covered 0.731-0.805
# (gradient boosting) and 0.715-0.810 (random forest) over four quarterly holdouts; calibrated
# on the season, 0.771-0.794 and 0.756-0.777 (benchmarks/forecast_accuracy.py --end-date
# 2025-09-30,2025-12-31,2026-03-31,2026-06-30), for four more fits of each.
SEASON_CALIBRATED = frozenset(
    {BASELINE_MODEL, "robust_trend", "recent_level", "random_forest", "gradient_boosting"}
)


def model_class(name: str) -> type[ForecastModel]:
    """The class of the model called ``name`` in params."""
    try:
        module, class_name = _CLASSES[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r} (known: {', '.join(MODEL_NAMES)})") from None
    cls: type[ForecastModel] = getattr(
        importlib.import_module(f"{__package__}.{module}"), class_name
    )
    return cls


def make_model(name: str, *, calendar: CalendarParams, n_jobs: int, seed: int) -> ForecastModel:
    """A fresh, unfitted model by its params name (the horizon is given to ``fit``)."""
    return model_class(name).from_settings(calendar=calendar, n_jobs=n_jobs, seed=seed)


def model_factories(params: Params) -> dict[str, Callable[[], ForecastModel]]:
    """For each enabled model, a callable making a fresh unfitted one (the backtest refits per origin)."""
    return {
        name: functools.partial(
            make_model,
            name,
            calendar=params.calendar,
            n_jobs=params.compute.n_jobs,
            seed=params.run.seed,
        )
        for name in params.models.enabled
    }
