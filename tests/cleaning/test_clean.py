"""clean_series: business events protected; a synthetic fleet's injected outliers found, its weekends not."""

from __future__ import annotations

import pandas as pd

from capacity_forecaster.cleaning.clean import clean_series
from capacity_forecaster.cleaning.grid import to_long
from capacity_forecaster.cleaning.outliers import flag_outliers
from capacity_forecaster.core.calendar import quarter_end_window
from capacity_forecaster.core.params import SyntheticParams
from capacity_forecaster.ingest.synthetic import generate_fleet
from tests.cleaning.builders import PARAMS, SERVERS, series, wiggle


def test_quarter_end_spike_in_the_protected_window_is_not_flagged() -> None:
    values = wiggle(60)
    day = 30  # 2025-03-31, a Monday: the last business day of Q1
    values[day] = 95.0
    long = series("2025-03-01", values)
    assert long["date"].iloc[day] == pd.Timestamp("2025-03-31")

    protected = quarter_end_window(long["date"], PARAMS.quarter_end_business_days)
    assert protected[day]
    assert flag_outliers(long, window=15, threshold=6.0).iloc[day]  # a spike without protection
    assert not flag_outliers(long, window=15, threshold=6.0, protected=protected).any()

    cleaned = clean_series(long, PARAMS, SERVERS)
    assert not cleaned["is_outlier"].any()
    assert cleaned["value"].iloc[day] == 95.0


def test_cleaning_a_synthetic_fleet_flags_its_injected_outliers_not_its_weekends() -> None:
    # The generator injects its outliers after drawing the series, so the same seed without
    # them shows which values they replaced (no missing days: those would move too).
    fleet = SyntheticParams(n_servers=20, days=400, outlier_share=0.005, missing_share=0.0)
    dirty, servers = generate_fleet(fleet, seed=3)
    truth, _ = generate_fleet(fleet.model_copy(update={"outlier_share": 0.0}), seed=3)
    cleaned = clean_series(to_long(dirty), PARAMS, servers)
    injected = cleaned["value_raw"].to_numpy() != to_long(truth)["value"].to_numpy()
    flagged = cleaned["is_outlier"].to_numpy()

    assert injected.sum() > 100
    precision = (flagged & injected).sum() / flagged.sum()
    recall = (flagged & injected).sum() / injected.sum()
    # Before the same-weekday check, genuine weekend values were most of the flags here.
    assert precision >= 0.95, f"precision {precision:.3f}"
    assert recall >= 0.75, f"recall {recall:.3f}"
