"""Stage 08: the report tables, and the one accuracy table behind the table and the charts."""

from __future__ import annotations

import pytest

from capacity_forecaster.reporting import chart_data, tables
from capacity_forecaster.reporting.tables import window_text
from capacity_forecaster.reporting.text import breach_when
from tests.reporting.report_fleet import Fleet


def test_at_risk_table_follows_the_urgency_rank(fleet: Fleet) -> None:
    table = tables.at_risk_table(fleet.risk, top_n=10)
    # high first (sooner breach first), then medium (a breach before none), never low
    assert table["Server"].tolist() == ["srv-002", "srv-001", "srv-003", "srv-004"]
    assert table["Rank"].tolist() == [1, 2, 3, 4]
    assert table["Risk level"].tolist() == ["high", "high", "medium", "medium"]
    assert table.loc[0, "Metric"] == "Memory"
    assert tables.at_risk_table(fleet.risk, top_n=1)["Server"].tolist() == ["srv-002"]
    everything = tables.at_risk_table(fleet.risk, include_low=True)
    assert len(everything) == 18
    assert everything["Risk level"].tolist()[-1] == "low"
    # The rank decides, not the table's own idea of urgency (nor the row order).
    swapped = fleet.risk.copy()
    first, second = (
        (swapped["server_id"] == "srv-002") & (swapped["metric"] == "mem_p95"),
        (swapped["server_id"] == "srv-001") & (swapped["metric"] == "mem_p95"),
    )
    swapped.loc[first, "urgency_rank"], swapped.loc[second, "urgency_rank"] = 2, 1
    assert tables.at_risk_table(swapped, top_n=2)["Server"].tolist() == ["srv-001", "srv-002"]


def test_recommendation_table_counts_each_saving_once(fleet: Fleet) -> None:
    table = tables.recommendation_table(fleet.clusters).set_index("Server")
    assert table.loc["srv-001", "Monthly saving (USD)"] == 1000.0  # freed: its whole cost
    assert table.loc["srv-001", "Saving type"] == "consolidation"
    assert table.loc["srv-001", "Move onto"] == "srv-002"
    assert table.loc["srv-002", "Monthly saving (USD)"] == 0.0  # hosts srv-001
    assert table.loc["srv-003", "Monthly saving (USD)"] == 250.0
    total = fleet.recommendations["total_savings_usd"]
    assert table["Monthly saving (USD)"].sum() == pytest.approx(total)


def test_cluster_table_counts_findings(fleet: Fleet) -> None:
    table = tables.cluster_table(fleet.recommendations, fleet.clusters).set_index("Cluster")
    assert table.loc[0, "Idle"] == 1 and table.loc[0, "Freed"] == 1
    assert table.loc[1, "Over-provisioned"] == 1


def test_forecast_table_keeps_champions_only(fleet: Fleet) -> None:
    table = tables.forecast_table(fleet.forecasts)
    assert len(table) == int(fleet.forecasts["is_champion"].sum())
    assert list(table.columns) == [
        "Server",
        "Metric",
        "Date",
        "Model",
        "Forecast %",
        "Lower %",
        "Upper %",
    ]
    assert set(table["Model"]) == {"Gradient boosting"}


def test_accuracy_table_and_chart_table_share_one_source(fleet: Fleet) -> None:
    frame = tables.accuracy_frame(fleet.metrics, by_metric=True)
    table = tables.accuracy_table(fleet.metrics, by_metric=True)
    chart = chart_data.accuracy_chart_table(fleet.metrics)
    assert len(frame) == len(table) == len(chart) == 12  # 3 models x (3 metrics + all)
    assert table["Model"].tolist()[:3] == [
        "Champion (per metric)",
        "Gradient boosting",
        "Seasonal naive (baseline)",
    ]
    assert table["Metric"].tolist()[0] == "All metrics"
    # the chart shows the same rows, by model then metric, "All metrics" last
    assert chart["model"].tolist()[:4] == ["champion"] * 4
    assert chart["metric"].tolist()[:4] == ["cpu_p95", "disk_p95", "mem_p95", "All metrics"]
    merged = chart.merge(frame, on=["model", "metric"], suffixes=("", "_frame"))
    assert len(merged) == len(chart)
    assert (merged["mase"] == merged["mase_frame"]).all()
    assert list(tables.accuracy_table(fleet.metrics).columns[:2]) == ["Model", "Series"]


def test_every_high_or_medium_series_gets_its_sized_action(fleet: Fleet) -> None:
    table = tables.at_risk_table(fleet.risk, include_low=True, clusters=fleet.clusters)
    at_risk = table["Risk level"].isin(["high", "medium"])
    assert (table.loc[at_risk, "Action"] != "").all()
    assert (table.loc[~at_risk, "Action"] == "").all()
    row = table[(table["Server"] == "srv-004") & (table["Metric"] == "Memory")].iloc[0]
    assert row["Action"] == "64 -> 96 GB memory: forecast peak 60 %, +$250/month"


def test_a_sized_action_names_the_servers_other_resize_behind_its_cost(fleet: Fleet) -> None:
    clusters = fleet.clusters.copy()
    row = clusters["server_id"] == "srv-004"
    clusters.loc[row, ["recommended_cores", "monthly_cost_change_usd"]] = [4, -300.0]
    table = tables.at_risk_table(fleet.risk, include_low=True, clusters=clusters)
    action = table[(table["Server"] == "srv-004") & (table["Metric"] == "Memory")]["Action"]
    assert action.iloc[0] == "64 -> 96 GB memory: forecast peak 60 %; 16 -> 4 cores, -$300/month"


def test_a_breach_in_a_calendar_window_is_named_for_a_reader() -> None:
    assert window_text("month_end", True) == "month end only"
    assert window_text("month_end, quarter_end", False) == "month end, quarter end"
    assert window_text("", False) == ""
    row = {"breach_date": "2026-07-30", "breach_window": "month_end", "over_now": False}
    assert breach_when(row) == "2026-07-30 (month end)"
    assert breach_when({**row, "breach_window": ""}) == "2026-07-30"
