"""Split-conformal intervals on residuals drawn from known distributions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.core import scoring
from capacity_forecaster.forecasting import intervals

LEVEL = 0.8
Z_90 = 1.2816  # the standard normal's 90 % quantile: an 80 % central interval is +-Z_90


def _rows(
    rng: np.random.Generator,
    horizons: np.ndarray,
    sd: float,
    *,
    model: str = "m",
    yhat: float = 50.0,
    scale: float = 1.0,
) -> pd.DataFrame:
    """Backtest-like rows whose scaled residuals are N(0, sd)."""
    n = len(horizons)
    return pd.DataFrame(
        {
            "model": model,
            "metric": "cpu_p95",
            "horizon": horizons,
            "yhat": yhat,
            "scale": scale,
            "actual": yhat + scale * rng.normal(0.0, sd, n),
        }
    )


def _normal_backtest(seed: int, per_bucket: int = 2000) -> pd.DataFrame:
    """Buckets 0 (1-7 d), 1 (8-14 d) and 2 (15-30 d) with residual sd 1, 2 and 3."""
    rng = np.random.default_rng(seed)
    parts = [
        _rows(rng, rng.integers(low, high + 1, per_bucket), sd)
        for (low, high), sd in (((1, 7), 1.0), ((8, 14), 2.0), ((15, 30), 3.0))
    ]
    return pd.concat(parts, ignore_index=True)


def test_horizon_buckets() -> None:
    buckets = intervals.horizon_bucket(np.array([1, 7, 8, 14, 15, 30, 31, 180, 181, 365]))
    assert list(buckets) == [0, 0, 1, 1, 2, 2, 3, 7, 8, 8]


def test_calibrated_quantiles_match_the_normal_distribution() -> None:
    table = intervals.calibrate(_normal_backtest(seed=1), LEVEL).set_index("bucket")
    assert list(table.index) == [0, 1, 2]
    assert (table["n"] == 2000).all()
    for bucket, sd in ((0, 1.0), (1, 2.0), (2, 3.0)):
        assert table.loc[bucket, "q_lower"] == pytest.approx(-Z_90 * sd, abs=0.1 * sd)
        assert table.loc[bucket, "q_upper"] == pytest.approx(Z_90 * sd, abs=0.1 * sd)


def test_calibration_uses_scaled_residuals() -> None:
    rng = np.random.default_rng(2)
    # Residuals of sd 4 on a series whose scale is 4: scaled, they are N(0, 1).
    table = intervals.calibrate(_rows(rng, rng.integers(1, 8, 2000), 1.0, scale=4.0), LEVEL)
    assert table["q_upper"].iloc[0] == pytest.approx(Z_90, abs=0.1)


def test_thin_bucket_borrows_the_pooled_quantiles() -> None:
    rng = np.random.default_rng(3)
    backtest = pd.concat(
        [
            _rows(rng, rng.integers(1, 8, 2000), 1.0),
            _rows(rng, np.full(intervals.MIN_RESIDUALS - 1, 10), 50.0),
        ],
        ignore_index=True,
    )
    table = intervals.calibrate(backtest, LEVEL).set_index("bucket")
    residuals = (backtest["actual"] - backtest["yhat"]) / backtest["scale"]
    assert table.loc[1, "q_upper"] == pytest.approx(residuals.quantile(0.9))
    assert table.loc[1, "q_lower"] == pytest.approx(residuals.quantile(0.1))


def test_apply_gives_ordered_bounds_with_the_right_coverage() -> None:
    calibration = intervals.calibrate(_normal_backtest(seed=1), LEVEL)
    fresh = _normal_backtest(seed=2, per_bucket=20_000)
    result = intervals.apply(fresh.drop(columns="actual"), calibration)

    assert (result["yhat_lower"] <= result["yhat"]).all()
    assert (result["yhat"] <= result["yhat_upper"]).all()
    assert result["yhat_lower"].between(0, 100).all() and result["yhat_upper"].between(0, 100).all()
    inside = (fresh["actual"] >= result["yhat_lower"]) & (fresh["actual"] <= result["yhat_upper"])
    for bucket, covered in inside.groupby(intervals.horizon_bucket(fresh["horizon"])):
        assert 0.77 <= covered.mean() <= 0.83, bucket
    assert (
        0.77
        <= scoring.coverage(fresh["actual"], result["yhat_lower"], result["yhat_upper"])
        <= 0.83
    )
    # Wider buckets, wider intervals.
    width = (
        (result["yhat_upper"] - result["yhat_lower"])
        .groupby(intervals.horizon_bucket(fresh["horizon"]))
        .mean()
    )
    assert width.is_monotonic_increasing


def test_apply_clips_to_the_physical_range() -> None:
    calibration = intervals.calibrate(_normal_backtest(seed=1), LEVEL).set_index("bucket")
    forecasts = pd.DataFrame(
        {
            "model": "m",
            "metric": "cpu_p95",
            "horizon": [1, 1, 20, 20],
            "yhat": [99.5, 0.5, 100.0, 0.0],
            "scale": 5.0,
        }
    )
    result = intervals.apply(forecasts, calibration.reset_index())
    near, far = calibration.loc[0], calibration.loc[2]
    np.testing.assert_allclose(
        result["yhat_upper"], [100.0, 0.5 + 5 * near["q_upper"], 100.0, 5 * far["q_upper"]]
    )
    np.testing.assert_allclose(
        result["yhat_lower"], [99.5 + 5 * near["q_lower"], 0.0, 100.0 + 5 * far["q_lower"], 0.0]
    )
    assert (
        (result["yhat_lower"] <= result["yhat"]) & (result["yhat"] <= result["yhat_upper"])
    ).all()


def test_horizon_beyond_the_calibrated_buckets_uses_the_widest() -> None:
    calibration = intervals.calibrate(_normal_backtest(seed=1), LEVEL)
    widest = calibration.set_index("bucket").loc[2]
    forecasts = pd.DataFrame(
        {
            "model": "m",
            "metric": "cpu_p95",
            "horizon": [25, 45, 120, 400],
            "yhat": 50.0,
            "scale": 1.0,
        }
    )
    result = intervals.apply(forecasts, calibration)
    np.testing.assert_allclose(result["yhat_upper"], 50 + widest["q_upper"])
    np.testing.assert_allclose(result["yhat_lower"], 50 + widest["q_lower"])


def test_past_the_scored_horizon_intervals_grow_as_the_scored_ones_did() -> None:
    # Spread 1, 2, 3 at about 4, 11 and 22 days ahead: width grows as days ** 0.64.
    calibration = intervals.calibrate(_normal_backtest(seed=1), LEVEL)
    [exponent] = intervals.growth_exponents(calibration)["exponent"]
    assert exponent == pytest.approx(0.64, abs=0.03)
    widest = calibration.set_index("bucket").loc[2]
    forecasts = pd.DataFrame(
        {"model": "m", "metric": "cpu_p95", "horizon": [20, 30, 120], "yhat": 50.0, "scale": 1.0}
    )
    result = intervals.apply(forecasts, calibration, scored_horizon_days=30)
    growth = np.array([1.0, 1.0, 4.0**exponent])  # past day 30 only
    np.testing.assert_allclose(result["yhat_upper"], 50 + widest["q_upper"] * growth)
    np.testing.assert_allclose(result["yhat_lower"], 50 + widest["q_lower"] * growth)


@pytest.mark.parametrize(("spread", "expected"), [("flat", 0.5), ("sqrt", 0.5), ("linear", 1.0)])
def test_the_growth_exponent_lies_between_a_random_walk_and_a_drift(
    spread: str, expected: float
) -> None:
    rng = np.random.default_rng(3)
    horizon = rng.integers(1, 31, 6000)
    sd = {"flat": np.ones(6000), "sqrt": np.sqrt(horizon), "linear": horizon / 4}[spread]
    calibration = intervals.calibrate(_rows(rng, horizon, sd), LEVEL)
    [exponent] = intervals.growth_exponents(calibration)["exponent"]
    assert exponent == pytest.approx(expected, abs=0.08)


def test_a_model_without_calibration_is_an_error() -> None:
    calibration = intervals.calibrate(_normal_backtest(seed=1), LEVEL)
    forecasts = pd.DataFrame(
        {"model": ["m", "other"], "metric": "cpu_p95", "horizon": 3, "yhat": 50.0, "scale": 1.0}
    )
    with pytest.raises(ValueError, match="other/cpu_p95"):
        intervals.apply(forecasts, calibration)
    with pytest.raises(ValueError, match="m/mem_p95"):
        intervals.apply(forecasts.assign(model="m", metric="mem_p95"), calibration)


def _gap_calibration() -> pd.DataFrame:
    """Model "a" calibrated on buckets 0 (+-1) and 2 (+-3), never on bucket 1; model "b" on +-10."""
    return pd.DataFrame(
        {
            "model": ["a", "a", "b"],
            "metric": "cpu_p95",
            "bucket": [0, 2, 0],
            "q_lower": [-1.0, -3.0, -10.0],
            "q_upper": [1.0, 3.0, 10.0],
            "n": 100,
        }
    )


def test_unfilled_bucket_borrows_the_shorter_one_when_rows_are_in_horizon_order() -> None:
    forecasts = pd.DataFrame(
        {"model": "a", "metric": "cpu_p95", "horizon": [3, 10, 20], "yhat": 50.0, "scale": 1.0}
    )
    result = intervals.apply(forecasts, _gap_calibration())
    assert list(result["yhat_upper"]) == [51.0, 51.0, 53.0]


@pytest.mark.parametrize(
    "model, horizon",
    [(["a", "a"], [20, 10]), (["a", "b"], [10, 3])],
    ids=["longer-bucket-first", "other-model-after"],
)
def test_unfilled_bucket_borrows_the_nearest_shorter_bucket_in_any_row_order(
    model: list[str], horizon: list[int]
) -> None:
    forecasts = pd.DataFrame(
        {"model": model, "metric": "cpu_p95", "horizon": horizon, "yhat": 50.0, "scale": 1.0}
    )
    result = intervals.apply(forecasts, _gap_calibration()).set_index(["model", "horizon"])
    assert result.loc[("a", 10), "yhat_upper"] == 51.0  # bucket 1 borrows bucket 0 of model "a"


def test_cross_validate_calibrates_each_origin_on_the_others_only() -> None:
    origins = pd.to_datetime(["2026-01-01", "2026-02-01", "2026-03-01"])

    def backtest(odd_sd: float) -> pd.DataFrame:
        """Origins 0 and 1 with residual sd 1; origin 2, the odd one, with ``odd_sd``."""
        parts = []
        for i, origin in enumerate(origins):
            draw = np.random.default_rng(i)  # the same normal draws for an origin, whatever its sd
            parts.append(
                _rows(draw, np.tile(np.arange(1, 8), 100), odd_sd if i == 2 else 1.0).assign(
                    origin=origin
                )
            )
        # Shuffled, so that "rows come back in the input's order" means something.
        return pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=0)

    wide, wider = backtest(8.0), backtest(30.0)
    result_wide = intervals.cross_validate(wide, LEVEL)
    result_wider = intervals.cross_validate(wider, LEVEL)

    # Rows come back in the input's order, with intervals.
    assert result_wide.index.equals(wide.index)
    assert {"yhat_lower", "yhat_upper"} <= set(result_wide.columns)

    last_wide = result_wide[result_wide["origin"] == origins[2]]
    last_wider = result_wider[result_wider["origin"] == origins[2]]
    # The odd origin's own residuals do not move its intervals: only the other two calibrate it...
    np.testing.assert_array_equal(
        last_wide["yhat_upper"].to_numpy(), last_wider["yhat_upper"].to_numpy()
    )
    others = wide[wide["origin"] != origins[2]]
    expected = intervals.calibrate(others, LEVEL)
    assert (last_wide["yhat_upper"] - 50).max() == pytest.approx(expected["q_upper"].iloc[0])
    # ...so they are narrow (about +-1.28) and cover it poorly, which is what honest coverage shows.
    assert (last_wide["yhat_upper"] - 50).max() < 2
    assert (
        scoring.coverage(last_wide["actual"], last_wide["yhat_lower"], last_wide["yhat_upper"])
        < 0.5
    )
    # The other origins are calibrated with the odd one included, so its residuals widen them.
    first_wide = result_wide[result_wide["origin"] == origins[0]]
    first_wider = result_wider[result_wider["origin"] == origins[0]]
    assert (first_wider["yhat_upper"] > first_wide["yhat_upper"]).all()


def test_cross_validate_needs_two_origins() -> None:
    rng = np.random.default_rng(5)
    backtest = _rows(rng, np.arange(1, 8), 1.0).assign(origin=pd.Timestamp("2026-01-01"))
    with pytest.raises(ValueError, match="two backtest origins"):
        intervals.cross_validate(backtest, LEVEL)


def _origin_rows(sd_by_origin: dict[pd.Timestamp, float], model: str, **columns) -> pd.DataFrame:
    """Rows of ``model`` per origin with residual sd ``sd_by_origin[origin]``."""
    parts = []
    for i, (origin, sd) in enumerate(sd_by_origin.items()):
        draw = np.random.default_rng(i)
        parts.append(
            _rows(draw, np.tile(np.arange(1, 8), 200), sd, model=model).assign(
                origin=origin, **{k: v(origin) for k, v in columns.items()}
            )
        )
    return pd.concat(parts, ignore_index=True)


ORIGINS = list(pd.to_datetime(["2026-01-01", "2026-02-01", "2026-03-01"]))
LAST_DAY = pd.Timestamp("2026-04-01")


def _season_case() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Backtest rows of models "a" and "b" (sd 1 at every origin), and season rows of "a" only,
    with an sd of its own for each origin they calibrate (the forecast's origin included)."""
    backtest = pd.concat(
        [_origin_rows(dict.fromkeys(ORIGINS, 1.0), model) for model in ("a", "b")],
        ignore_index=True,
    )
    season_sd = dict(zip([*ORIGINS, LAST_DAY], (2.0, 4.0, 8.0, 16.0), strict=True))
    season = _origin_rows(
        {target - pd.Timedelta(days=364): sd for target, sd in season_sd.items()},
        "a",
        for_origin=lambda origin: origin + pd.Timedelta(days=364),
    )
    return backtest, season


def test_season_rows_calibrate_their_models_for_the_origin_they_are_marked_for() -> None:
    backtest, season = _season_case()
    result = intervals.cross_validate(backtest, LEVEL, season)
    plain = intervals.cross_validate(backtest, LEVEL)
    for origin in ORIGINS:
        mine = season[season["for_origin"] == origin]
        expected = intervals.calibrate(mine, LEVEL)["q_upper"].iloc[0]
        rows = result[(result["model"] == "a") & (result["origin"] == origin)]
        assert (rows["yhat_upper"] - 50).max() == pytest.approx(expected)
    # About +-1.28 sd of the season rows for each origin: 2.6, 5.1 and 10.3 points wide.
    half_widths = [
        (result.loc[(result["model"] == "a") & (result["origin"] == o), "yhat_upper"] - 50).max()
        for o in ORIGINS
    ]
    assert half_widths == pytest.approx([Z_90 * 2, Z_90 * 4, Z_90 * 8], rel=0.1)
    # A model without season rows is calibrated on the other origins, as before.
    b = result["model"] == "b"
    pd.testing.assert_frame_equal(result[b], plain[b])


def test_the_forecast_uses_season_rows_for_the_last_day_and_all_origins_otherwise() -> None:
    backtest, season = _season_case()
    table = intervals.forecast_calibration(backtest, LEVEL, season, LAST_DAY).set_index("model")
    assert table.loc["a", "q_upper"] == pytest.approx(Z_90 * 16, rel=0.1)
    assert table.loc["b", "q_upper"] == pytest.approx(
        intervals.calibrate(backtest[backtest["model"] == "b"], LEVEL)["q_upper"].iloc[0]
    )
    # Without season rows every model is calibrated on the backtest origins.
    plain = intervals.forecast_calibration(backtest, LEVEL, None, LAST_DAY)
    pd.testing.assert_frame_equal(plain, intervals.calibrate(backtest, LEVEL))


def test_a_season_model_without_rows_for_an_origin_is_an_error() -> None:
    backtest, season = _season_case()
    with pytest.raises(ValueError, match=r"no season rows for \['a'\] at origin 2026-04-01"):
        intervals.forecast_calibration(
            backtest, LEVEL, season[season["for_origin"] != LAST_DAY], LAST_DAY
        )


def test_describe_sources_names_each_models_calibration() -> None:
    _, season = _season_case()
    described = intervals.describe_sources(["a", "b"], season)
    assert described["a"].startswith("the same season a year earlier")
    assert described["b"].startswith("the backtest origins")
    assert intervals.describe_sources(["a"], season.iloc[0:0])["a"].startswith("the backtest")
