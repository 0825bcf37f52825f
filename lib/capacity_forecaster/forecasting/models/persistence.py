"""Saving and loading fitted models: one envelope, one load path, for every model.

A saved model (``core.catalog.FITTED_MODEL``: ``models/<name>.model``) is a joblib file (zlib
level 3) holding one dict, the envelope::

    {"format": FORMAT, "version": VERSION, "model": <params name>,
     "state_version": <the model class's>, "horizon_days": <the horizon it was fitted for>,
     "payload": <the model's to_state()>}

``load_model`` checks each field in turn and says which one is wrong, in which file, and what
to do; it never returns a model of another name, format or horizon. The payload is each
model's plain state (numpy arrays, frames, fitted scikit-learn estimators, Prophet's own JSON
per series), so nothing here knows one model from another. No file I/O here: bytes in, bytes
out; a file is only read from the run's own storage (joblib, like pickle, runs code on load).
"""

from __future__ import annotations

import io
from types import MappingProxyType
from typing import Any

import joblib
import numpy as np
import pandas as pd

from capacity_forecaster.core.catalog import FITTED_MODEL
from capacity_forecaster.core.errors import StageCheckError, StorageError
from capacity_forecaster.core.vocabulary import MODEL_NAMES
from capacity_forecaster.forecasting.models.base import ForecastModel
from capacity_forecaster.forecasting.models.registry import model_class

FORMAT = "capacity_forecaster.forecast_model"
VERSION = 1
# The storage key of each model's file, as the catalog names it.
MODEL_FILES: MappingProxyType[str, str] = MappingProxyType(
    {name: FITTED_MODEL.key_for(name) for name in MODEL_NAMES}
)
_RERUN = "rerun from 04_train to write it again"


def save_model(model: ForecastModel) -> bytes:
    """A fitted model as the envelope's bytes (no timestamps: the same state, the same bytes)."""
    if model.horizon_days_ is None:
        raise ValueError(f"{model.name}: not fitted, nothing to save")
    envelope = {
        "format": FORMAT,
        "version": VERSION,
        "model": model.name,
        "state_version": model.state_version,
        "horizon_days": model.horizon_days_,
        "payload": model.to_state(),
    }
    buffer = io.BytesIO()
    joblib.dump(envelope, buffer, compress=3)
    return buffer.getvalue()


def load_model(data: bytes, *, name: str, horizon_days: int | None = None) -> ForecastModel:
    """The fitted model ``name`` back from ``save_model``'s bytes.

    Raises StorageError when the bytes are not a saved model of that name in this format and
    version, and StageCheckError when ``horizon_days`` is given and the model was fitted for
    another horizon.
    """
    where = MODEL_FILES.get(name, f"the saved {name} model")
    envelope = _read_envelope(data, where)
    _check_envelope(envelope, name, where)
    cls = model_class(name)
    if envelope["state_version"] != cls.state_version:
        raise StorageError(
            f"{where}: {name} state version {envelope['state_version']!r}, this code reads "
            f"version {cls.state_version}; {_RERUN}"
        )
    saved_horizon = envelope["horizon_days"]
    if horizon_days is not None and saved_horizon != horizon_days:
        raise StageCheckError(
            f"{where}: the {name} model was fitted for a {saved_horizon}-day horizon, "
            f"{horizon_days} days expected; rerun from 04_train with that horizon"
        )
    model = cls.from_state(envelope["payload"])
    model.horizon_days_ = int(saved_horizon)
    return model


def _read_envelope(data: bytes, where: str) -> dict[str, Any]:
    try:
        envelope = joblib.load(io.BytesIO(data))
    except Exception as exc:  # unpickling garbage raises almost any error type
        raise StorageError(
            f"{where}: not a saved forecast model ({type(exc).__name__}: {exc}); {_RERUN}"
        ) from None
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        found = envelope.get("format") if isinstance(envelope, dict) else type(envelope).__name__
        raise StorageError(
            f"{where}: not a saved forecast model (format {found!r}, expected {FORMAT!r}); {_RERUN}"
        )
    return envelope


def _check_envelope(envelope: dict[str, Any], name: str, where: str) -> None:
    if envelope.get("version") != VERSION:
        raise StorageError(
            f"{where}: saved model format version {envelope.get('version')!r}, this code reads "
            f"version {VERSION}; {_RERUN}"
        )
    missing = {"model", "state_version", "horizon_days", "payload"} - set(envelope)
    if missing:
        raise StorageError(f"{where}: saved model lacks {sorted(missing)}; {_RERUN}")
    if envelope["model"] != name:
        raise StorageError(f"{where}: holds a {envelope['model']!r} model, not {name!r}")


def check_roundtrip(model: ForecastModel, data: bytes, dates: pd.DatetimeIndex) -> None:
    """Load a saved model back and prove it predicts exactly what the fitted one does."""
    before = model.predict(dates)
    after = load_model(data, name=model.name, horizon_days=model.horizon_days_).predict(dates)
    same = before.shape == after.shape and np.allclose(
        before["yhat"].to_numpy(), after["yhat"].to_numpy(), rtol=1e-9, atol=1e-9
    )
    if not same:
        raise StageCheckError(
            f"{MODEL_FILES[model.name]}: the saved {model.name} model does not predict what "
            "the fitted one did"
        )
