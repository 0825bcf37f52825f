"""Stage 06: thresholds, breach probability, days to breach, flags, ranking, roll-ups, check."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.params import RiskParams
from capacity_forecaster.risk import assess as rk

LAST_DAY = pd.Timestamp("2026-06-30")  # the history's last day; horizon 1 is 2026-07-01
HORIZON = 120
INTERVAL = 0.8


def _series(server_id: str, metric: str, yhat: np.ndarray, half_width: float = 5.0) -> pd.DataFrame:
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


def _history(series: list[tuple[str, str]], value: float = 40.0, days: int = 400) -> pd.DataFrame:
    dates = pd.date_range(end=LAST_DAY, periods=days, freq="D")
    return pd.concat(
        [
            pd.DataFrame({"server_id": s, "metric": m, "date": dates, "value": value})
            for s, m in series
        ],
        ignore_index=True,
    )


def _servers(criticality: dict[str, str]) -> pd.DataFrame:
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


@pytest.fixture
def fleet() -> dict:
    """s1 grows linearly across 80 % cpu; s2 is flat at 30 %; s3 is critical and near its bound."""
    h = np.arange(1, HORIZON + 1, dtype=float)
    forecasts = pd.concat(
        [
            _series("s1", "cpu_p95", 60 + 0.5 * h),  # crosses 80 at h = 40, upper at h = 30
            _series("s2", "cpu_p95", np.full(HORIZON, 30.0)),
            _series("s2", "mem_p95", np.full(HORIZON, 40.0)),
            _series("s3", "cpu_p95", np.full(HORIZON, 66.0)),  # critical: threshold 70
        ],
        ignore_index=True,
    )
    series = [("s1", "cpu_p95"), ("s2", "cpu_p95"), ("s2", "mem_p95"), ("s3", "cpu_p95")]
    params = RiskParams(overrides={"criticality": {"critical": {"cpu_p95": 70}}})
    servers = _servers({"s1": "medium", "s2": "low", "s3": "critical"})
    risk = rk.assess_risk(forecasts, _history(series), servers, params, INTERVAL)
    return {"forecasts": forecasts, "servers": servers, "params": params, "risk": risk}


def _row(risk: pd.DataFrame, server_id: str, metric: str = "cpu_p95") -> pd.Series:
    rows = risk[(risk["server_id"] == server_id) & (risk["metric"] == metric)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_linear_growth_breaches_on_the_crossing_day(fleet: dict) -> None:
    row = _row(fleet["risk"], "s1")
    crossing = (80 - 60) / 0.5  # 60 + 0.5 h = 80
    assert abs(row["days_to_breach"] - crossing) <= 1
    assert row["breach_date"] == LAST_DAY + pd.Timedelta(days=int(row["days_to_breach"]))
    assert row["model"] == "seasonal_naive"  # the champion, not the always-breaching model
    assert row["forecast_peak"] == pytest.approx(120.0)
    assert row["peak_date"] == LAST_DAY + pd.Timedelta(days=HORIZON)
    assert row["headroom_pts"] == pytest.approx(80 - 120.0)
    assert row["risk_level"] in {"high", "medium"}
    assert row["breach_probability"] > 0.99
    assert "40 days" in row["risk_reason"]


def test_upper_bound_breach_comes_no_later_than_the_point_breach(fleet: dict) -> None:
    row = _row(fleet["risk"], "s1")
    assert row["days_to_breach_upper"] == 30
    assert row["days_to_breach_upper"] <= row["days_to_breach"]
    breaching = fleet["risk"].dropna(subset=["days_to_breach"])
    assert (breaching["days_to_breach_upper"] <= breaching["days_to_breach"]).all()


def test_flat_series_well_under_the_threshold_is_never_flagged(fleet: dict) -> None:
    for metric in ("cpu_p95", "mem_p95"):
        row = _row(fleet["risk"], "s2", metric)
        assert row["risk_level"] == "low"
        assert row["breach_probability"] < 1e-6
        assert np.isnan(row["days_to_breach"])
        assert np.isnan(row["days_to_breach_upper"])
        assert pd.isna(row["breach_date"])
        assert not row["eoq_breach"]
    assert _row(fleet["risk"], "s2")["current_p95"] == pytest.approx(40.0)


def test_critical_override_makes_the_threshold_stricter(fleet: dict) -> None:
    table = rk.thresholds_for(fleet["servers"], fleet["params"]).set_index(["server_id", "metric"])
    assert table.loc[("s3", "cpu_p95"), "threshold"] == 70
    assert table.loc[("s2", "cpu_p95"), "threshold"] == 80
    assert table.loc[("s3", "mem_p95"), "threshold"] == 85  # no override for memory
    row = _row(fleet["risk"], "s3")  # 66 % with upper bound 71 % crosses only the stricter bound
    assert row["threshold"] == 70
    assert row["days_to_breach_upper"] == 1
    assert row["risk_level"] == "medium"


def test_strictest_applicable_threshold_wins() -> None:
    params = RiskParams(
        overrides={
            "criticality": {"critical": {"cpu_p95": 75}},
            "environment": {"prod": {"cpu_p95": 70}, "dev": {"cpu_p95": 95}},
        }
    )
    servers = _servers({"a": "critical", "b": "low"}).assign(environment=["prod", "dev"])
    table = rk.thresholds_for(servers, params).set_index(["server_id", "metric"])
    assert table.loc[("a", "cpu_p95"), "threshold"] == 70
    assert table.loc[("b", "cpu_p95"), "threshold"] == 80  # a looser override never relaxes
    assert len(table) == 2 * 3


def test_breach_probability_from_the_calibrated_interval() -> None:
    yhat = np.linspace(0, 100, 201)
    p = rk.breach_probability(yhat, yhat - 10, yhat + 5, 70.0, INTERVAL)
    assert ((p >= 0) & (p <= 1)).all()
    assert (np.diff(p) >= 0).all()
    assert rk.breach_probability(70, 60, 75, 70, INTERVAL)[()] == pytest.approx(0.5)
    assert rk.breach_probability(65, 60, 70, 70, INTERVAL)[()] == pytest.approx(0.1)
    assert rk.breach_probability(75, 70, 78, 70, INTERVAL)[()] == pytest.approx(0.9)
    # A zero-width side is a step.
    assert rk.breach_probability([65, 75], [65, 75], [65, 75], 70, INTERVAL).tolist() == [0, 1]


def test_eoq_breach_in_the_last_business_days_of_a_quarter() -> None:
    h = np.arange(1, HORIZON + 1)
    dates = LAST_DAY + pd.to_timedelta(h, unit="D")

    def stepping_on(day: str) -> np.ndarray:
        return np.where(dates >= pd.Timestamp(day), 85.0, 50.0)

    forecasts = pd.concat(
        [
            _series("q", "cpu_p95", stepping_on("2026-09-29"), half_width=1.0),  # Tuesday
            _series("m", "cpu_p95", stepping_on("2026-08-12"), half_width=1.0),
        ],
        ignore_index=True,
    )
    history = _history([("q", "cpu_p95"), ("m", "cpu_p95")])
    risk = rk.assess_risk(
        forecasts, history, _servers({"q": "high", "m": "high"}), RiskParams(), INTERVAL
    )
    q, m = _row(risk, "q"), _row(risk, "m")
    assert q["breach_date"] == pd.Timestamp("2026-09-29")
    assert q["eoq_breach"]
    assert not m["eoq_breach"]


def test_seasonal_peak_in_the_busiest_month() -> None:
    history = _history([("a", "cpu_p95"), ("b", "cpu_p95")])
    busy = history["date"].dt.month == 8
    history.loc[busy, "value"] = 70.0
    h = np.arange(1, HORIZON + 1)
    dates = LAST_DAY + pd.to_timedelta(h, unit="D")
    forecasts = pd.concat(
        [
            _series("a", "cpu_p95", np.where(dates == "2026-08-14", 60.0, 50.0)),  # peak in Aug
            _series("b", "cpu_p95", np.where(dates == "2026-07-14", 60.0, 50.0)),  # peak in Jul
        ],
        ignore_index=True,
    )
    risk = rk.assess_risk(
        forecasts, history, _servers({"a": "low", "b": "low"}), RiskParams(), INTERVAL
    )
    assert _row(risk, "a")["seasonal_peak"]
    assert not _row(risk, "b")["seasonal_peak"]


def _risk_rows(rows: list[tuple]) -> pd.DataFrame:
    columns = ["server_id", "days_to_breach", "breach_probability", "criticality", "risk_level"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["metric"] = "cpu_p95"
    frame["days_to_breach_upper"] = frame["days_to_breach"] - 5
    frame["business_unit"] = "bu"
    frame["region"] = "eu-west-1"
    frame["environment"] = "prod"
    return frame


def test_rank_by_days_then_probability_then_criticality() -> None:
    risk = _risk_rows(
        [
            ("low-risk", np.nan, 0.01, "critical", "low"),
            ("later", 40.0, 0.9, "critical", "high"),
            ("soon-likely", 10.0, 0.9, "low", "high"),
            ("soon-less-likely", 10.0, 0.6, "critical", "high"),
            ("soon-likely-critical", 10.0, 0.9, "critical", "high"),
            ("no-date", np.nan, 0.3, "critical", "medium"),
        ]
    )
    top = rk.rank_at_risk(risk, top_n=10)
    assert top["server_id"].tolist() == [
        "soon-likely-critical",
        "soon-likely",
        "soon-less-likely",
        "later",
        "no-date",
    ]
    assert top["rank"].tolist() == [1, 2, 3, 4, 5]
    assert len(rk.rank_at_risk(risk, top_n=2)) == 2


def test_high_ranks_before_medium_even_without_a_breach_date() -> None:
    risk = _risk_rows(
        [
            ("medium-soon", 35.0, 0.25, "critical", "medium"),
            ("high-likely", np.nan, 0.45, "low", "high"),
        ]
    )
    assert rk.rank_at_risk(risk, top_n=10)["server_id"].tolist() == ["high-likely", "medium-soon"]


def test_rollups_count_a_server_once() -> None:
    risk = _risk_rows(
        [
            ("a", 10.0, 0.9, "critical", "high"),
            ("a", np.nan, 0.3, "critical", "medium"),
            ("a", np.nan, 0.0, "critical", "low"),
            ("b", np.nan, 0.3, "low", "medium"),
            ("c", np.nan, 0.0, "low", "low"),
        ]
    )
    risk["metric"] = ["cpu_p95", "mem_p95", "disk_p95", "cpu_p95", "cpu_p95"]
    result = rk.rollups(risk)
    assert set(result) == {"business_unit", "region", "criticality", "environment"}
    [bu] = result["business_unit"]
    assert bu == {
        "business_unit": "bu",
        "servers": 3,
        "servers_at_risk": 2,
        "share_at_risk": pytest.approx(2 / 3, abs=1e-4),
        "high": 1,
        "medium": 1,
    }
    by_criticality = {r["criticality"]: r for r in result["criticality"]}
    assert by_criticality["critical"]["servers"] == 1
    assert by_criticality["critical"]["high"] == 1
    assert by_criticality["low"]["share_at_risk"] == 0.5
    assert [r["criticality"] for r in result["criticality"]] == ["critical", "low"]
    json.dumps(result, allow_nan=False)


def test_risk_rows_carry_one_urgency_order(fleet: dict) -> None:
    risk = fleet["risk"]
    assert risk["urgency_rank"].tolist() == list(range(1, len(risk) + 1))
    levels = risk["risk_level"].map({"high": 0, "medium": 1, "low": 2})
    assert levels.is_monotonic_increasing


def test_summary_is_strict_json(fleet: dict) -> None:
    top = rk.rank_at_risk(fleet["risk"], top_n=20)
    summary = rk.risk_summary(fleet["risk"], top, fleet["params"])
    text = json.dumps(summary, allow_nan=False)
    assert "NaN" not in text
    assert summary["series"] == 4
    assert summary["servers"] == 3
    assert sum(summary["levels"]["series"].values()) == 4
    assert summary["levels"]["servers"]["low"] == 1
    assert [r["server_id"] for r in summary["top"]] == ["s1", "s3"]  # a forecast breach first
    assert isinstance(summary["top"][0]["breach_date_upper"], str)
    assert summary["earliest_breaches"][0]["breach_date"] == "2026-08-09"
    assert summary["rules"]


def test_check_risk_passes_on_a_good_frame(fleet: dict) -> None:
    rk.check_risk(fleet["risk"], fleet["forecasts"])


def test_check_risk_raises_on_a_missing_series(fleet: dict) -> None:
    risk = fleet["risk"][fleet["risk"]["server_id"] != "s3"]
    with pytest.raises(StageCheckError, match="without a risk row"):
        rk.check_risk(risk, fleet["forecasts"])


def test_check_risk_raises_on_a_bad_probability(fleet: dict) -> None:
    risk = fleet["risk"].copy()
    risk.loc[0, "breach_probability"] = 1.2
    with pytest.raises(StageCheckError, match="probabilities"):
        rk.check_risk(risk, fleet["forecasts"])


def test_check_risk_raises_on_a_crossing_series_without_days(fleet: dict) -> None:
    risk = fleet["risk"].copy()
    risk.loc[risk["server_id"] == "s1", "days_to_breach"] = np.nan
    with pytest.raises(StageCheckError, match="cross their threshold"):
        rk.check_risk(risk, fleet["forecasts"])


def test_only_a_likely_near_term_breach_is_high() -> None:
    """High needs the breach soon: on the forecast within high_within_days, or a probability of
    at least high_probability within those days. A likely breach far out is medium."""
    h = np.arange(1, HORIZON + 1, dtype=float)
    forecasts = pd.concat(
        [
            # The forecast stays at 77 (3 points under 80) with a wide upper side: P(breach)
            # on every day is well above 0.3, so high although the forecast never crosses.
            _series("near", "cpu_p95", np.full(HORIZON, 77.0), half_width=10.0),
            # The forecast crosses 80 only at h = 100: certain, but not soon.
            _series("late", "cpu_p95", 30 + 0.5 * h, half_width=1.0),
        ],
        ignore_index=True,
    )
    series = [("near", "cpu_p95"), ("late", "cpu_p95")]
    params = RiskParams(high_within_days=30, high_probability=0.3)
    risk = rk.assess_risk(
        forecasts, _history(series), _servers({"near": "low", "late": "low"}), params, INTERVAL
    )
    near, late = _row(risk, "near"), _row(risk, "late")
    assert np.isnan(near["days_to_breach"]) and near["breach_probability_soon"] >= 0.3
    assert near["risk_level"] == "high"
    assert late["days_to_breach"] == 100 and late["breach_probability"] >= 0.5
    assert late["breach_probability_soon"] < 0.01 and late["risk_level"] == "medium"


def test_a_server_over_its_threshold_now_is_high_even_if_the_forecast_eases() -> None:
    forecasts = _series("hot", "cpu_p95", np.full(HORIZON, 70.0), half_width=2.0)
    history = _history([("hot", "cpu_p95")], value=85.0)
    risk = rk.assess_risk(forecasts, history, _servers({"hot": "low"}), RiskParams(), INTERVAL)
    row = _row(risk, "hot")
    assert row["current_p95"] == 85.0 and np.isnan(row["days_to_breach"])
    assert row["risk_level"] == "high"
    assert row["risk_reason"].startswith("already at 85.0% (recent P95), over 80%")
