"""kosi's start-up: which verbs become root, and the host directories build makes read-only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kosi import cli

REPO = Path(__file__).resolve().parents[1]


def test_only_image_verbs_need_root():
    assert {"build", "shell", "boot", "clean"} <= cli.ROOT_VERBS
    for quick in ("summary", "cat-config", "help", "completion", "documentation", "bump", "genkey"):
        assert quick not in cli.ROOT_VERBS, quick


@pytest.mark.skipif(os.getuid() != 0, reason="needs root for a mount namespace")
def test_protect_host_makes_system_directories_read_only_except_the_project(tmp_path):
    code = (
        "import os, sys; from kosi.cli import protect_host; protect_host([sys.argv[1]])\n"
        "for path in ('/etc/kosi-probe', '/usr/kosi-probe', sys.argv[1] + '/kosi-probe'):\n"
        "    try:\n"
        "        open(path, 'w').close(); os.unlink(path); print(path, 'writable')\n"
        "    except OSError as e:\n"
        "        print(path, e.errno)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True, check=True
    ).stdout.splitlines()
    assert out == ["/etc/kosi-probe 30", "/usr/kosi-probe 30", f"{tmp_path}/kosi-probe writable"]
    assert not Path("/etc/kosi-probe").exists()
