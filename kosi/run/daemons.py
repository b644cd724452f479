"""Helper daemons that live exactly as long as a VM (virtiofsd, systemd-journal-remote, ...):
started before qemu, stopped after it, their last error line kept for the message when they
fail to come up."""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator

from kosi.errors import KosiError
from kosi.tools.packages import missing_program


def stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM first so the daemon can close its files cleanly (journal files are only complete
    once closed), SIGKILL if it does not finish in time."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def last_error(proc: subprocess.Popen, log: Path) -> str:
    lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    return lines[-1] if lines else f"exit status {proc.returncode}"


@contextlib.contextmanager
def running(
    name: str,
    cmd: list[str],
    log: Path,
    *,
    ready: Callable[[], bool] = lambda: True,
    timeout: float = 15,
    pass_fds: tuple[int, ...] = (),
) -> Iterator[subprocess.Popen]:
    """Run cmd until the block ends; wait until ready() says it is serving (or it died). Its
    output goes to the file log (a pipe nobody reads would fill up and stall it)."""
    try:
        with log.open("ab") as output:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=output, stderr=output, pass_fds=pass_fds)
    except FileNotFoundError:
        raise KosiError(missing_program(name)) from None
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None:
                if proc.returncode == 127 and "command not found" in last_error(proc, log):  # in its sandbox
                    raise KosiError(missing_program(name))
                raise KosiError(f"{name} failed to start: {last_error(proc, log)}")
            if time.monotonic() > deadline:
                raise KosiError(f"{name} did not get ready within {timeout:.0f} seconds")
            time.sleep(0.05)
        if proc.poll() is not None:
            raise KosiError(f"{name} exited right away: {last_error(proc, log)}")
        yield proc
    finally:
        stop(proc)
