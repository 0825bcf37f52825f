"""clean_series: rare business windows and holidays protected; a synthetic fleet's injected
outliers found, its weekends and month ends not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.cleaning.calendar_features import row_countries
from capacity_forecaster.cleaning.clean import clean_series, protected_rows
from capacity_forecaster.cleaning.grid import to_long
from capacity_forecaster.cleaning.outliers import flag_outliers
from capacity_forecaster.core.params import SyntheticParams
from capacity_forecaster.core.params_calendar import CalendarParams
from capacity_forecaster.ingest.synthetic import generate_fleet
from tests.cleaning.builders import CALENDAR, NO_WINDOWS, PARAMS, SERVERS, series, wiggle

LAUNCH = CalendarParams(windows={"launch": {"kind": "dates", "dates": ["2025-02-12"]}})


@pytest.mark.parametrize(
    ("day", "calendar"),
    [
        ("2025-03-31", CALENDAR),  # Monday: the last business day of Q1 (quarter_end)
        ("2025-03-25", CALENDAR),  # the fifth-last (quarter_end only, not month_end)
        ("2025-02-12", LAUNCH),  # a dates window
        ("2025-02-17", NO_WINDOWS),  # Presidents' Day: a US holiday
    ],
)
def test_a_spike_on_a_protected_day_is_not_flagged(day: str, calendar: CalendarParams) -> None:
    values = wiggle(60)
    long = series("2025-02-01", values)
    at = int(np.flatnonzero(long["date"] == pd.Timestamp(day))[0])
    long.loc[at, "value"] = 95.0

    protected = protected_rows(long, row_countries(long, SERVERS), calendar)
    assert protected[at]
    assert flag_outliers(long, window=15, threshold=6.0).iloc[at]  # a spike without protection
    cleaned = clean_series(long, PARAMS, SERVERS, calendar)
    assert not cleaned["is_outlier"].any()
    assert cleaned["value"].iloc[at] == 95.0


def test_monthly_windows_are_not_protected_but_compared_with_other_months() -> None:
    # Two months of history: too few month ends to compare, so a spike on one is flagged.
    values = wiggle(60)
    long = series("2025-01-01", values)
    at = int(np.flatnonzero(long["date"] == pd.Timestamp("2025-01-31"))[0])  # month_end
    long.loc[at, "value"] = 95.0
    assert not protected_rows(long, row_countries(long, SERVERS), CALENDAR)[at]
    cleaned = clean_series(long, PARAMS, SERVERS, CALENDAR)
    assert cleaned.index[cleaned["is_outlier"]].tolist() == [at]


def test_cleaning_a_synthetic_fleet_flags_its_injected_outliers_not_its_weekends() -> None:
    # The generator injects its outliers after drawing the series, so the same seed without
    # them shows which values they replaced (no missing days: those would move too). Its
    # month-end load is genuine, in both.
    fleet = SyntheticParams(
        n_servers=20, days=400, outlier_share=0.005, missing_share=0.0, month_end_share=0.6
    )
    dirty, servers = generate_fleet(fleet, seed=3)
    truth, _ = generate_fleet(fleet.model_copy(update={"outlier_share": 0.0}), seed=3)
    cleaned = clean_series(to_long(dirty), PARAMS, servers, CALENDAR)
    injected = cleaned["value_raw"].to_numpy() != to_long(truth)["value"].to_numpy()
    flagged = cleaned["is_outlier"].to_numpy()

    assert injected.sum() > 100
    precision = (flagged & injected).sum() / flagged.sum()
    recall = (flagged & injected).sum() / injected.sum()
    # Before the same-weekday check, genuine weekend values were most of the flags here;
    # before the same-place-in-the-month checks, genuine month-end values.
    assert precision >= 0.95, f"precision {precision:.3f}"
    assert recall >= 0.75, f"recall {recall:.3f}"
