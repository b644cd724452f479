"""Helpers of the verb tests (a unique module name, see tests/config/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
KOSI = REPO / "bin" / "kosi"


def kosi(
    *argv: str, cwd: Path | None = None, check: bool = True, env: dict | None = None
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, str(KOSI), *argv],
        cwd=cwd,
        text=True,
        capture_output=True,
        env=dict(os.environ, NO_COLOR="1", **(env or {})),
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kosi {' '.join(argv)} failed ({result.returncode}): {result.stderr}")
    return result


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
