"""The bounded YAML loader of params files and --set values (capacity_forecaster.core.params_yaml)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

import run_all
from capacity_forecaster.core.errors import ParamsError
from capacity_forecaster.core.params import load_params
from capacity_forecaster.core.params_yaml import MAX_ALIASES, MAX_NODES, load_yaml


def laughs(levels: int) -> str:
    """A "billion laughs" of lists: each level is nine aliases of the level below."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for below, name in zip("abcdefgh", "bcdefghi"[: levels - 1], strict=False):
        lines.append(f"{name}: &{name} [{','.join([f'*{below}'] * 9)}]")
    return "\n".join(lines) + "\n"


def _refused(text: str, match: str) -> str:
    with pytest.raises(ParamsError, match=match) as info:
        load_yaml(text, "p.yaml")
    message = str(info.value)
    assert message.startswith("p.yaml") and "\n" not in message and len(message) < 300
    return message


def test_the_billion_laughs_is_refused_at_the_line_it_passes_the_bound() -> None:
    # 9 levels, 9**9 "lol"s: the 360-byte file that took 1.5 GB. Level 5 (9**5) passes 10,000.
    bomb = laughs(9)
    assert len(bomb) < 400
    message = _refused(bomb, f"more than {MAX_NODES} values once its aliases are expanded")
    assert message.startswith("p.yaml, line 5: ")


def test_too_many_aliases_are_refused() -> None:
    text = "x: &x 1\nmany: [" + ", ".join(["*x"] * (MAX_ALIASES + 1)) + "]\n"
    _refused(text, rf"p.yaml, line 2: more than {MAX_ALIASES} aliases")


def test_a_few_aliases_and_merge_keys_are_fine() -> None:
    text = "base: &base {k: 4, top_n: 5}\ncluster:\n  <<: *base\n  k: 6\nagain: *base\n"
    assert load_yaml(text, "p.yaml") == {
        "base": {"k": 4, "top_n": 5},
        "cluster": {"k": 6, "top_n": 5},
        "again": {"k": 4, "top_n": 5},
    }


def test_a_value_that_contains_itself_is_refused() -> None:
    _refused("run: &r {name: [*r]}\n", "an alias inside the value it refers to")


def test_deep_nesting_is_refused_before_pythons_stack_overflows() -> None:
    _refused("x: " + "[" * 2000 + "]" * 2000 + "\n", "nested more than 50 levels")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("forecast: {horizon_days: 90}\nrun: {}\nforecast: {}\n", "line 3: duplicate key 'forecast' (first at line 1)"),
        ("forecast:\n  horizon_days: 90\n  horizon_days: 120\n", "line 3: duplicate key 'horizon_days' (first at line 2)"),
        ("lags: {1: a, 0x1: b}\n", "duplicate key 1"),
    ],
)  # fmt: skip
def test_duplicate_keys_name_the_key_and_both_lines(text: str, message: str) -> None:
    _refused(text, re.escape(message))


def test_impossible_dates_are_refused_and_real_ones_read() -> None:
    message = _refused("end_date: 2026-02-30\n", r"line 1: '2026-02-30' is not a valid date")
    assert "day is out of range for month" in message and "YYYY-MM-DD" in message
    assert load_yaml("end_date: 2028-02-29\n", "p.yaml") == {"end_date": dt.date(2028, 2, 29)}


def test_other_unreadable_values_are_one_line() -> None:
    _refused("n_jobs: " + "9" * 5000 + "\n", "is too long a number")
    _refused("name: a\x01b\n", "not valid YAML: character 8")
    _refused("a: 1\n---\nb: 2\n", "line 2, column 1: expected a single document")


def test_a_one_line_value_has_no_line_number() -> None:
    with pytest.raises(ParamsError) as info:
        load_yaml("2026-02-30", "override 'x=2026-02-30'", with_lines=False)
    assert str(info.value).startswith("override 'x=2026-02-30': '2026-02-30' is not a valid date")


def test_params_files_and_overrides_go_through_the_bounded_loader(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(f"{laughs(5)}run: {{name: *e}}\n")
    with pytest.raises(ParamsError, match=rf"{path}, line 5: this value holds more"):
        load_params(path)
    path.write_text("run: {name: a}\n")
    with pytest.raises(ParamsError, match="duplicate key 'k'"):
        load_params(path, ["cluster={k: 3, k: 4}"])


@pytest.mark.parametrize(
    ("params_text", "extra_args"),
    [
        ("data:\n  synthetic:\n    end_date: 2026-02-30\n", []),
        ("run: {name: a}\n", ["--set", "data.synthetic.end_date=2026-02-30"]),
    ],
)
def test_an_impossible_date_ends_the_runner_with_one_line_and_exit_2(
    params_text: str, extra_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(params_text)
    code = run_all.main(["--params", str(path), *extra_args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "'2026-02-30' is not a valid date" in err
    assert not (tmp_path / "outputs").exists()
