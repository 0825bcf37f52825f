"""The weekly seasonal-naive baseline: every day of the horizon repeats the last observed
value of the same weekday. Always trained and reported; every other model is judged against it.
"""

from __future__ import annotations

import io
import logging
from typing import Self

import joblib
import numpy as np
import pandas as pd

from capacity_forecaster.forecasting.models import PREDICTION_COLUMNS

logger = logging.getLogger(__name__)

SEASON_DAYS = 7


class SeasonalNaiveModel:
    """Repeat last week: yhat(date) = the latest observed value on the same weekday."""

    name = "seasonal_naive"

    def __init__(self, lookback_days: int = 28) -> None:
        self.lookback_days = lookback_days
        self.profile_: pd.DataFrame | None = None

    def fit(self, history: pd.DataFrame, servers: pd.DataFrame | None = None) -> Self:
        """Keep, per series and weekday, the latest value within the last ``lookback_days``."""
        frame = history[["server_id", "metric", "date", "value"]].dropna(subset=["value"])
        last = frame.groupby(["server_id", "metric"])["date"].transform("max")
        recent = frame[frame["date"] > last - pd.Timedelta(days=self.lookback_days)]
        recent = recent.assign(weekday=recent["date"].dt.day_of_week).sort_values("date")
        by_weekday = (
            recent.groupby(["server_id", "metric", "weekday"])["value"].last().unstack("weekday")
        )
        by_weekday = by_weekday.reindex(columns=range(SEASON_DAYS))
        # A weekday never seen recently (a gap) repeats the series' last value instead.
        latest = recent.groupby(["server_id", "metric"])["value"].last()
        self.profile_ = by_weekday.apply(lambda column: column.fillna(latest))
        return self

    def predict(self, dates: pd.DatetimeIndex) -> pd.DataFrame:
        if self.profile_ is None:
            raise RuntimeError("SeasonalNaiveModel.predict called before fit")
        dates = pd.DatetimeIndex(dates)
        values = self.profile_.to_numpy()[:, dates.day_of_week]
        keys = self.profile_.index.to_frame(index=False)
        result = keys.loc[keys.index.repeat(len(dates))].reset_index(drop=True)
        result["date"] = np.tile(dates.values, len(keys))
        result["yhat"] = np.clip(values.reshape(-1), 0.0, 100.0)
        return result[PREDICTION_COLUMNS]

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        joblib.dump({"lookback_days": self.lookback_days, "profile": self.profile_}, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        state = joblib.load(io.BytesIO(data))
        model = cls(lookback_days=state["lookback_days"])
        model.profile_ = state["profile"]
        return model
