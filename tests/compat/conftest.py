"""Fixtures of the differential tests against mkosi 27.1, and the suite's summary line."""

from __future__ import annotations

import harness
import oracle
import pytest


@pytest.fixture(scope="session")
def mkosi_tool() -> tuple[list[str], dict[str, str]]:
    """The command line and environment running mkosi 27.1 (fetched from Debian sid when missing)."""
    return oracle.mkosi_command(oracle.ensure_oracle())


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if harness.RESULTS:
        terminalreporter.write_line(harness.summary_line())
