"""run(): live output, captured error lines, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kosi.errors import KosiError
from kosi.sandbox import last_error_line, run
from kosi.sandbox.process import tool_name

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "stderr, expected",
    [
        (
            "Reading package lists...\nBuilding dependency tree...\nE: Unable to locate package foo\n",
            "E: Unable to locate package foo",
        ),
        (
            "E: Sub-process /usr/bin/dpkg returned an error code (1)\nhint: something\n",
            "E: Sub-process /usr/bin/dpkg returned an error code (1)",
        ),
        (
            "dpkg: error processing package foo (--configure):\n installed post-installation script returned 1\n"
            "Errors were encountered while processing:\n foo\n",
            "dpkg: error processing package foo (--configure):",
        ),
        ("\x1b[31merror: bad thing\x1b[0m\n\n-----\n", "error: bad thing"),
        ("just some output\nlast words\n", "last words"),
        (
            b"mkfs.ext4: No such file or directory while trying to determine filesystem size\n",
            "mkfs.ext4: No such file or directory while trying to determine filesystem size",
        ),
        ("", None),
        ("\n   \n", None),
    ],
)
def test_last_error_line(stderr, expected):
    assert last_error_line(stderr) == expected


def test_tool_name_skips_wrappers():
    assert tool_name(["env", "-i", "A=1", "/usr/bin/apt-get", "install"]) == "apt-get"
    assert tool_name([Path("/usr/bin/systemd-repart"), "--dry-run=no"]) == "systemd-repart"


def test_failure_without_capture_names_tool_and_status():
    with pytest.raises(KosiError) as e:
        run(["sh", "-c", "exit 3"])
    assert str(e.value) == "sh failed with exit status 3"


def test_missing_program():
    with pytest.raises(KosiError, match="no-such-program-kosi is not installed"):
        run(["no-such-program-kosi"])


def test_killed_by_signal():
    with pytest.raises(KosiError, match="was killed by SIGKILL"):
        run(["sh", "-c", "kill -9 $$"])


def test_tee_shows_stderr_live_and_keeps_it(capfd):
    result = run(
        ["sh", "-c", "echo out; echo 'W: warned' >&2; echo 'E: broken' >&2; exit 0"],
        tee_stderr=True,
        stdout=subprocess.PIPE,
    )
    assert result.stdout == b"out\n"
    assert result.stderr == b"W: warned\nE: broken\n"
    assert "W: warned\nE: broken\n" in capfd.readouterr().err
    with pytest.raises(KosiError, match=r"^python3 failed with exit status 1: E: broken$"):
        run(
            [
                "python3",
                "-c",
                "import sys; print(sys.stdin.read(), file=sys.stderr); print('E: broken', file=sys.stderr); sys.exit(1)",
            ],
            tee_stderr=True,
            input="fed\n",
        )
    assert "fed" in capfd.readouterr().err


def run_in_python(command: str, tee: bool) -> subprocess.Popen:
    """A Python process calling run(['sh', '-c', command])."""
    code = (
        f"import sys; sys.path.insert(0, {str(REPO)!r}); from kosi.sandbox import run\n"
        f"run(['sh', '-c', {command!r}], tee_stderr={tee})"
    )
    # The parent gets its own session so the SIGINT reaches only it, as a terminal's would reach both:
    # run() must kill the child itself.
    # It also gets a default SIGINT handler: run from a background job the test inherits SIGINT
    # ignored, and Python would then never raise KeyboardInterrupt.
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def assert_interrupted_without_child(parent: subprocess.Popen, child: Callable[[], int]) -> None:
    assert parent.wait(timeout=30) != 0
    assert parent.stderr is not None and b"KeyboardInterrupt" in parent.stderr.read()
    pid = child()
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}")


@pytest.mark.parametrize("tee", [False, True])
def test_ctrl_c_kills_the_child_and_propagates(tee):
    parent = run_in_python("echo $$ >&2; exec sleep 30", tee)
    assert parent.stderr is not None
    child = int(parent.stderr.readline())
    parent.send_signal(signal.SIGINT)
    assert_interrupted_without_child(parent, lambda: child)


@pytest.mark.parametrize("tee", [False, True])
def test_ctrl_c_while_the_child_starts_still_kills_it(tee, tmp_path):
    """The child interrupts its parent at once, likely before Popen has returned to run(): the
    Ctrl-C is held back until run() can stop the child it started."""
    pidfile = tmp_path / "pid"
    parent = run_in_python(f"echo $$ > {pidfile}; kill -INT $PPID; exec sleep 30", tee)
    assert_interrupted_without_child(parent, lambda: int(pidfile.read_text()))
