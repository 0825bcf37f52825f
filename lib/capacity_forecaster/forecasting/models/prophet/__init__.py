"""Stage 04/05 Prophet model: one Prophet per series (server x metric), fitted in parallel.

Each series gets a linear-growth Prophet with weekly seasonality, yearly seasonality when its
history spans at least ``min_yearly_days`` calendar days, and its holidays: the public and extra
holidays of its server's country, pooled, and one per window of the business calendar (month
end, quarter end, year end, the params' own), on that window's days in the server's country
(``holiday_tables``). Prophet's own uncertainty sampling is off: intervals are calibrated
elsewhere by conformal prediction, so only ``yhat`` is produced, clipped to [0, 100] percent.

Explicit fallback: a series with fewer than ``fitting.MIN_POINTS`` points, a constant series, or
one whose fit raises is not modelled; it is listed in ``skipped`` with the reason and
``predict`` returns its last observed value on every date (flat), so every series still gets
rows.

The modules, by concern:

- ``model``: ``ProphetModel``, which plans, fits, predicts and gives its saved state;
- ``fitting``: the series to fit, their settings and the worker tasks that fit them;
- ``holiday_tables``: each server's holiday country and the holiday frames fits use;
- ``predicting``: many Prophets predicted on one shared design matrix, and decoding saved ones.

Saving is ``models.persistence``'s, as for every model: the state holds each Prophet as its
own JSON (``prophet.serialize.model_to_json``), decoded lazily on the first predict. No file
I/O here: frames in, frames out.
"""

from __future__ import annotations

from capacity_forecaster.forecasting.models.prophet.holiday_tables import PUBLIC_HOLIDAY
from capacity_forecaster.forecasting.models.prophet.model import ProphetModel

__all__ = ["PUBLIC_HOLIDAY", "ProphetModel"]
