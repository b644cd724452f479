"""The linters pass (ruff check, ruff format --check off the pre-formatter list, mypy): run in
the fast tests so a change that breaks them is seen before it lands, not only in CI."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_lint_passes():
    result = subprocess.run([str(REPO / ".ci/lint")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert result.returncode == 0, result.stdout[-6000:]
