"""Small constructed forecasts, histories and inventories for the stage 06 tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

LAST_DAY = pd.Timestamp("2026-06-30")  # the history's last day; horizon 1 is 2026-07-01
HORIZON = 120
INTERVAL = 0.8  # the forecasts' interval level


def champion_series(
    server_id: str, metric: str, yhat: np.ndarray, half_width: float = 5.0
) -> pd.DataFrame:
    """Champion rows of one series plus a non-champion model that always breaches."""
    horizon = np.arange(1, len(yhat) + 1)
    champion = pd.DataFrame(
        {
            "server_id": server_id,
            "metric": metric,
            "date": LAST_DAY + pd.to_timedelta(horizon, unit="D"),
            "horizon": horizon,
            "model": "seasonal_naive",
            "yhat": yhat,
            "yhat_lower": np.clip(yhat - half_width, 0, 100),
            "yhat_upper": np.clip(yhat + half_width, 0, 100),
            "is_champion": True,
        }
    )
    other = champion.assign(model="random_forest", yhat=99.0, yhat_upper=100.0, is_champion=False)
    return pd.concat([champion, other], ignore_index=True)


def flat_history(
    series: list[tuple[str, str]], value: float = 40.0, days: int = 400
) -> pd.DataFrame:
    dates = pd.date_range(end=LAST_DAY, periods=days, freq="D")
    return pd.concat(
        [
            pd.DataFrame({"server_id": s, "metric": m, "date": dates, "value": value})
            for s, m in series
        ],
        ignore_index=True,
    )


def inventory(criticality: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "server_id": list(criticality),
            "business_unit": ["retail" if i % 2 else "payments" for i in range(len(criticality))],
            "region": "eu-west-1",
            "environment": "prod",
            "criticality": list(criticality.values()),
            "cpu_cores": 8,
        }
    )


def row_of(risk: pd.DataFrame, server_id: str, metric: str = "cpu_p95") -> pd.Series:
    rows = risk[(risk["server_id"] == server_id) & (risk["metric"] == metric)]
    assert len(rows) == 1
    return rows.iloc[0]


def risk_rows(rows: list[tuple]) -> pd.DataFrame:
    columns = ["server_id", "days_to_breach", "breach_probability", "criticality", "risk_level"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["metric"] = "cpu_p95"
    frame["days_to_breach_upper"] = frame["days_to_breach"] - 5
    frame["business_unit"] = "bu"
    frame["region"] = "eu-west-1"
    frame["environment"] = "prod"
    return frame
