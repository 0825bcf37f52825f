"""Calendar effects: the uplift of each calendar window's days, measured on raw values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.cleaning.calendar_effects import (
    EFFECT_COLUMNS,
    calendar_effects,
    check_calendar_effects,
)
from capacity_forecaster.core import catalog
from capacity_forecaster.core.errors import StageCheckError
from capacity_forecaster.core.params_calendar import CalendarParams
from capacity_forecaster.reporting.tables import recurring_peaks_table
from tests.cleaning.builders import CALENDAR, NO_WINDOWS, SERVERS, month_end_days, series, wiggle

N = 400  # 2025-01-01 to 2026-02-04: thirteen whole months with their month ends


def raw_frame() -> pd.DataFrame:
    """s1 rises 18 points at every month end, s2 never; both cleaned flat (``value``)."""
    month_end = month_end_days("2025-01-01", N)
    frame = pd.concat(
        [
            series("2025-01-01", wiggle(N, 30.0) + 18.0 * month_end, "s1"),
            series("2025-01-01", wiggle(N, 30.0), "s2"),
        ],
        ignore_index=True,
    )
    return frame.rename(columns={"value": "value_raw"}).assign(value=30.0)


def test_calendar_effects_measure_the_uplift_on_raw_values() -> None:
    frame = raw_frame()
    effects = calendar_effects(frame, SERVERS, CALENDAR)
    assert list(effects.columns) == list(EFFECT_COLUMNS)
    assert len(effects) == 2 * 3  # two series x three windows
    by = effects.set_index(["server_id", "window"])

    s1 = by.loc[("s1", "month_end")]
    assert s1["uplift_pts"] == pytest.approx(18.0, abs=1.0)
    assert s1["occurrences"] == 13 and s1["share_up"] == 1.0 and s1["clear"]
    s2 = by.loc[("s2", "month_end")]
    assert abs(s2["uplift_pts"]) < 1.0 and not s2["clear"]
    # The quarter end's five days hold the month end's two: 18 x 2/5.
    q1 = by.loc[("s1", "quarter_end")]
    assert q1["uplift_pts"] == pytest.approx(18.0 * 2 / 5, abs=1.0)
    assert q1["occurrences"] == 4  # March, June, September, December 2025
    # One December: seen once, not a clear recurring uplift whatever its size.
    y1 = by.loc[("s1", "year_end")]
    assert y1["occurrences"] == 1 and not y1["clear"]

    check_calendar_effects(effects, frame, CALENDAR)
    catalog.check_table(catalog.CALENDAR_EFFECTS, effects)
    # What the reports print of it.
    table = recurring_peaks_table(effects)
    assert table["Server"].tolist() == ["s1"]
    assert table["Recurring peaks"].iloc[0] == "month end +18 pts, quarter end +7 pts"


def test_a_small_or_unseen_uplift_is_not_clear() -> None:
    frame = raw_frame()
    month_end = np.tile(month_end_days("2025-01-01", N), 2)
    frame["value_raw"] -= 16.0 * month_end  # s1: +2 points, under MIN_UPLIFT_PTS
    launch = CalendarParams(windows={"launch": {"kind": "dates", "dates": ["2030-01-01"]}})
    effects = calendar_effects(frame, SERVERS, launch).set_index(["server_id", "window"])

    assert effects.loc[("s1", "month_end"), "uplift_pts"] == pytest.approx(2.0, abs=1.0)
    assert not effects["clear"].any()
    never = effects.loc[("s1", "launch")]
    assert never["occurrences"] == 0 and np.isnan(never["uplift_pts"])
    assert np.isnan(never["share_up"])


def test_no_windows_give_an_empty_typed_table_and_the_check_counts_rows() -> None:
    frame = raw_frame()
    empty = calendar_effects(frame, SERVERS, NO_WINDOWS)
    assert empty.empty and list(empty.columns) == list(EFFECT_COLUMNS)
    catalog.check_table(catalog.CALENDAR_EFFECTS, empty)
    check_calendar_effects(empty, frame, NO_WINDOWS)

    effects = calendar_effects(frame, SERVERS, CALENDAR)
    with pytest.raises(StageCheckError, match="5 rows, expected 6"):
        check_calendar_effects(effects.iloc[1:], frame, CALENDAR)
