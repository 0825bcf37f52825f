"""Unit tests for the Prophet model (stage 04/05): a handful of short series, in-process."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from prophet import Prophet

from capacity_forecaster.core.calendar_windows import window_flags
from capacity_forecaster.core.errors import StorageError
from capacity_forecaster.core.params_calendar import CalendarParams
from capacity_forecaster.forecasting.models import load_model, save_model
from capacity_forecaster.forecasting.models.prophet import (
    PUBLIC_HOLIDAY,
    ProphetModel,
    fitting,
    predicting,
)

# Prophet 1.5 itself still uses pandas APIs that pandas 3.1 deprecates; ours must stay clean.
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning:prophet.*")

END = pd.Timestamp("2026-03-31")  # history ends on a quarter end
HORIZON = pd.date_range(END + pd.Timedelta(days=1), periods=60, freq="D")


def _fit(history: pd.DataFrame, servers: pd.DataFrame) -> ProphetModel:
    """In-process, without a progress bar, for the 60 days of ``HORIZON``."""
    return ProphetModel(n_jobs=1, progress=False).fit(history, servers, horizon_days=60)


def _series(
    server_id: str, metric: str, values: np.ndarray, end: pd.Timestamp = END
) -> pd.DataFrame:
    dates = pd.date_range(end=end, periods=len(values), freq="D")
    return pd.DataFrame({"server_id": server_id, "metric": metric, "date": dates, "value": values})


def _weekly(days: int, seed: int = 0, end: pd.Timestamp = END) -> np.ndarray:
    """Business load: about 50% on weekdays, 35% at weekends, light noise and trend."""
    dates = pd.date_range(end=end, periods=days, freq="D")
    rng = np.random.default_rng(seed)
    weekend = (dates.day_of_week >= 5).astype(float)
    return 50.0 - 15.0 * weekend + 0.01 * np.arange(days) + rng.normal(0.0, 1.0, days)


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    trend = np.minimum(50.0 + 0.25 * np.arange(200) + rng.normal(0.0, 0.3, 200), 100.0)
    frames = [
        _series("srv-a", "cpu_p95", trend),  # 200 days, heading past 100
        _series("srv-b", "cpu_p95", _weekly(400)),  # 400 days, strong weekly pattern
        _series("srv-b", "mem_p95", np.full(100, 42.0)),  # constant
        _series("srv-c", "disk_p95", np.array([10.0, 11.0, 12.0, 13.0, 14.0])),  # 5 points
        _series("srv-d", "cpu_p95", _weekly(120, seed=2)),  # unknown region: no country
    ]
    extra = pd.concat(frames, ignore_index=True).assign(note="ignored column")
    return extra.drop(index=[10, 20, 30]).reset_index(drop=True)  # a few absent dates


@pytest.fixture(scope="module")
def servers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "server_id": ["srv-a", "srv-b", "srv-c", "srv-d"],
            "region": ["us-east", "eu-central", "us-west", "mars-1"],
            "country": ["US", None, None, None],
        }
    )


@pytest.fixture(scope="module")
def model(history: pd.DataFrame, servers: pd.DataFrame) -> ProphetModel:
    return _fit(history, servers)


@pytest.fixture(scope="module")
def forecast(model: ProphetModel) -> pd.DataFrame:
    return model.predict(HORIZON)


def test_predict_shape_columns_and_order(model: ProphetModel, forecast: pd.DataFrame) -> None:
    assert list(forecast.columns) == ["server_id", "metric", "date", "yhat"]
    assert forecast["yhat"].dtype == np.float64
    assert forecast["yhat"].notna().all()
    keys = [
        ("srv-a", "cpu_p95"),
        ("srv-b", "cpu_p95"),
        ("srv-b", "mem_p95"),
        ("srv-c", "disk_p95"),
        ("srv-d", "cpu_p95"),
    ]
    assert len(forecast) == len(keys) * len(HORIZON)  # skipped series get rows too
    assert list(forecast[["server_id", "metric"]].drop_duplicates().itertuples(index=False)) == [
        tuple(k) for k in keys
    ]
    sorted_frame = forecast.sort_values(["server_id", "metric", "date"], ignore_index=True)
    pd.testing.assert_frame_equal(forecast, sorted_frame)
    assert model.fitted_series == [keys[0], keys[1], keys[4]]


def test_predict_dedupes_and_sorts_dates(model: ProphetModel, forecast: pd.DataFrame) -> None:
    shuffled = pd.DatetimeIndex(list(HORIZON[::-1]) + list(HORIZON[:5]))
    pd.testing.assert_frame_equal(model.predict(shuffled), forecast)


def test_predictions_are_clipped_to_percent(model: ProphetModel, forecast: pd.DataFrame) -> None:
    assert forecast["yhat"].between(0.0, 100.0).all()
    raw = model.prophet_for("srv-a", "cpu_p95").predict(pd.DataFrame({"ds": HORIZON}))["yhat"]
    assert raw.max() > 100.0  # Prophet itself overshoots: the clip is what bounds it
    trend = forecast[forecast["server_id"] == "srv-a"]["yhat"]
    assert trend.max() == 100.0


def test_yearly_seasonality_needs_a_year_of_history(model: ProphetModel) -> None:
    assert ("srv-a", "cpu_p95") in model.yearly_off  # 200 days
    assert ("srv-d", "cpu_p95") in model.yearly_off  # 120 days
    assert ("srv-b", "cpu_p95") not in model.yearly_off  # 400 days
    assert "yearly" in model.prophet_for("srv-b", "cpu_p95").seasonalities
    assert "yearly" not in model.prophet_for("srv-a", "cpu_p95").seasonalities
    assert "weekly" in model.prophet_for("srv-a", "cpu_p95").seasonalities


def test_constant_and_short_series_fall_back_flat(
    model: ProphetModel, forecast: pd.DataFrame
) -> None:
    reasons = {(s, m): r for s, m, r in model.skipped}
    assert set(reasons) == {("srv-b", "mem_p95"), ("srv-c", "disk_p95")}
    assert reasons[("srv-b", "mem_p95")].startswith("constant")
    assert reasons[("srv-c", "disk_p95")].startswith("fewer than 14 points")
    constant = forecast[(forecast["server_id"] == "srv-b") & (forecast["metric"] == "mem_p95")]
    short = forecast[forecast["server_id"] == "srv-c"]
    assert (constant["yhat"] == 42.0).all()
    assert (short["yhat"] == 14.0).all()  # the last observed value
    with pytest.raises(KeyError, match="skipped or unknown"):
        model.prophet_for("srv-c", "disk_p95")


WINDOWS = {"month_end", "quarter_end", "year_end"}  # the default calendar's


@pytest.mark.parametrize(
    ("server_id", "country"), [("srv-a", "US"), ("srv-b", "DE"), ("srv-d", None)]
)
def test_each_calendar_window_is_a_holiday_on_its_days_in_the_country(
    model: ProphetModel, server_id: str, country: str | None
) -> None:
    holidays = model.prophet_for(server_id, "cpu_p95").holidays
    span = pd.date_range(holidays["ds"].min(), holidays["ds"].max(), freq="D")
    assert span[-1] > END + pd.Timedelta(days=300)  # covers the forecast window
    flags = window_flags(span, country, CalendarParams())
    for name in WINDOWS:
        days = pd.DatetimeIndex(holidays.loc[holidays["holiday"] == name, "ds"])
        assert list(days) == list(span[flags[name]]), name


def test_public_holidays_are_one_pooled_effect_beside_the_windows(model: ProphetModel) -> None:
    us = model.prophet_for("srv-a", "cpu_p95").holidays
    assert pd.Timestamp("2025-12-25") in set(us["ds"])  # country column: US
    assert set(us["holiday"]) == {*WINDOWS, PUBLIC_HOLIDAY}  # one pooled effect
    de = model.prophet_for("srv-b", "cpu_p95").holidays  # eu-central -> DE via the region
    assert pd.Timestamp("2025-10-03") in set(de["ds"])  # German Unity Day
    nowhere = model.prophet_for("srv-d", "cpu_p95").holidays  # unknown region
    assert set(nowhere["holiday"]) == WINDOWS


def test_extra_holidays_join_the_public_ones_and_move_the_month_end(
    servers: pd.DataFrame,
) -> None:
    # 2026-02-27 is the last business day of February in the US; a day off there moves the
    # two month-end days back to 25-26 February.
    calendar = CalendarParams(extra_holidays={"US": ["2026-02-27"]})
    history = _series("srv-a", "cpu_p95", _weekly(120))
    model = ProphetModel(n_jobs=1, progress=False, calendar=calendar)
    holidays = model.fit(history, servers, horizon_days=60).prophet_for("srv-a", "cpu_p95").holidays
    february = holidays[holidays["ds"].dt.strftime("%Y-%m") == "2026-02"]
    assert pd.Timestamp("2026-02-27") in set(
        february.loc[february["holiday"] == PUBLIC_HOLIDAY, "ds"]
    )
    month_end = february.loc[february["holiday"] == "month_end", "ds"]
    assert list(month_end.dt.day) == [25, 26]


def test_weekly_pattern_is_forecast(forecast: pd.DataFrame) -> None:
    weekly = forecast[(forecast["server_id"] == "srv-b") & (forecast["metric"] == "cpu_p95")]
    weekend = weekly["date"].dt.day_of_week >= 5
    assert weekly.loc[~weekend, "yhat"].mean() > weekly.loc[weekend, "yhat"].mean() + 10.0


def test_round_trip_predicts_identically(model: ProphetModel, forecast: pd.DataFrame) -> None:
    data = save_model(model)
    assert save_model(model) == data  # deterministic bytes
    loaded = load_model(data, name="prophet", horizon_days=60)
    assert isinstance(loaded, ProphetModel)
    assert loaded.fitted_series == model.fitted_series
    assert loaded.skipped == model.skipped
    assert loaded.yearly_off == model.yearly_off
    again = loaded.predict(HORIZON)
    pd.testing.assert_frame_equal(again.drop(columns="yhat"), forecast.drop(columns="yhat"))
    np.testing.assert_allclose(again["yhat"], forecast["yhat"], rtol=1e-9)
    assert load_model(save_model(loaded), name="prophet").fitted_series == model.fitted_series


def test_load_rejects_other_data() -> None:
    with pytest.raises(StorageError, match=r"models/prophet\.model: not a saved forecast model"):
        load_model(b"not a model", name="prophet")


def test_no_leakage_predictions_depend_only_on_fit_data(servers: pd.DataFrame) -> None:
    cutoff = END - pd.Timedelta(days=60)
    full = _series("srv-b", "cpu_p95", _weekly(300))
    before = full[full["date"] <= cutoff].copy()
    future = pd.date_range(cutoff + pd.Timedelta(days=1), periods=30, freq="D")

    alone = _fit(before, servers)
    expected = alone.predict(future)
    before["value"] = 0.0  # the caller's frame changes after fitting: the model must not care
    np.testing.assert_allclose(alone.predict(future)["yhat"], expected["yhat"], rtol=1e-9)

    # Later actuals of another series in the same fit frame change nothing for this one.
    later = _series("srv-a", "cpu_p95", _weekly(300, seed=5), end=END + pd.Timedelta(days=90))
    together = _fit(pd.concat([full[full["date"] <= cutoff], later]), servers)
    mixed = together.predict(future)
    own = mixed[mixed["server_id"] == "srv-b"].reset_index(drop=True)
    np.testing.assert_allclose(own["yhat"], expected["yhat"], rtol=1e-9)


def test_fit_logs_yearly_off_once(
    history: pd.DataFrame, servers: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    small = history[history["server_id"].isin(["srv-a", "srv-c"])]
    with caplog.at_level(logging.INFO, logger="capacity_forecaster.forecasting.models.prophet"):
        _fit(small, servers)
    yearly = [r for r in caplog.records if "yearly seasonality off" in r.getMessage()]
    assert len(yearly) == 1
    assert "1 series" in yearly[0].getMessage()
    assert "365 days" in yearly[0].getMessage()


def test_bad_inputs_fail_clearly(history: pd.DataFrame, servers: pd.DataFrame) -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        ProphetModel(n_jobs=1, progress=False).predict(HORIZON)
    with pytest.raises(ValueError, match="missing column"):
        _fit(history.drop(columns="value"), servers)
    with pytest.raises(ValueError, match="duplicate"):
        _fit(pd.concat([history, history.head(1)]), servers)
    with pytest.raises(ValueError, match="n_jobs"):
        ProphetModel(n_jobs=0)


@pytest.fixture(scope="module")
def shared_fleet() -> tuple[ProphetModel, pd.DataFrame]:
    """Seven series in two countries, some with yearly seasonality: groups of shared designs."""
    frames = [
        _series(f"srv-{i}", metric, _weekly(days, seed=i) + 5.0 * j, end=END)
        for i, days in enumerate([120, 200, 400, 420])
        for j, metric in enumerate(["cpu_p95", "mem_p95"][: 1 + i % 2])
    ]
    servers = pd.DataFrame(
        {"server_id": [f"srv-{i}" for i in range(4)], "country": ["US", "DE", "US", "DE"]}
    )
    return _fit(pd.concat(frames), servers), servers


def test_shared_design_predict_equals_prophets_own(
    shared_fleet: tuple[ProphetModel, pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    model, _ = shared_fleet
    assert len(model.fitted_series) == 6 and len(model.yearly_off) == 3
    calls = []
    own_predict = Prophet.predict
    monkeypatch.setattr(
        Prophet, "predict", lambda self, df: calls.append(1) or own_predict(self, df)
    )
    with caplog.at_level(logging.WARNING):
        forecast = model.predict(HORIZON)
    monkeypatch.undo()
    # One Prophet.predict per design group (country x yearly), as the check; the rest shared.
    assert len(calls) == 4 and "differs" not in caplog.text
    for server_id, metric in model.fitted_series:
        own = model.prophet_for(server_id, metric).predict(pd.DataFrame({"ds": HORIZON}))
        rows = forecast[(forecast["server_id"] == server_id) & (forecast["metric"] == metric)]
        np.testing.assert_allclose(
            rows["yhat"], np.clip(own["yhat"], 0.0, 100.0), rtol=1e-9, atol=1e-9
        )


def test_shared_design_falls_back_to_prophet_when_it_differs(
    shared_fleet: tuple[ProphetModel, pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    model, _ = shared_fleet
    expected = model.predict(HORIZON)

    monkeypatch.setattr(predicting, "_yhat", lambda *args: np.zeros(len(HORIZON)))
    with caplog.at_level(logging.WARNING, logger=predicting.__name__):
        again = model.predict(HORIZON)
    pd.testing.assert_frame_equal(again, expected)
    assert "differs from Prophet.predict" in caplog.text


def test_fits_on_the_same_dates_share_their_design_and_fit_as_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:

    early = END - pd.Timedelta(days=10)
    frames = [
        _series("srv-0", "cpu_p95", _weekly(120, seed=0)),
        _series("srv-1", "cpu_p95", _weekly(150, seed=1)),  # same country, longer
        _series("srv-1", "mem_p95", _weekly(150, seed=2) - 10.0),  # same dates as srv-1 cpu
        _series("srv-2", "cpu_p95", _weekly(400, seed=3)),  # yearly, DE
        _series("srv-2", "mem_p95", _weekly(400, seed=4) - 10.0),
        _series("srv-3", "cpu_p95", _weekly(400, seed=5, end=early), end=early),  # shifted
    ]
    servers = pd.DataFrame(
        {"server_id": [f"srv-{i}" for i in range(4)], "country": ["US", "US", "DE", "DE"]}
    )
    designs = []
    own_design = Prophet.make_all_seasonality_features
    monkeypatch.setattr(
        Prophet,
        "make_all_seasonality_features",
        lambda self, df: designs.append(1) or own_design(self, df),
    )
    monkeypatch.setattr(fitting, "chunks", lambda items, n_workers: [items])
    model = _fit(pd.concat(frames), servers)
    monkeypatch.undo()
    # Six series, four distinct (country, yearly, dates): srv-1's and srv-2's metrics share.
    assert len(designs) == 4
    for frame in frames:
        server_id, metric = frame["server_id"].iloc[0], frame["metric"].iloc[0]
        alone = _fit(frame, servers)
        shared, own = model.prophet_for(server_id, metric), alone.prophet_for(server_id, metric)
        assert shared.shared_designs is None  # the cache does not travel with the model
        assert list(shared.train_holiday_names) == list(own.train_holiday_names)
        for name, values in own.params.items():
            np.testing.assert_array_equal(shared.params[name], values, err_msg=name)


def test_stan_data_is_written_by_ujson() -> None:
    """stanio silently falls back to a pure-Python JSON encoder without ujson (14 % more CPU
    per Prophet fit); the dependency must stay installed and new enough for stanio to use it."""
    import stanio.json

    assert stanio.json.UJSON_AVAILABLE


def test_a_fit_past_its_time_limit_falls_back_flat_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, servers: pd.DataFrame
) -> None:
    # A Stan optimisation that never ends must not stall the run: at the limit the series
    # gets the flat fallback (its last value) and says why. A limit no fit can meet stands in
    # for the hang (the real Stan process is started and stopped).
    monkeypatch.setattr(fitting, "FIT_TIMEOUT_SECONDS", 1e-4)
    history = _series("srv-b", "cpu_p95", _weekly(120))
    model = _fit(history, servers)
    [(server_id, metric, reason)] = model.skipped
    assert (server_id, metric) == ("srv-b", "cpu_p95")
    assert reason.startswith("fit failed: TimeoutError")
    assert np.allclose(model.predict(HORIZON)["yhat"], history["value"].iloc[-1])
