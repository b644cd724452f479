"""Fixtures of the differential tests against mkosi 27.1, and the suite's summary line."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import harness
import oracle
import pytest


@pytest.fixture(scope="session")
def mkosi_tool() -> tuple[list[str], dict[str, str]]:
    """The command line and environment running mkosi 27.1 (fetched from Debian sid when missing)."""
    return oracle.mkosi_command(oracle.ensure_oracle())


@pytest.fixture(scope="session")
def case_outcomes(request, mkosi_tool, tmp_path_factory) -> dict[str, "harness.Outcome"]:
    """The outcome of every selected case, run a few at a time (each case runs two processes
    that mostly wait to start up, so this is what keeps hundreds of cases within minutes)."""
    from concurrent.futures import ThreadPoolExecutor

    selected = [
        item.callspec.params["directory"]
        for item in request.session.items
        if getattr(item, "callspec", None) and "directory" in item.callspec.params
    ]
    base = tmp_path_factory.mktemp("cases")

    def run(index_directory):
        index, directory = index_directory
        case = harness.Case.load(directory)
        return case.name, harness.compare(case, base / str(index), mkosi_tool)

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return dict(pool.map(run, enumerate(selected)))


@pytest.fixture(scope="module")
def tools_for_mkosi(tmp_path_factory, default_tools_tree) -> Path:
    """kosi's default tools tree, as mkosi takes it: a hard-linked copy with an /etc/resolv.conf
    (mkosi refuses a tools tree without one; the shared tree itself is left alone)."""
    source = Path(default_tools_tree)
    target = tmp_path_factory.mktemp("tools") / "tree"
    subprocess.run(["cp", "-al", str(source), str(target)], check=True)
    (target / "etc/resolv.conf").unlink(missing_ok=True)
    (target / "etc/resolv.conf").touch()
    yield target
    shutil.rmtree(target, ignore_errors=True)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if harness.RESULTS:
        terminalreporter.write_line(harness.summary_line())
