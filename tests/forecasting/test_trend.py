"""The robust damped-trend model: shapes, trend and weekly pattern, no look-ahead, bounds, bytes,
and the business calendar's windows."""

from __future__ import annotations

import io
from dataclasses import replace

import joblib
import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.core.calendar_windows import window_flags
from capacity_forecaster.core.errors import StageCheckError, StorageError
from capacity_forecaster.core.params_calendar import CalendarParams
from capacity_forecaster.forecasting.models import (
    PREDICTION_COLUMNS,
    check_roundtrip,
    load_model,
    make_model,
    save_model,
)
from capacity_forecaster.forecasting.models.trend import (
    RobustTrendModel,
    _centred_weekly_mean,
    select_config,
    sharp_drops,
    window_days,
)

START = pd.Timestamp("2026-01-05")  # a Monday
WEEKLY = np.array([1.0, 1.5, 1.5, 1.0, 0.0, -2.5, -2.5])  # sums to zero
NO_SERVERS = pd.DataFrame()  # robust_trend needs no server metadata (windows: Monday-Friday)
GERMAN = pd.DataFrame({"server_id": ["srv-1"], "region": ["eu-central"]})  # DE business days


def _fit(history: pd.DataFrame, horizon_days: int) -> RobustTrendModel:
    return RobustTrendModel().fit(history, NO_SERVERS, horizon_days=horizon_days)


def _series(values: np.ndarray, server_id: str = "srv-1", metric: str = "disk_p95") -> pd.DataFrame:
    dates = pd.date_range(START, periods=len(values), freq="D")
    return pd.DataFrame(
        {"server_id": server_id, "metric": metric, "date": dates, "value": np.asarray(values)}
    )


def _after(history: pd.DataFrame, days: int) -> pd.DatetimeIndex:
    return pd.date_range(history["date"].max() + pd.Timedelta(days=1), periods=days, freq="D")


