"""Settings marked unsupported in the table: a non-default value warns, or fails when ignoring
it would weaken the image; `summary` still shows them (it only reports the configuration)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kosi.config import unsupported
from kosi.config.model import Config, Project
from kosi.config.settings import SETTINGS
from kosi.config.values import Feature
from kosi.errors import KosiError

REPO = Path(__file__).resolve().parents[2]


def test_marked_settings_say_why():
    marked = [s for s in SETTINGS if s.unsupported is not None]
    assert {"OutputSize", "ElTorito", "SignInitrdPCRs", "DiskType"} <= {s.name for s in marked}
    for setting in marked:
        assert setting.unsupported.strip(), setting.name
    assert all(s.unsupported for s in SETTINGS if s.unsupported_fails)


def test_default_values_pass_silently(capsys):
    unsupported.check(Project(images=[Config({"ElTorito": Feature.auto})]))
    assert capsys.readouterr().err == ""


def test_non_default_value_warns(capsys):
    unsupported.check(Project(images=[Config({"OutputSize": 4096})]))
    assert "OutputSize= is not supported by kosi" in capsys.readouterr().err


def test_weakening_value_fails():
    with pytest.raises(KosiError, match="SignInitrdPCRs= is not supported"):
        unsupported.check(Project(images=[Config({"SignInitrdPCRs": Feature.enabled})]))


def test_build_refuses_in_one_line_but_summary_shows_it(tmp_path):
    (tmp_path / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=debian\nRelease=trixie\n[Validation]\nSignInitrdPCRs=yes\n"
    )
    kosi = [sys.executable, str(REPO / "bin/kosi")]
    build = subprocess.run([*kosi, "build"], cwd=tmp_path, capture_output=True, text=True)
    assert build.returncode == 1
    lines = [line for line in build.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "mkosi.conf:5" in build.stderr and "SignInitrdPCRs=" in lines[0]
    assert "Traceback" not in build.stderr
    summary = subprocess.run([*kosi, "--json", "summary"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert '"SignInitrdPCRs": "enabled"' in summary.stdout
