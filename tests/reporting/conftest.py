"""Fixtures of the reporting tests: a small fleet's stage products (``report_fleet``)."""

from __future__ import annotations

import pytest

from tests.reporting import report_fleet
from tests.reporting.report_fleet import Fleet


@pytest.fixture
def fleet() -> Fleet:
    """Six servers in three business units: two high, two medium, two low."""
    return report_fleet.small_fleet()


@pytest.fixture
def hostile_fleet() -> Fleet:
    """Every server and business unit name is an injection attempt."""
    return report_fleet.hostile_fleet()
