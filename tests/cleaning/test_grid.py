"""to_long: a complete daily grid per series; later steps refuse frames off that grid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.cleaning.grid import to_long
from capacity_forecaster.cleaning.lag_features import add_lag_features
from capacity_forecaster.core.vocabulary import METRICS
from tests.cleaning.builders import metrics_frame, series, wiggle


def test_to_long_completes_the_daily_grid_per_series() -> None:
    wide = pd.DataFrame(
        {
            "date": pd.to_datetime(
                ["2025-01-01", "2025-01-02", "2025-01-04", "2025-01-02", "2025-01-03"]
            ),
            "server_id": ["s2", "s2", "s2", "s1", "s1"],
            "cpu_p95": [10.0, 11.0, 13.0, 20.0, 21.0],
            "mem_p95": [np.nan, 30.0, 31.0, 40.0, np.nan],
            "disk_p95": [50.0, 50.0, 50.0, 60.0, 60.0],
        }
    )
    long = to_long(wide)

    assert list(long.columns) == ["server_id", "metric", "date", "value"]
    assert long["date"].dtype == wide["date"].dtype
    # s2 cpu: 01..04 with 03 absent -> 4 rows, one NaN; s2 mem spans its first to last
    # observed day only (02..04); s1 mem observed once -> 1 row.
    s2_cpu = long[(long["server_id"] == "s2") & (long["metric"] == "cpu_p95")]
    assert s2_cpu["date"].dt.day.tolist() == [1, 2, 3, 4]
    assert s2_cpu["value"].isna().tolist() == [False, False, True, False]
    s2_mem = long[(long["server_id"] == "s2") & (long["metric"] == "mem_p95")]
    assert s2_mem["date"].dt.day.tolist() == [2, 3, 4]
    assert s2_mem["value"].tolist()[0] == 30.0 and np.isnan(s2_mem["value"].iloc[1])
    assert len(long[(long["server_id"] == "s1") & (long["metric"] == "mem_p95")]) == 1
    assert len(long) == 2 + 2 + 1 + 4 + 4 + 3
    expected = long.sort_values(["server_id", "metric", "date"], ignore_index=True)
    pd.testing.assert_frame_equal(long, expected)
    assert long["metric"].unique().tolist() == sorted(METRICS)


def test_to_long_rejects_duplicate_server_days() -> None:
    wide = metrics_frame("2025-01-01", np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="1 duplicate"):
        to_long(pd.concat([wide, wide.iloc[[0]]]))


def test_functions_reject_frames_off_the_daily_grid() -> None:
    broken = series("2025-01-01", wiggle(10)).drop(index=4)
    with pytest.raises(ValueError, match="daily grid"):
        add_lag_features(broken, lags=(1,), windows=(2,))
