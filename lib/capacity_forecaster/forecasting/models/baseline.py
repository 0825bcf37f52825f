"""The weekly seasonal-naive baseline: every day of the horizon repeats the last observed
value of the same weekday. Always trained and reported; every other model is judged against it.
"""

from __future__ import annotations

import logging
from typing import Any, Self

import pandas as pd

from capacity_forecaster.core.vocabulary import BASELINE_MODEL, SERIES_KEY
from capacity_forecaster.forecasting.models.base import ForecastModel, grid_predictions

logger = logging.getLogger(__name__)

SEASON_DAYS = 7


class SeasonalNaiveModel(ForecastModel):
    """Repeat last week: yhat(date) = the latest observed value on the same weekday."""

    name = BASELINE_MODEL

    def __init__(self, lookback_days: int = 28) -> None:
        super().__init__()
        self.lookback_days = lookback_days
        self.profile_: pd.DataFrame | None = None

    def _fit(self, history: pd.DataFrame, servers: pd.DataFrame, horizon_days: int) -> None:
        """Keep, per series and weekday, the latest value within the last ``lookback_days``
        (the same whatever the horizon)."""
        frame = history[[*SERIES_KEY, "date", "value"]].dropna(subset=["value"])
        last = frame.groupby(list(SERIES_KEY))["date"].transform("max")
        recent = frame[frame["date"] > last - pd.Timedelta(days=self.lookback_days)]
        recent = recent.assign(weekday=recent["date"].dt.day_of_week).sort_values("date")
        by_weekday = recent.groupby([*SERIES_KEY, "weekday"])["value"].last().unstack("weekday")
        by_weekday = by_weekday.reindex(columns=range(SEASON_DAYS))
        # A weekday never seen recently (a gap) repeats the series' last value instead.
        latest = recent.groupby(list(SERIES_KEY))["value"].last()
        self.profile_ = by_weekday.apply(lambda column: column.fillna(latest))

    def predict(self, dates: pd.DatetimeIndex) -> pd.DataFrame:
        if self.profile_ is None:
            raise RuntimeError("SeasonalNaiveModel.predict called before fit")
        dates = pd.DatetimeIndex(dates)
        values = self.profile_.to_numpy()[:, dates.day_of_week]
        return grid_predictions(self.profile_.index, dates, values)

    def to_state(self) -> dict[str, Any]:
        return {"lookback_days": self.lookback_days, "profile": self.profile_}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        model = cls(lookback_days=state["lookback_days"])
        model.profile_ = state["profile"]
        return model
