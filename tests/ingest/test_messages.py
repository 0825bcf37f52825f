"""Problem messages: at most three examples, always one line."""

from __future__ import annotations

import pytest

from capacity_forecaster.core.errors import DataValidationError
from tests.ingest.builders import with_values


def test_examples_are_capped_at_three() -> None:
    bad = ["a", "b", "c", "d", "e"]
    with pytest.raises(DataValidationError) as caught:
        with_values("cpu_p95", list(range(5)), bad)()
    message = str(caught.value)
    assert "5 non-numeric values" in message
    assert "'c'" in message and "'d'" not in message


def test_newlines_in_values_stay_on_one_line() -> None:
    with pytest.raises(DataValidationError) as caught:
        with_values("cpu_p95", [0], ["12\n13"])()
    assert "\n" not in str(caught.value)
    assert "'12\\n13'" in str(caught.value)
