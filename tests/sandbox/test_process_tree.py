"""Stopping a sandbox stops everything it started: each sandbox is a PID namespace whose init
dies with the process kosi waits for (kosi.sandbox.enter), so daemons that left the process
group and session (setsid, double fork) go with it, and kosi returns only once they are gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kosi.errors import KosiError
from kosi.sandbox import run, sandbox_command
from kosi.sandbox.process import stop

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="namespaces need root (or become_root())")

REPO = Path(__file__).resolve().parent.parent.parent


def marker() -> str:
    return f"876.{os.getpid()}{time.monotonic_ns() % 10**6}"


def processes_with(mark: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes() == f"sleep\0{mark}\0".encode():
                found.append(int(pid))
        except OSError:
            pass
    return found


def daemon_then_block(mark: str) -> list[str]:
    """A daemon out of our session and process group, and a blocking foreground process."""
    return ["sh", "-c", f"setsid sh -c 'sleep {mark} & exit 0' </dev/null >/dev/null 2>&1; exec sleep {mark}"]


def wait_for(mark: str, count: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while len(processes_with(mark)) < count:
        assert process.poll() is None, "the sandbox ended early"
        assert time.monotonic() < deadline, "the sandboxed processes never started"
        time.sleep(0.02)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stopping_a_sandbox_stops_its_whole_tree(signum):
    mark = marker()
    # A default SIGINT handler even when this suite runs as a background job, which inherits
    # SIGINT ignored (the sandbox keeps an ignored signal ignored, as a shell does).
    process = subprocess.Popen(
        [*sandbox_command(), *daemon_then_block(mark)], preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)
    )
    try:
        wait_for(mark, 2, process)
        process.send_signal(signum)  # passed on to the command, which ends; init takes the rest
        assert process.wait(timeout=10) == -signum  # exits as the command did
        assert processes_with(mark) == []  # already gone when the sandbox's own process ended
    finally:
        stop(process)


def test_a_command_that_ignores_the_signal_is_killed_after_the_grace_time():
    mark = marker()
    script = f"trap '' TERM INT; setsid sh -c 'sleep {mark} & exit 0' </dev/null >/dev/null 2>&1; sleep {mark}; true"
    process = subprocess.Popen([*sandbox_command(), "sh", "-c", script])
    try:
        wait_for(mark, 2, process)
        started = time.monotonic()
        stop(process)  # SIGTERM, ignored: the sandbox is killed after its grace time
        assert process.returncode == -signal.SIGKILL
        assert time.monotonic() - started < 10
        assert processes_with(mark) == []
    finally:
        stop(process)


def test_daemons_end_with_the_command():
    mark = marker()
    run(["sh", "-c", f"setsid sh -c 'sleep {mark} & exit 0' </dev/null >/dev/null 2>&1"], sandbox=sandbox_command())
    assert processes_with(mark) == []


def test_exit_status_and_signal_pass_through():
    assert run(["sh", "-c", "exit 7"], sandbox=sandbox_command(), check=False).returncode == 7
    with pytest.raises(KosiError, match="sh was killed by SIGTERM"):
        run(["sh", "-c", "kill -TERM $$"], sandbox=sandbox_command())
    missing = run(["no-such-tool-kosi"], sandbox=sandbox_command(), check=False, stderr=subprocess.PIPE)
    assert missing.returncode == 127 and b"command not found" in missing.stderr


def test_tools_see_a_chroot_and_their_own_processes_only():
    result = run(
        ["sh", "-c", "ischroot; echo $?; ls /proc | grep -c '^[0-9]'"],
        sandbox=sandbox_command(),
        stdout=subprocess.PIPE,
    )
    in_chroot, count = result.stdout.decode().split()
    assert in_chroot == "0"  # as before the PID namespace: /proc/1/root is not our /
    assert int(count) <= 5  # init, sh, ls, grep: nothing of the host


def test_killed_supervisor_takes_the_sandbox_along_and_is_waited_for():
    """subprocess.run kills with SIGKILL on Ctrl-C: the supervisor cannot pass anything on, but
    init dies with it, and kosi (the subreaper) waits for what is left before it goes on."""
    mark = marker()
    code = f"""
import subprocess, sys, time
sys.path.insert(0, {str(REPO)!r})
from kosi.sandbox import sandbox_command
from kosi.sandbox.process import adopt_orphans, wait_for_sandboxes
adopt_orphans()
p = subprocess.Popen([*sandbox_command(), *{daemon_then_block(mark)!r}])
sys.stdout.write(str(p.pid) + "\\n"); sys.stdout.flush()
sys.stdin.readline()
p.kill(); p.wait()
wait_for_sandboxes()
print("waited", flush=True)
"""
    parent = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None and parent.stdin is not None
        supervisor = int(parent.stdout.readline())
        deadline = time.monotonic() + 20
        while len(processes_with(mark)) < 2:
            assert time.monotonic() < deadline and os.path.exists(f"/proc/{supervisor}")
            time.sleep(0.02)
        parent.stdin.write("go\n")
        parent.stdin.flush()
        assert parent.stdout.readline() == "waited\n"
        assert processes_with(mark) == []
    finally:
        parent.kill()
        parent.wait()


def test_vm_daemons_stop_with_everything_they_started(tmp_path):
    """How kosi vm runs qemu, virtiofsd, swtpm and systemd-journal-remote: on the host as it is,
    in a PID namespace of their own (process_tree_command), stopped by kosi.run.daemons."""
    from kosi.run import daemons
    from kosi.sandbox import process_tree_command

    mark = marker()
    ready = tmp_path / "ready"
    cmd = [
        *process_tree_command(),
        "sh",
        "-c",
        f"setsid sh -c 'sleep {mark} & exit 0' </dev/null >/dev/null 2>&1; touch {ready}; exec sleep {mark}",
    ]
    with daemons.running("test-daemon", cmd, tmp_path / "log", ready=ready.exists) as process:
        wait_for(mark, 2, process)
        assert Path(f"/proc/{process.pid}/root").resolve() == Path("/")  # the host's paths
    assert processes_with(mark) == []
