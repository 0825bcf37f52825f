"""Progress in the terminal while a stage runs: its newest log line, and the time left."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from capacity_forecaster.runner import pipeline, progress


def test_the_newest_line_with_the_seconds_and_the_time_left(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The lines go to the stderr the run started with (file descriptor 2, which the runner
    lends the kernel while a stage runs), whatever sys.stderr is then."""
    path = tmp_path / ".04_train.progress"
    logging.getLogger(progress.__name__).setLevel(logging.INFO)
    kernel_log = tmp_path / "04_train.kernel.log"
    with progress.reporting("04_train", path, every=0.2), pipeline._kernel_stderr_to(kernel_log):
        assert not path.exists()  # an earlier run's lines are gone
        for done in (0, 100, 200, 300):
            with path.open("a", encoding="utf-8") as handle:
                handle.write(f"prophet: {done}/600 series fitted\n")
            time.sleep(0.3)
    assert not path.exists()
    assert "04_train: " not in kernel_log.read_text(encoding="utf-8")
    lines = [line for line in capfd.readouterr().err.splitlines() if "04_train: " in line]
    assert lines
    assert any("prophet: 300/600 series fitted (about" in line for line in lines)
    estimate = [line for line in lines if "300/600" in line and "left" in line][-1]
    seconds_left = float(estimate.split("(about ")[1].split(" s left")[0])
    assert 0.3 <= seconds_left <= 3.0  # 100 series per 0.3 s, 300 to go: about 0.9 s


def test_a_line_without_a_count_has_no_estimate() -> None:
    rates = progress._Rates()
    assert rates.time_left("04_train: fitting gradient boosting", 1.0) is None
    assert rates.time_left("backtest: 1/15 model fits", 0.0) is None  # first seen
    assert rates.time_left("backtest: 4/15 model fits", 6.0) == pytest.approx(22.0)
    assert progress.describe("04_train", 12.4, "", None) == "04_train: 12 s"
    # A new step counting the same words from the start again, or to another total.
    assert rates.time_left("prophet: 444/444 series fitted", 30.0) is None
    assert rates.time_left("prophet: 112/447 series fitted", 40.0) is None
    assert rates.time_left("prophet: 212/447 series fitted", 50.0) == pytest.approx(23.5)
    assert rates.time_left("backtest: 1/15 model fits", 60.0) is None  # started again
    assert rates.time_left("backtest: 2/15 model fits", 62.0) == pytest.approx(26.0)


def test_last_line_of_a_missing_or_empty_file_is_empty(tmp_path: Path) -> None:
    assert progress.last_line(tmp_path / "absent") == ""
    (tmp_path / "empty").write_text("\n\n", encoding="utf-8")
    assert progress.last_line(tmp_path / "empty") == ""
