"""--debug-sandbox: the sandbox entry runs under strace, which shows the sandbox being built and
lets go of the command when the entry execs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import kosi.sandbox
from kosi.sandbox import sandbox_command, trace_sandboxes

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed"),
    pytest.mark.skipif(os.getuid() != 0, reason="needs root"),
]


@pytest.fixture
def tracing(monkeypatch):
    monkeypatch.setattr(kosi.sandbox, "_tracer", None)
    trace_sandboxes()
    assert kosi.sandbox._tracer is not None


def test_sandbox_setup_is_traced_and_the_command_is_not(tracing, tmp_path):
    (tmp_path / "data").write_text("payload\n")
    cmd = [
        *sandbox_command(mounts=[kosi.sandbox.Mount(tmp_path, "/srv/data", "ro-bind")]),
        "sh",
        "-c",
        "mkdir /tmp/made-by-the-command && cat /srv/data/data",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "payload\n"  # strace writes to stderr only
    trace = result.stderr
    assert "unshare(CLONE_NEWNS" in trace
    assert '"/tmp/srv/data", NULL, MS_BIND|MS_REC' in trace  # our bind mount, onto the new root
    assert 'pivot_root(".", ".")' in trace
    assert 'execve("/usr/bin/sh"' in trace
    # Detached at the command's execve: its own mkdir is not traced.
    assert "made-by-the-command" not in trace.split('execve("/usr/bin/sh"')[1].split("\n", 1)[1]


def test_without_the_option_nothing_is_traced(monkeypatch):
    monkeypatch.setattr(kosi.sandbox, "_tracer", None)
    result = subprocess.run([*sandbox_command(), "true"], capture_output=True, text=True)
    assert result.returncode == 0 and "unshare(" not in result.stderr


def test_missing_strace_is_one_warning(monkeypatch, capsys):
    monkeypatch.setattr(kosi.sandbox, "_tracer", None)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    trace_sandboxes()
    assert kosi.sandbox._tracer is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "strace is not installed" in err[0]


def test_debug_sandbox_on_the_command_line(tmp_path):
    """A real `kosi --debug-sandbox build`: the configure script runs in a traced sandbox (and
    then fails on purpose, so no image is built)."""
    (tmp_path / "mkosi.conf").write_text("[Distribution]\nDistribution=debian\nRelease=trixie\n")
    configure = tmp_path / "mkosi.configure"
    configure.write_text("#!/bin/sh\necho configure-ran >&2\nexit 3\n")
    configure.chmod(0o755)
    result = subprocess.run(
        [sys.executable, str(REPO / "bin/kosi"), "--debug-sandbox", "-C", str(tmp_path), "build"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "configure-ran" in result.stderr
    assert 'pivot_root(".", ".")' in result.stderr
    assert f'execve("{configure}"' in result.stderr
    assert "configure script" in result.stderr.splitlines()[-1]
