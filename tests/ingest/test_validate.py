"""Stage 02 (ingest): bad input fails with one clear line; good input passes unchanged."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from capacity_forecaster.core.contract import (
    METRIC_COLUMNS,
    SERVER_REQUIRED_COLUMNS,
    monitored_metrics,
)
from capacity_forecaster.core.errors import DataValidationError
from capacity_forecaster.core.vocabulary import METRICS
from capacity_forecaster.ingest import validate
from capacity_forecaster.ingest.quality import quality_summary
from capacity_forecaster.ingest.retired import set_aside_records
from capacity_forecaster.ingest.validate import validate_fleet, validate_servers
from tests.ingest.builders import (
    M_SRC,
    MAX_MISSING,
    MIN_DAYS,
    S_SRC,
    check_metrics,
    make_metrics,
    make_servers,
    with_values,
)

STR_DTYPE = pd.Series(["x"]).dtype


def metrics_case(build: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[], object]:
    return lambda: check_metrics(build(make_metrics()))


def servers_case(build: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[], object]:
    return lambda: validate_servers(build(make_servers()), S_SRC)


def _drop_columns(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    return frame.drop(columns=list(columns))


def _duplicate_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame, frame.iloc[[3, 50]]], ignore_index=True)


def _times_collide(frame: pd.DataFrame) -> pd.DataFrame:
    extra = frame.iloc[[0]].copy()
    extra["date"] = extra["date"] + pd.Timedelta(hours=6)
    return pd.concat([frame, extra], ignore_index=True)


def _staggered(frame: pd.DataFrame) -> pd.DataFrame:
    # Overall 40 days, but every server only 20 of them.
    first = frame[(frame["server_id"] == "srv-00") & (frame["date"] < "2025-01-21")]
    second = frame[(frame["server_id"] == "srv-01") & (frame["date"] >= "2025-01-21")]
    return pd.concat([first, second], ignore_index=True)


def _nan_share(column: str, share: float) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def build(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[frame.index[: int(len(frame) * share)], column] = np.nan
        return frame

    return build


def _absent_days(frame: pd.DataFrame) -> pd.DataFrame:
    # Drop 30 of srv-01's 40 days but keep its first and last: 30 of 120 server-days absent.
    inner = frame[(frame["server_id"] == "srv-01")].index[1:31]
    return frame.drop(index=inner).reset_index(drop=True)


def _set(column: str, row: int, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def build(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = frame[column].astype(object)
        frame.at[row, column] = value
        return frame

    return build


def _unknown_server() -> object:
    frame = make_metrics(n_servers=4)
    return validate_fleet(
        frame, make_servers(n_servers=3), metrics_source=M_SRC, servers_source=S_SRC
    )


BAD_INPUTS: list[tuple[str, Callable[[], object], tuple[str, ...]]] = [
    # --- metrics
    ("no rows", metrics_case(lambda f: f.iloc[:0]), (M_SRC, "0 rows")),
    (
        "no metric column",
        metrics_case(lambda f: _drop_columns(f, "cpu_p95", "mem_p95", "disk_p95")),
        (M_SRC, "no metric column", "'cpu_p95'", "found 'date', 'server_id'"),
    ),
    (
        "two missing columns",
        metrics_case(lambda f: _drop_columns(f, "date", "disk_p95")),
        (M_SRC, "1 missing column", "'date'"),
    ),
    (
        "duplicate column names",
        metrics_case(lambda f: f.set_axis([*f.columns[:4], " cpu_p95"], axis=1)),
        (M_SRC, "duplicate column name 'cpu_p95' (columns 3 and 5)", "keep one"),
    ),
    (
        "unparseable dates",
        with_values("date", [1, 2], ["soon", "2025-13-45"]),
        (M_SRC, "column 'date'", "2 unparseable", "'soon'", "'2025-13-45'"),
    ),
    (
        "empty dates",
        with_values("date", [4, 5, 6], [None, "", "  "]),
        (M_SRC, "column 'date'", "3 empty values"),
    ),
    (
        "numeric dates",
        metrics_case(lambda f: f.assign(date=np.arange(len(f)) + 20250101)),
        (M_SRC, "column 'date'", "120 numeric values", "20250101"),
    ),
    (
        "date out of range",
        with_values("date", [7], ["3000-01-01"]),
        (M_SRC, "column 'date'", "1 unparseable or out-of-range date", "'3000-01-01'"),
    ),
    (
        "all dates empty",
        metrics_case(lambda f: f.assign(date=[None] * len(f))),
        (M_SRC, "column 'date'", "120 empty values", "(lines 2, 3, 4)"),
    ),
    (
        "empty server ids",
        with_values("server_id", [0, 9], [None, " "]),
        (M_SRC, "column 'server_id'", "2 empty values", "(lines 2, 11)"),
    ),
    (
        "non-numeric metric",
        with_values("cpu_p95", [1, 2, 3], ["n/a", "high", "high"]),
        (M_SRC, "column 'cpu_p95'", "3 non-numeric values", "'n/a'", "'high'"),
    ),
    (
        "decimal comma",
        with_values("mem_p95", [0], ["12,5"]),
        (M_SRC, "column 'mem_p95'", "1 non-numeric value", "'12,5'"),
    ),
    (
        "long example truncated",
        with_values("disk_p95", [0], ["x" * 500]),
        (M_SRC, "column 'disk_p95'", "1 non-numeric value", "x" * 30 + "…"),
    ),
    (
        "boolean metric",
        metrics_case(lambda f: f.assign(cpu_p95=f["cpu_p95"] > 50)),
        (M_SRC, "column 'cpu_p95'", "120 true/false values"),
    ),
    (
        "negative metric",
        with_values("mem_p95", [0, 1], [-3.0, -0.5]),
        (M_SRC, "column 'mem_p95'", "2 values below 0 percent", "-3", "-0.5"),
    ),
    (
        "metric above 100",
        with_values("disk_p95", [5], [140.5]),
        (M_SRC, "column 'disk_p95'", "1 value above 100 percent", "140.5", "data.over_100: clip"),
    ),
    (
        "infinite metric",
        with_values("cpu_p95", [5], ["inf"]),
        (M_SRC, "column 'cpu_p95'", "1 value infinite", "inf"),
    ),
    (
        "duplicate server-days",
        metrics_case(_duplicate_rows),
        (
            M_SRC,
            "'server_id', 'date'",
            "2 duplicate rows on 2 server-days",
            "the first 'srv-00' with 2 rows on 2025-01-04 (line 5 and line 122)",
            "remove the copies",
        ),
    ),
    (
        "duplicates after normalising times",
        metrics_case(_times_collide),
        (M_SRC, "'server_id', 'date'", "1 duplicate row", "2025-01-01"),
    ),
    (
        "single day",
        metrics_case(lambda f: f[f["date"] == f["date"].min()]),
        (M_SRC, "column 'date'", "only 1 day", "2025-01-01"),
    ),
    (
        "history too short",
        metrics_case(lambda f: f[f["date"] < "2025-01-21"]),
        (M_SRC, "column 'date'", "20 days of history", "min_history_days is 28"),
    ),
    (
        "every server too short",
        metrics_case(_staggered),
        (M_SRC, "column 'date'", "no server has 28 days", "longest 20 days"),
    ),
    (
        "too many NaN",
        metrics_case(_nan_share("cpu_p95", 0.2)),
        (M_SRC, "column 'cpu_p95' missing share 0.200", "24 of 120 server-days", "0.1"),
    ),
    (
        "too many absent days",
        metrics_case(_absent_days),
        (M_SRC, "column 'mem_p95' missing share 0.250", "30 of 120 server-days"),
    ),
    # --- servers
    ("servers no rows", servers_case(lambda f: f.iloc[:0]), (S_SRC, "0 rows")),
    (
        "servers missing column",
        servers_case(lambda f: _drop_columns(f, "criticality")),
        (S_SRC, "1 missing column", "'criticality'"),
    ),
    (
        "servers duplicate id",
        servers_case(lambda f: pd.concat([f, f.iloc[[1]]])),
        (S_SRC, "column 'server_id'", "1 duplicate value", "'srv-01'"),
    ),
    (
        "servers empty id",
        servers_case(_set("server_id", 2, None)),
        (S_SRC, "column 'server_id'", "1 empty value", "(line 4)"),
    ),
    (
        "servers zero cores",
        servers_case(_set("cpu_cores", 0, 0)),
        (S_SRC, "column 'cpu_cores'", "1 invalid value (must be finite and > 0)", "0"),
    ),
    (
        "servers negative cost",
        servers_case(_set("monthly_cost_usd", 1, -5.0)),
        (S_SRC, "column 'monthly_cost_usd'", "1 invalid value (must be finite and >= 0)", "-5"),
    ),
    (
        "servers text memory",
        servers_case(_set("memory_gb", 1, "32GB")),
        (S_SRC, "column 'memory_gb'", "1 non-numeric value", "'32GB'"),
    ),
    (
        "servers infinite memory",
        servers_case(_set("memory_gb", 0, float("inf"))),
        (S_SRC, "column 'memory_gb'", "1 invalid value", "inf"),
    ),
    (
        "servers empty disk",
        servers_case(_set("disk_gb", 2, None)),
        (S_SRC, "column 'disk_gb'", "1 empty value", "'srv-02'"),
    ),
    (
        "servers blank region",
        servers_case(_set("region", 1, "   ")),
        (S_SRC, "column 'region'", "1 empty value", "'srv-01'"),
    ),
    (
        "servers bad commissioned_date",
        servers_case(lambda f: f.assign(commissioned_date=["2020-01-01", "someday", None])),
        (S_SRC, "column 'commissioned_date'", "1 unparseable", "'someday'"),
    ),
    # --- fleet
    (
        "metrics server without metadata",
        _unknown_server,
        (M_SRC, S_SRC, "column 'server_id'", "1 server not in", "'srv-03'"),
    ),
]


@pytest.mark.parametrize(
    ("call", "fragments"),
    [pytest.param(call, fragments, id=name) for name, call, fragments in BAD_INPUTS],
)
def test_bad_input_names_source_column_and_count(
    call: Callable[[], object], fragments: tuple[str, ...]
) -> None:
    with pytest.raises(DataValidationError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_good_frame_passes_unchanged_with_contract_dtypes() -> None:
    good = make_metrics()
    clean, warnings = check_metrics(good.copy())
    assert warnings == []
    pd.testing.assert_frame_equal(clean, good)
    assert tuple(clean.columns) == METRIC_COLUMNS
    assert clean["date"].dtype == np.dtype("datetime64[ns]")
    assert clean["server_id"].dtype == STR_DTYPE
    assert all(clean[m].dtype == np.float64 for m in METRICS)


def test_loose_input_types_are_coerced_to_the_contract() -> None:
    good = make_metrics(n_servers=2)
    loose = good.assign(
        date=good["date"].dt.strftime("%Y-%m-%d").astype(object),
        server_id=good["server_id"].str.replace("srv-0", "").astype("int64"),
        cpu_p95=good["cpu_p95"].astype(str),
        mem_p95=good["mem_p95"].astype("float32"),
    )
    clean, warnings = check_metrics(loose)
    assert warnings == []
    assert clean["server_id"].unique().tolist() == ["0", "1"]
    assert clean["server_id"].dtype == STR_DTYPE
    assert clean["date"].dtype == np.dtype("datetime64[ns]")
    np.testing.assert_allclose(clean["cpu_p95"], good["cpu_p95"])
    np.testing.assert_allclose(clean["mem_p95"], good["mem_p95"], rtol=1e-6)


def test_values_a_hair_above_100_are_clipped_silently() -> None:
    frame = make_metrics()
    frame.loc[3, "cpu_p95"] = 100 + 1e-7
    clean, warnings = check_metrics(frame)
    assert warnings == []
    assert clean.loc[3, "cpu_p95"] == 100.0


def test_missing_share_at_the_threshold_passes() -> None:
    frame = make_metrics()
    frame.loc[: int(len(frame) * MAX_MISSING) - 1, "cpu_p95"] = np.nan
    clean, _ = check_metrics(frame)
    assert clean["cpu_p95"].isna().sum() == 12


def test_extra_columns_warn_and_are_dropped() -> None:
    frame = make_metrics().assign(note="x", host_name="h")
    clean, warnings = check_metrics(frame)
    assert tuple(clean.columns) == METRIC_COLUMNS
    assert len(warnings) == 1
    assert M_SRC in warnings[0] and "2 extra columns" in warnings[0]
    assert "'note'" in warnings[0] and "'host_name'" in warnings[0]


def test_times_of_day_are_normalised_with_a_warning() -> None:
    good = make_metrics()
    timed = good.assign(date=good["date"] + pd.Timedelta(hours=13))
    clean, warnings = check_metrics(timed)
    pd.testing.assert_frame_equal(clean, good)
    assert len(warnings) == 1 and "120 values with a time of day" in warnings[0]


def test_unsorted_rows_are_sorted_without_a_warning() -> None:
    good = make_metrics()
    shuffled = good.sample(frac=1, random_state=3).reset_index(drop=True)
    clean, warnings = check_metrics(shuffled)
    assert warnings == []
    pd.testing.assert_frame_equal(clean, good)


def test_short_history_server_is_dropped_with_a_warning() -> None:
    good = make_metrics(n_servers=3)
    young = good[(good["server_id"] != "srv-02") | (good["date"] >= "2025-01-31")]
    clean, warnings = check_metrics(young.reset_index(drop=True))
    assert sorted(clean["server_id"].unique()) == ["srv-00", "srv-01"]
    assert len(warnings) == 1
    assert "1 server with under 28 days" in warnings[0] and "'srv-02'" in warnings[0]
    pd.testing.assert_frame_equal(clean, good[good["server_id"] != "srv-02"].reset_index(drop=True))


def test_fractions_instead_of_percent_warn() -> None:
    frame = make_metrics()
    frame["mem_p95"] = frame["mem_p95"] / 100
    _, warnings = check_metrics(frame)
    assert len(warnings) == 1 and "'mem_p95'" in warnings[0] and "fractions" in warnings[0]


def test_servers_without_metrics_warn_and_are_dropped() -> None:
    clean_metrics, _ = check_metrics(make_metrics(n_servers=2))
    clean_servers, server_warnings = validate_servers(make_servers(n_servers=4), S_SRC)
    assert server_warnings == []
    out_metrics, out_servers, warnings = validate_fleet(
        clean_metrics, clean_servers, metrics_source=M_SRC, servers_source=S_SRC
    )
    assert out_servers["server_id"].tolist() == ["srv-00", "srv-01"]
    assert out_metrics is clean_metrics
    assert len(warnings) == 1
    assert "2 servers without metrics" in warnings[0] and "'srv-02'" in warnings[0]


def test_single_server_fleet_is_allowed() -> None:
    clean_metrics, _ = check_metrics(make_metrics(n_servers=1))
    clean_servers, _ = validate_servers(make_servers(n_servers=1), S_SRC)
    _, servers, warnings = validate_fleet(
        clean_metrics, clean_servers, metrics_source=M_SRC, servers_source=S_SRC
    )
    assert len(servers) == 1 and warnings == []


def test_servers_keep_integer_capacity_columns_integer() -> None:
    raw = make_servers().assign(
        cpu_cores=[8, 16, 4], memory_gb=np.array([32, 64, 16], dtype="int32")
    )
    clean, _ = validate_servers(raw, S_SRC)
    assert clean["cpu_cores"].dtype == np.int64 and clean["memory_gb"].dtype == np.int64
    assert clean["disk_gb"].dtype == np.float64


def test_servers_keep_extras_strip_text_and_parse_dates() -> None:
    raw = make_servers().assign(
        region=[" eu-west-1 ", "us-east-1", "NA"],
        cpu_cores=["8", "16", "4"],
        commissioned_date=["2020-01-15", None, "2021-06-01T00:00:00+00:00"],
    )
    clean, warnings = validate_servers(raw, S_SRC)
    assert set(SERVER_REQUIRED_COLUMNS) <= set(clean.columns) and "owner" in clean.columns
    assert clean["region"].tolist() == ["eu-west-1", "us-east-1", "NA"]
    assert clean["cpu_cores"].tolist() == [8.0, 16.0, 4.0]
    assert clean["cpu_cores"].dtype == np.float64
    assert clean["commissioned_date"].dtype == np.dtype("datetime64[ns]")
    assert clean["commissioned_date"].isna().tolist() == [False, True, False]
    assert any("commissioned_date" in w for w in warnings)


# --- over 100 %, and metrics a fleet does not monitor -------------------------------------


def _validate(frame: pd.DataFrame, **kwargs: object) -> validate.ValidatedMetrics:
    return validate.validate_metrics(
        frame, M_SRC, max_missing_share=MAX_MISSING, min_history_days=MIN_DAYS, **kwargs
    )


def test_values_over_100_are_clipped_and_counted_per_server_and_metric() -> None:
    frame = make_metrics()
    frame.loc[[0, 1, 2], "cpu_p95"] = [101.0, 116.0, 100.0]  # srv-00: 2 over, one at 100
    frame.loc[45, "mem_p95"] = 103.5  # srv-01
    validated = _validate(frame, over_100="clip")
    clean, warnings, clipped = validated.frame, validated.warnings, validated.clipped
    assert clipped == {"srv-00": {"cpu_p95": 2}, "srv-01": {"mem_p95": 1}}
    assert clean["cpu_p95"].iloc[:3].tolist() == [100.0, 100.0, 100.0]
    assert clean["mem_p95"].max() == 100.0
    cpu_warning = next(w for w in warnings if "'cpu_p95'" in w)
    assert "2 values above 100 percent clipped to 100 (max 116.0) on 1 server" in cpu_warning
    with pytest.raises(DataValidationError, match=r"2 values above 100 percent.*over_100: clip"):
        _validate(frame, over_100="fail")


def test_an_absent_or_empty_metric_is_not_monitored_and_kept_as_nan() -> None:
    frame = make_metrics().drop(columns="disk_p95").assign(mem_p95=np.nan)
    validated = _validate(frame)
    clean, warnings = validated.frame, validated.warnings
    assert list(clean.columns) == ["date", "server_id", *METRICS]
    assert clean["disk_p95"].isna().all() and clean["mem_p95"].isna().all()
    assert len(warnings) == 1
    assert "not monitored ('disk_p95' absent; 'mem_p95' empty)" in warnings[0]
    assert monitored_metrics(clean) == ["cpu_p95"]
    summary = quality_summary(clean, make_servers(), warnings)
    assert summary["metrics_monitored"] == ["cpu_p95"]
    assert summary["metrics"]["disk_p95"]["monitored"] is False


def test_a_server_that_never_reports_a_metric_is_named_not_counted_as_missing() -> None:
    frame = make_metrics(n_servers=4)
    frame.loc[frame["server_id"] == "srv-02", "disk_p95"] = np.nan  # a quarter of disk values
    validated = _validate(frame)  # max_missing_share 0.1 holds over the other 3
    clean, warnings = validated.frame, validated.warnings
    assert len(clean) == len(frame)
    assert any("'disk_p95': never reported by 1 server (e.g. 'srv-02')" in w for w in warnings)
    summary = quality_summary(clean, make_servers(4), warnings)
    assert summary["metrics"]["disk_p95"]["servers_not_reporting"] == ["srv-02"]
    assert summary["metrics"]["disk_p95"]["monitored"] is True


# --- all-zero days, powered-off and stale servers -----------------------------------------


def test_all_zero_days_are_left_out_and_do_not_count_as_missing() -> None:
    frame = make_metrics(n_servers=3, days=40)
    off = (frame["server_id"] == "srv-01") & (frame["date"] >= "2025-01-20")
    off &= frame["date"] < "2025-01-28"  # 8 of 40 days: 20 %, over max_missing_share 0.1
    frame.loc[off, list(METRICS)] = 0.0
    validated = _validate(frame, stale_after_days=7)
    assert len(validated.frame) == len(frame) - 8
    assert validated.all_zero_days == {"srv-01": 8}
    assert validated.set_aside.empty
    assert any("8 all-zero server-days" in w and "'srv-01'" in w for w in validated.warnings)


def test_powered_off_and_stale_servers_are_set_aside_with_their_last_day() -> None:
    frame = make_metrics(n_servers=4, days=40)
    frame.loc[frame["server_id"] == "srv-00", list(METRICS)] = 0.0  # powered off throughout
    retired = (frame["server_id"] == "srv-02") & (frame["date"] > "2025-01-31")
    frame = frame[~retired]  # srv-02 last reports on 2025-01-31, 9 days before the fleet's end
    validated = _validate(frame, stale_after_days=7)
    assert sorted(validated.frame["server_id"].unique()) == ["srv-01", "srv-03"]
    assert set_aside_records(validated.set_aside) == [
        {"server_id": "srv-00", "reason": "powered off", "last_seen": None, "all_zero_days": 40},
        {"server_id": "srv-02", "reason": "stale", "last_seen": "2025-01-31", "all_zero_days": 0},
    ]
    text = " ".join(validated.warnings)
    assert "1 server all-zero throughout, set aside as powered off (e.g. 'srv-00')" in text
    assert "'srv-02 last seen 2025-01-31'" in text and "data.stale_after_days" in text
    # Within the limit a late server is not stale: 7 days back is still current.
    assert _validate(frame, stale_after_days=9).set_aside["server_id"].tolist() == ["srv-00"]


def test_a_server_reporting_fractions_is_set_aside_not_judged_idle() -> None:
    frame = make_metrics(n_servers=4, days=40)
    fractions = frame["server_id"] == "srv-01"
    frame.loc[fractions, list(METRICS)] = frame.loc[fractions, list(METRICS)] / 100.0
    idle = frame["server_id"] == "srv-02"
    frame.loc[idle, "cpu_p95"] = 0.4  # an idle server: CPU under 1 %, memory still in use
    validated = _validate(frame, stale_after_days=7)
    assert sorted(validated.frame["server_id"].unique()) == ["srv-00", "srv-02", "srv-03"]
    assert set_aside_records(validated.set_aside) == [
        {
            "server_id": "srv-01",
            "reason": "values look like fractions (0-1): check the export's units",
            "last_seen": None,
            "all_zero_days": 0,
        }
    ]
    assert any("1 server with every value within 0..1" in w for w in validated.warnings)


# --- what the user wrote, named as written ------------------------------------------------


def _error(call: Callable[[], object]) -> str:
    with pytest.raises(DataValidationError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_several_samples_a_day_get_a_hint_towards_the_samples_format() -> None:
    # Hourly rows in the daily layout: 24 rows per server-day, each with its own values.
    good = make_metrics()
    hourly = pd.concat(
        [good.assign(date=good["date"] + pd.Timedelta(hours=h)) for h in range(24)],
        ignore_index=True,
    )
    hourly[list(METRICS)] = np.random.default_rng(1).uniform(0, 100, (len(hourly), len(METRICS)))
    message = _error(lambda: check_metrics(hourly))
    assert "2760 duplicate rows on 120 server-days" in message
    assert "the first 'srv-00' with 24 rows on 2025-01-01 (line 2 and line 122)" in message
    assert "write rows of timestamp, server_id, metric, value and set data.format: samples" in (
        message
    )


def test_a_stray_date_is_named_by_its_line_not_as_a_missing_share() -> None:
    # A mistyped year stretches one server's history by a year: on today's fleet that read as
    # "missing share 0.7" on every metric, with no hint of the one cell to fix.
    frame = make_metrics()
    frame.loc[41, "date"] = pd.Timestamp("2026-01-02")  # srv-01's second day
    message = _error(lambda: check_metrics(frame))
    assert message.startswith(
        f"{M_SRC}: column 'date': 2026-01-02 at line 43 (server 'srv-01') lies 327 days after "
        "the rest of its history, which ends 2025-02-09, so the days between count as missing "
        "(column 'cpu_p95' missing share 0.7"
    )
    assert message.endswith("data.max_missing_share 0.1): fix the date, or remove the row")


def test_stray_dates_at_the_start_are_counted_and_the_first_by_line_is_named() -> None:
    frame = make_metrics()
    frame.loc[[40, 80], "date"] = pd.Timestamp("1970-01-01")  # Excel's or Unix's day zero
    message = _error(lambda: check_metrics(frame))
    assert "1970-01-01 at line 42 (server 'srv-01') lies 20090 days before" in message
    assert "which starts 2025-01-02" in message
    assert "; 1 more date like it: fix the date, or remove the row" in message


def test_stray_dates_within_the_missing_share_are_kept_and_named_in_a_warning() -> None:
    # On a fleet of 20 servers the days between count as missing without failing the share:
    # the stray dates used to pass unnoticed.
    frame = make_metrics(n_servers=20)
    frame.loc[79, "date"] = pd.Timestamp("2025-03-15")  # srv-01's last day, a month late
    frame.loc[80, "date"] = pd.Timestamp("2024-11-20")  # srv-02's first day, six weeks early
    clean, warnings = check_metrics(frame)
    assert warnings == [
        f"{M_SRC}: column 'date': 2025-03-15 at line 81 (server 'srv-01') lies 35 days after "
        "the rest of its history, which ends 2025-02-08; kept, so the days between count as "
        "missing; 1 more date like it: if the date is wrong, fix it or remove the row"
    ]
    assert len(clean) == len(frame)  # kept, not dropped
    assert pd.Timestamp("2024-11-20") in set(clean.loc[clean["server_id"] == "srv-02", "date"])


def test_a_gap_that_is_not_a_few_stray_rows_is_still_a_missing_share() -> None:
    frame = make_metrics(days=80)
    kept = frame[~frame["date"].between("2025-01-10", "2025-02-28")]
    message = _error(lambda: check_metrics(kept.reset_index(drop=True)))
    assert message.startswith(f"{M_SRC}: column 'cpu_p95' missing share")


@pytest.mark.parametrize(
    "character", ["\n", "\t", "\x00", "\x1b", "\u202e", "\u202a", "\u2066", "\u2069"]
)
def test_server_ids_with_control_or_direction_characters_are_refused(character: str) -> None:
    bad_id = f"srv{character}-01"
    metrics = make_metrics()
    metrics["server_id"] = metrics["server_id"].replace("srv-01", bad_id)
    servers = make_servers()
    servers["server_id"] = servers["server_id"].replace("srv-01", bad_id)
    code = f"U+{ord(character):04X}"
    for message, source, line in (
        (_error(lambda: check_metrics(metrics)), M_SRC, 42),
        (_error(lambda: validate_servers(servers, S_SRC)), S_SRC, 3),
    ):
        assert message.startswith(f"{source}: column 'server_id': ")
        assert "with a control or text-direction character, the first 'srv" in message
        assert f"({code}) at line {line}: a server id must be printable text" in message
        assert character not in message  # the error line itself prints safely


def test_a_server_id_ending_in_a_newline_is_stripped_not_refused() -> None:
    metrics = make_metrics()
    metrics["server_id"] = metrics["server_id"].replace("srv-01", "srv-01\r\n")
    clean, warnings = check_metrics(metrics)
    assert warnings == [] and clean["server_id"].unique().tolist() == ["srv-00", "srv-01", "srv-02"]
