"""Figures: static matplotlib charts the notebooks and reports share."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure


def forecast_panels(
    history: pd.DataFrame, forecasts: pd.DataFrame, rows: pd.DataFrame, history_days: int = 180
) -> Figure:
    """One panel per row of ``rows`` (server_id, metric, threshold, and optionally rank and
    risk_level): recent history, the champion forecast with its interval, the threshold."""
    count = max(len(rows), 1)
    fig, axes = plt.subplots(count, 1, figsize=(11, 2.6 * count), squeeze=False)
    if rows.empty:
        axes[0, 0].text(0.5, 0.5, "no server at risk", ha="center", va="center")
        axes[0, 0].set_axis_off()
        return fig
    champion = forecasts[forecasts["is_champion"]]
    for ax, row in zip(axes[:, 0], rows.to_dict("records"), strict=True):
        past = history[
            (history["server_id"] == row["server_id"]) & (history["metric"] == row["metric"])
        ].tail(history_days)
        ahead = champion[
            (champion["server_id"] == row["server_id"]) & (champion["metric"] == row["metric"])
        ]
        ax.plot(past["date"], past["value"], color="0.3", label="history")
        model = ahead["model"].iloc[0] if len(ahead) else "none"
        ax.plot(ahead["date"], ahead["yhat"], label=f"forecast ({model})")
        ax.fill_between(
            ahead["date"], ahead["yhat_lower"], ahead["yhat_upper"], alpha=0.25, label="interval"
        )
        ax.axhline(
            row["threshold"],
            color="red",
            linestyle="--",
            label=f"threshold {row['threshold']:.0f}%",
        )
        prefix = f"#{row['rank']} " if "rank" in row else ""
        suffix = f": {row['risk_level']}" if "risk_level" in row else ""
        ax.set_title(f"{prefix}{row['server_id']} {row['metric']}{suffix}")
        ax.set_ylabel("%")
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig
