"""TPM=: a software TPM (swtpm) for the VM, living as long as the VM does."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator, Sequence

from kosi.config.values import Feature
from kosi.errors import KosiError


@contextlib.contextmanager
def swtpm(scratch: Path, tools_prefix: Sequence[str] = ()) -> Iterator[list[str]]:
    """Start swtpm on a socket in scratch; yield the qemu options that attach it."""
    state = scratch / "tpm"
    state.mkdir(parents=True, exist_ok=True)
    socket = scratch / "swtpm.sock"
    cmd = [
        *tools_prefix,
        "swtpm",
        "socket",
        "--tpm2",
        "--tpmstate",
        f"dir={state}",
        "--ctrl",
        f"type=unixio,path={socket}",
        "--flags",
        "startup-clear",
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not socket.exists():
            if proc.poll() is not None:
                message = (proc.stderr.read() if proc.stderr else b"").decode(errors="replace").strip().splitlines()
                raise KosiError(f"swtpm failed to start: {message[-1] if message else proc.returncode}")
            if time.monotonic() > deadline:
                raise KosiError("swtpm did not create its socket within 10 seconds")
            time.sleep(0.05)
        yield [
            "-chardev",
            f"socket,id=chrtpm,path={socket}",
            "-tpmdev",
            "emulator,id=tpm0,chardev=chrtpm",
            "-device",
            "tpm-tis,tpmdev=tpm0",
        ]
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()


def want_tpm(tpm: Feature, tools: Path | None) -> bool:
    """TPM=auto uses swtpm when it is installed (in the tools tree, or on the host)."""
    if tpm == Feature.disabled:
        return False
    found = (tools / "usr/bin/swtpm").exists() if tools is not None else shutil.which("swtpm") is not None
    if tpm == Feature.enabled and not found:
        raise KosiError("TPM=yes: swtpm is not installed (install swtpm or use TPM=auto)")
    return found
