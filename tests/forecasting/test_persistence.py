"""Saving and loading fitted models: the envelope, its checks, the registry and fit's horizon."""

from __future__ import annotations

import io

import joblib
import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.core.errors import StageCheckError, StorageError
from capacity_forecaster.core.params_calendar import CalendarParams
from capacity_forecaster.core.vocabulary import MODEL_NAMES
from capacity_forecaster.forecasting.models import (
    MODEL_FILES,
    check_roundtrip,
    load_model,
    make_model,
    model_class,
    persistence,
    save_model,
)
from capacity_forecaster.forecasting.models.baseline import SeasonalNaiveModel

NO_SERVERS = pd.DataFrame()


def _history() -> pd.DataFrame:
    dates = pd.date_range("2026-01-05", periods=42, freq="D")
    return pd.DataFrame(
        {"server_id": "srv-1", "metric": "cpu_p95", "date": dates, "value": np.arange(42.0)}
    )


def _fitted(horizon_days: int = 30) -> SeasonalNaiveModel:
    return SeasonalNaiveModel().fit(_history(), NO_SERVERS, horizon_days=horizon_days)


def _envelope(data: bytes) -> dict:
    return joblib.load(io.BytesIO(data))


def _bytes(envelope: object) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(envelope, buffer)
    return buffer.getvalue()


def test_every_model_name_has_a_class_and_a_file() -> None:
    assert set(MODEL_FILES) == set(MODEL_NAMES)
    for name in MODEL_NAMES:
        assert model_class(name).name == name
        assert MODEL_FILES[name] == f"models/{name}.model"
        model = make_model(name, calendar=CalendarParams(), n_jobs=1, seed=0)
        assert model.name == name and model.horizon_days_ is None
    with pytest.raises(ValueError, match="unknown model 'arima'"):
        model_class("arima")


def test_the_envelope_names_format_version_model_and_horizon() -> None:
    envelope = _envelope(save_model(_fitted(30)))
    assert envelope["format"] == persistence.FORMAT
    assert envelope["version"] == persistence.VERSION
    assert envelope["model"] == "seasonal_naive"
    assert envelope["state_version"] == SeasonalNaiveModel.state_version
    assert envelope["horizon_days"] == 30
    assert set(envelope["payload"]) == {"lookback_days", "profile"}


def test_fit_records_the_horizon_and_load_gives_it_back() -> None:
    model = _fitted(45)
    assert model.horizon_days_ == 45
    assert load_model(save_model(model), name="seasonal_naive").horizon_days_ == 45
    with pytest.raises(ValueError, match="horizon_days must be at least 1"):
        SeasonalNaiveModel().fit(_history(), NO_SERVERS, horizon_days=0)


def test_an_unfitted_model_is_not_saved() -> None:
    with pytest.raises(ValueError, match="not fitted"):
        save_model(SeasonalNaiveModel())


def test_another_horizon_is_refused_with_the_file_and_both_values() -> None:
    data = save_model(_fitted(120))
    with pytest.raises(StageCheckError) as caught:
        load_model(data, name="seasonal_naive", horizon_days=90)
    message = str(caught.value)
    assert message.startswith("models/seasonal_naive.model:")
    assert "120-day horizon" in message and "90 days expected" in message
    assert "rerun from 04_train" in message


@pytest.mark.parametrize(
    "change, match",
    [
        ({"format": "capacity_forecaster.prophet"}, "format 'capacity_forecaster.prophet'"),
        ({"version": 0}, "format version 0, this code reads version 1"),
        ({"model": "robust_trend"}, "holds a 'robust_trend' model, not 'seasonal_naive'"),
        ({"state_version": 99}, "state version 99"),
    ],
)
def test_a_wrong_envelope_says_which_field_is_wrong(change: dict, match: str) -> None:
    envelope = {**_envelope(save_model(_fitted())), **change}
    with pytest.raises(StorageError, match=match) as caught:
        load_model(_bytes(envelope), name="seasonal_naive")
    assert str(caught.value).startswith("models/seasonal_naive.model:")


def test_other_bytes_are_not_a_model() -> None:
    with pytest.raises(StorageError, match="not a saved forecast model"):
        load_model(b"\x1f\x8b not a model", name="seasonal_naive")
    with pytest.raises(StorageError, match="format 'list'"):
        load_model(_bytes([1, 2]), name="seasonal_naive")
    missing = {k: v for k, v in _envelope(save_model(_fitted())).items() if k != "payload"}
    with pytest.raises(StorageError, match=r"lacks \['payload'\]"):
        load_model(_bytes(missing), name="seasonal_naive")


def test_check_roundtrip_names_the_file() -> None:
    model = _fitted()
    dates = pd.date_range("2026-02-16", periods=30, freq="D")
    check_roundtrip(model, save_model(model), dates)
    other = SeasonalNaiveModel().fit(
        _history().assign(value=1.0), NO_SERVERS, horizon_days=model.horizon_days_ or 30
    )
    with pytest.raises(StageCheckError, match=r"models/seasonal_naive\.model: the saved"):
        check_roundtrip(model, save_model(other), dates)