def _fleet(days: int = 300, seed: int = 0) -> pd.DataFrame:
    """Two metrics x three servers: linear growth plus a weekly pattern plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    parts = []
    for metric in ("cpu_p95", "disk_p95"):
        for k in range(3):
            values = 20 + 5 * k + 0.05 * t + WEEKLY[t % 7] + rng.normal(0, 0.2, days)
            parts.append(_series(values, server_id=f"srv-{k}", metric=metric))
    return pd.concat(parts, ignore_index=True)


def test_one_row_per_series_and_date_in_range() -> None:
    history = _fleet()
    dates = _after(history, 30)
    predicted = _fit(history, 30).predict(dates)
    assert list(predicted.columns) == PREDICTION_COLUMNS
    assert len(predicted) == 6 * 30
    assert not predicted.duplicated(["server_id", "metric", "date"]).any()
    assert predicted["yhat"].between(0, 100).all()
    assert set(predicted["date"]) == set(dates)


def test_follows_a_linear_trend_and_its_weekly_pattern() -> None:
    t = np.arange(280)
    history = _series(30 + 0.1 * t + WEEKLY[t % 7])
    dates = _after(history, 28)
    predicted = _fit(history, 28).predict(dates)
    future = np.arange(280, 308)
    expected = 30 + 0.1 * future + WEEKLY[future % 7]
    np.testing.assert_allclose(predicted["yhat"].to_numpy(), expected, atol=0.2)


def test_a_cleanup_does_not_bend_the_slope() -> None:
    # Steady growth of 0.1/day with one 20-point cleanup 60 days before the end: the median of
    # weekly changes keeps the slope, so the forecast continues the line from the new level.
    t = np.arange(300)
    values = 30 + 0.1 * t - 20 * (t >= 240)
    history = _series(values)
    model = _fit(history, 30)
    predicted = model.predict(_after(history, 30))["yhat"].to_numpy()
    slope = np.diff(predicted).mean()
    assert model.configs_["disk_p95"][2] > 0  # a trend was selected
    assert slope == pytest.approx(0.1, abs=0.02)
    assert predicted[0] == pytest.approx(values[-1] + 0.1, abs=0.3)


def test_forecasts_stay_inside_0_to_100() -> None:
    t = np.arange(200)
    history = pd.concat(
        [_series(60 + 0.5 * t, "srv-up"), _series(50 - 0.2 * t, "srv-down")],
        ignore_index=True,
    )
    predicted = _fit(history, 120).predict(_after(history, 120))
    assert predicted["yhat"].between(0, 100).all()
    assert predicted.loc[predicted["server_id"] == "srv-up", "yhat"].max() == 100
    assert predicted.loc[predicted["server_id"] == "srv-down", "yhat"].min() == 0


def test_changing_the_future_does_not_change_a_forecast() -> None:
    # Fit on data up to a cut; then on the same data plus wildly different later days cut off
    # again: a model that saw anything past the cut would forecast differently.
    history = _fleet(days=300)
    cut = history["date"].max() - pd.Timedelta(days=60)
    tampered = history.copy()
    tampered.loc[tampered["date"] > cut, "value"] = 99.0
    dates = _after(history[history["date"] <= cut], 60)
    clean = _fit(history[history["date"] <= cut], 60).predict(dates)
    dirty = _fit(tampered[tampered["date"] <= cut], 60).predict(dates)
    pd.testing.assert_frame_equal(clean, dirty)


def test_selection_keeps_the_trend_of_trending_series_and_drops_it_for_noise() -> None:
    rng = np.random.default_rng(3)
    dates = pd.date_range(START, periods=300, freq="D")
    weekday = dates.day_of_week.to_numpy()
    windows = window_days(dates, [None] * 4, CalendarParams())
    growing = 20 + 0.1 * np.arange(300)[:, None] + rng.normal(0, 0.3, (300, 4))
    (_, _, phi, cleanups, _), scores = select_config(growing, weekday, windows, horizon_days=60)
    assert scores and phi >= 0.97 and not cleanups
    noise = 40 + rng.normal(0, 3.0, (300, 4))  # no trend: extrapolating slopes only hurts
    (_, _, phi, _, _), _ = select_config(noise, weekday, windows, horizon_days=60)
    assert phi <= 0.9


def test_short_history_uses_the_default_config() -> None:
    history = _series(np.linspace(10, 20, 30))
    model = _fit(history, 90)
    predicted = model.predict(_after(history, 90))
    assert len(predicted) == 90
    assert np.isfinite(predicted["yhat"]).all()


def test_missing_days_and_a_late_starting_series() -> None:
    t = np.arange(200)
    full = _series(30 + 0.05 * t, "srv-1")
    late = _series(10 + 0.05 * t[:80], "srv-2")
    late["date"] += pd.Timedelta(days=120)  # ends on the same day as srv-1
    history = pd.concat([full.drop(index=range(150, 170)), late], ignore_index=True)
    history.loc[5, "value"] = np.nan
    predicted = _fit(history, 30).predict(_after(history, 30))
    assert predicted.groupby("server_id").size().to_dict() == {"srv-1": 30, "srv-2": 30}
    assert np.isfinite(predicted["yhat"]).all()


def test_dates_not_after_the_history_raise() -> None:
    history = _fleet()
    model = _fit(history, 120)
    with pytest.raises(ValueError, match="after the history"):
        model.predict(pd.DatetimeIndex([history["date"].max()]))


def test_predict_before_fit_raises() -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        RobustTrendModel().predict(pd.date_range("2026-01-01", periods=3))


def test_round_trip_predicts_identically() -> None:
    history = _fleet()
    model = make_model("robust_trend", calendar=CalendarParams(), n_jobs=1, seed=0).fit(
        history, NO_SERVERS, horizon_days=30
    )
    dates = _after(history, 30)
    data = save_model(model)
    check_roundtrip(model, data, dates)
    loaded = load_model(data, name="robust_trend", horizon_days=30)
    pd.testing.assert_frame_equal(model.predict(dates), loaded.predict(dates))
    assert loaded.configs_ == model.configs_


def test_check_roundtrip_rejects_another_fit() -> None:
    history = _fleet()
    model = _fit(history, 30)
    other = save_model(_fit(_fleet(seed=1), 30))
    with pytest.raises(StageCheckError, match="robust_trend"):
        check_roundtrip(model, other, _after(history, 30))


def _sawtooth(days: int, start: float, growth: float, peak: float, keep: float) -> np.ndarray:
    """A disk growing by ``growth`` a day, cut to ``keep`` of its level when it passes ``peak``."""
    values, level = np.empty(days), start
    for day in range(days):
        level += growth
        if level > peak:
            level *= keep
        values[day] = level
    return values


def _cleanup_fleet(days: int) -> pd.DataFrame:
    """A disk cleaned at 60 % (down to 60 % of it) every ~80 days, a disk with one ad hoc purge,
    and one with two purges from different levels."""
    t = np.arange(days)
    one_drop = 30 + 0.1 * t - 15 * (t >= days - 150)
    two_drops = 20 + 0.1 * t - 8 * (t >= days - 250) - 8 * (t >= days - 120)
    return pd.concat(
        [
            _series(_sawtooth(days, 40.0, 0.3, 60.0, 0.6), "srv-saw"),
            _series(one_drop, "srv-one"),
            _series(two_drops, "srv-two"),
        ],
        ignore_index=True,
    )


def test_sharp_drops_are_large_and_lasting() -> None:
    level = np.full(40, 50.0)
    y = np.column_stack([level.copy() for _ in range(4)])
    y[10:, 0] = 40.0  # lasting: flagged on day 9 -> 10
    y[10, 1] = 40.0  # a one-day dip: not a cleanup
    y[10:, 2] = 48.0  # lasting, but 2 points: noise
    y[10:, 3], y[9, 3] = 40.0, np.nan  # across a missing day: on the gap's first day
    drops = sharp_drops(y)
    assert drops.shape == (39, 4)
    assert np.flatnonzero(drops[:, 0]).tolist() == [9]
    assert not drops[:, 1].any() and not drops[:, 2].any()
    assert np.flatnonzero(drops[:, 3]).tolist() == [9]


def test_a_learned_cleanup_level_cuts_the_forecast_where_the_history_did() -> None:
    days = 370  # the next cleanup of srv-saw is due about 17 days after the end
    history = _cleanup_fleet(days)
    dates = _after(history, 60)
    model = _fit(history, 60)
    predicted = model.predict(dates).set_index(["server_id", "date"])["yhat"]
    saw = predicted["srv-saw"].to_numpy()
    expected = _sawtooth(days + 60, 40.0, 0.3, 60.0, 0.6)[days:]
    assert model.configs_["disk_p95"][3]  # chosen on inner origins: it helps there
    assert saw.max() <= 60.0 + 0.3
    drop_day = int(np.argmin(np.diff(saw)))
    assert drop_day == int(np.argmin(np.diff(expected)))
    assert saw[drop_day + 1] / saw[drop_day] == pytest.approx(0.6, abs=0.02)
    np.testing.assert_allclose(saw, expected, atol=1.0)


def test_series_without_a_consistent_cleanup_level_keep_the_damped_trend() -> None:
    # One ad hoc purge, or two from different levels, teach nothing: their forecast is exactly
    # the one without learned cleanups, a straight line on from the last level.
    history = _cleanup_fleet(370)
    dates = _after(history, 60)
    model = _fit(history, 60)
    server_ids, last, state = model.states_["disk_p95"]
    plain = _fit(history, 60)
    plain.states_["disk_p95"] = (server_ids, last, replace(state, peak=None, ratio=None))
    without = plain.predict(dates).set_index(["server_id", "date"])["yhat"]
    predicted = model.predict(dates).set_index(["server_id", "date"])["yhat"]
    for k, server in enumerate(server_ids):
        if server != "srv-saw":
            assert np.isnan(state.peak[k])
            np.testing.assert_array_equal(predicted[server].to_numpy(), without[server].to_numpy())
            assert np.diff(predicted[server].to_numpy()).min() > 0  # no drop


def test_cleanups_after_the_cut_change_nothing() -> None:
    # Tampering after the cut with cleanups at another level must not move the learned level.
    history = _cleanup_fleet(450)
    cut = history["date"].max() - pd.Timedelta(days=80)
    tampered = history.copy()
    late = tampered["date"] > cut
    tampered.loc[late, "value"] = np.resize(_sawtooth(80, 20.0, 1.0, 35.0, 0.5), late.sum())
    dates = _after(history[history["date"] <= cut], 60)
    clean = _fit(history[history["date"] <= cut], 60)
    dirty = _fit(tampered[tampered["date"] <= cut], 60)
    assert clean.configs_ == dirty.configs_
    pd.testing.assert_frame_equal(clean.predict(dates), dirty.predict(dates))


def test_round_trip_keeps_the_learned_cleanup_level() -> None:
    history = _cleanup_fleet(370)
    model = _fit(history, 60)
    dates = _after(history, 60)
    loaded = load_model(save_model(model), name="robust_trend")
    pd.testing.assert_frame_equal(model.predict(dates), loaded.predict(dates))
    np.testing.assert_array_equal(
        loaded.states_["disk_p95"][2].peak, model.states_["disk_p95"][2].peak
    )


@pytest.mark.parametrize("days", [1, 4, 5, 12, 80])
def test_centred_weekly_mean_is_pandas_centred_rolling_mean(days: int) -> None:
    rng = np.random.default_rng(days)
    y = rng.uniform(0.0, 100.0, (days, 6))
    y[rng.random(y.shape) < 0.3] = np.nan
    expected = pd.DataFrame(y).rolling(7, center=True, min_periods=5).mean().to_numpy()
    np.testing.assert_allclose(_centred_weekly_mean(y), expected, rtol=0, atol=1e-9)


def _month_end_series(spike: float, days: int = 480) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    """Growing cpu with a weekly pattern and noise, ``spike`` points higher on the month-end
    days of Germany; the 60 days after it."""
    dates = pd.date_range(START, periods=days + 60, freq="D")
    inside = window_flags(dates, "DE", CalendarParams())["month_end"]
    noise = np.random.default_rng(5).normal(0.0, 0.5, len(dates))
    values = 30 + 0.02 * np.arange(len(dates)) + WEEKLY[dates.day_of_week] + spike * inside
    return _series((values + noise)[:days], metric="cpu_p95"), dates[days:]


def test_a_month_end_spike_lifts_month_end_days_only() -> None:
    # The same series with and without +20 on month-end days: the spike is forecast on the
    # horizon's month-end days, and the other days are forecast as if there were none.
    future = _after(_month_end_series(0.0)[0], 60)
    inside = window_flags(future, "DE", CalendarParams())["month_end"]
    forecasts = {}
    for spike in (0.0, 20.0):
        history, _ = _month_end_series(spike)
        model = RobustTrendModel().fit(history, GERMAN, horizon_days=60)
        forecasts[spike] = model.predict(future)["yhat"].to_numpy()
    assert inside.sum() >= 2  # the horizon holds month ends
    np.testing.assert_allclose(forecasts[20.0][~inside], forecasts[0.0][~inside], atol=1.0)
    rise = forecasts[20.0][inside] - forecasts[0.0][inside]
    np.testing.assert_allclose(rise, 20.0, atol=2.0)


def test_a_window_seen_once_gets_no_effect() -> None:
    # One year end in the history, 20 points up: an anecdote, no effect; nor does it move the
    # quarter end it falls in (one of five). The monthly spike is learned beside them.
    dates = pd.date_range("2025-06-02", "2026-06-30", freq="D")
    flags = window_flags(dates, "DE", CalendarParams())
    noise = np.random.default_rng(6).normal(0.0, 0.5, len(dates))
    values = 40 + WEEKLY[dates.day_of_week] + 15 * flags["month_end"] + 20 * flags["year_end"]
    history = _series(values + noise, metric="cpu_p95")
    history["date"] = dates
    model = RobustTrendModel().fit(history, GERMAN, horizon_days=30)
    assert model.configs_["cpu_p95"][4]  # window effects chosen on inner origins
    effects = dict(
        zip(model.calendar.windows, model.states_["cpu_p95"][2].effects[:, 0], strict=True)
    )
    assert effects["year_end"] == 0.0
    assert effects["quarter_end"] == pytest.approx(0.0, abs=1.0)
    assert effects["month_end"] == pytest.approx(15.0, abs=1.0)


def test_round_trip_keeps_the_calendar_and_the_window_effects() -> None:
    calendar = CalendarParams(windows={"payroll": {"kind": "day_of_month", "day": 15}})
    history, future = _month_end_series(20.0)
    model = RobustTrendModel(calendar=calendar).fit(history, GERMAN, horizon_days=60)
    data = save_model(model)
    loaded = load_model(data, name="robust_trend", horizon_days=60)
    assert isinstance(loaded, RobustTrendModel)
    assert loaded.calendar == calendar and loaded.countries_ == {"srv-1": "DE"}
    pd.testing.assert_frame_equal(loaded.predict(future), model.predict(future))
    np.testing.assert_array_equal(
        loaded.states_["cpu_p95"][2].effects, model.states_["cpu_p95"][2].effects
    )
    # A model saved before the calendar (state version 1) is refused with what to do.
    buffer = io.BytesIO()
    joblib.dump({**joblib.load(io.BytesIO(data)), "state_version": 1}, buffer)
    with pytest.raises(StorageError, match=r"state version 1\b.*rerun from 04_train"):
        load_model(buffer.getvalue(), name="robust_trend")
