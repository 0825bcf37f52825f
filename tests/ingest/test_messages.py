"""Problem messages: at most three examples, always one printable line."""

from __future__ import annotations

import pytest

from capacity_forecaster.core.errors import DataValidationError
from capacity_forecaster.ingest.messages import one_line, unprintable, warn
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


def test_control_and_direction_characters_never_reach_the_line() -> None:
    # A bidirectional override in a message would reorder the rest of the terminal line.
    assert one_line("a\u202eb\x00c\td\u2028e\u2066f") == "a\\u202eb\\u0000c d\\u2028e\\u2066f"
    assert unprintable("web-1\u2069") == "U+2069" and unprintable("web-1 é ü") is None


def test_warnings_are_one_printable_line_too() -> None:
    warnings: list[str] = []
    warn(warnings, "m.csv", "server \u202ex\n")
    assert warnings == ["m.csv: server \\u202ex"]
