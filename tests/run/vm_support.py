"""What the VM and container tests share: the marker unit, the VM image's configuration and
booting a VM until it powers off. The marker proving a boot reached multi-user is a unit
that prints KOSI-BOOT-OK on the console; VM images receive it at run time as credentials
(systemd.extra-unit.*, systemd.unit-dropin.*)."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.conftest import BOOTABLE_CONF  # tests/config has a conftest.py too: name this one fully

REPO = Path(__file__).resolve().parents[2]
KOSI = [sys.executable, str(REPO / "bin/kosi")]

MARKER_UNIT = """\
[Unit]
Description=kosi test marker
After=multi-user.target

[Service]
Type=oneshot
ImportCredential=kosi.*
ExecStart=/bin/sh -c 'echo KOSI-BOOT-OK $$(cat $${CREDENTIALS_DIRECTORY}/kosi.marker 2>/dev/null) >/dev/console'
"""
POWEROFF = "ExecStart=/bin/systemctl poweroff --no-block\n"

# The shared bootable image's configuration (tests/conftest.py), plus sshd for `kosi ssh` and
# grub for BIOS, so one image serves every VM test.
VM_CONF = BOOTABLE_CONF + "         openssh-server\n         grub-pc-bin\nBiosBootloader=grub\n"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="building and booting images needs root")


def build(directory: Path) -> None:
    result = subprocess.run(
        [*KOSI, "-C", str(directory), "-f", "build"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    (directory / "build.log").write_text(result.stdout)
    if result.returncode != 0:
        pytest.fail(f"building {directory} failed:\n{result.stdout[-4000:]}")


def marker_credentials(project: Path, *, poweroff: bool) -> Path:
    """A directory of credentials (Credentials=DIRECTORY): the marker unit and what pulls it in."""
    directory = project / ("credentials-poweroff" if poweroff else "credentials-stay")
    directory.mkdir(exist_ok=True)
    # The serial port, not /dev/console: with BIOS/grub our console=ttyS0 does not reach the kernel.
    unit = MARKER_UNIT.replace(">/dev/console", ">/dev/ttyS0") + (POWEROFF if poweroff else "")
    (directory / "systemd.extra-unit.kosi-test-marker.service").write_text(unit)
    (directory / "systemd.unit-dropin.multi-user.target").write_text("[Unit]\nWants=kosi-test-marker.service\n")
    (directory / "kosi.marker").write_text("via-smbios")
    return directory


#: how long the guest waits for a device (the root, the verity device) before it gives up and
#: enters emergency mode: systemd's 90s is too short for udev under TCG on a loaded machine;
#: a device that never comes still ends the boot well before boot_vm()'s timeout
DEVICE_TIMEOUT = 300


def load_factor() -> float:
    """How much slower than idle this machine runs a VM now (1 to 3): the load per core."""
    return min(3.0, max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1)))


def vm_command(project: Path, *options: str, poweroff: bool = True) -> list[str]:
    credentials = marker_credentials(project, poweroff=poweroff)
    return [
        *KOSI,
        "-C",
        str(project),
        # Two vCPUs: under TCG each runs in a host thread of its own, which boots about a fifth
        # faster on this two-core machine than CPUs=1 (the default).
        "--cpus=2",
        "--console=read-only",
        "--ephemeral=yes",
        f"--credential={credentials}",
        f"--kernel-command-line-extra=systemd.default_device_timeout_sec={DEVICE_TIMEOUT}",
        *options,
        "vm",
    ]


def stop_group(proc: subprocess.Popen) -> None:
    """End `kosi vm` and the qemu it started (its own session, so its own process group)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    proc.stdout.close()


EMERGENCY = ("You are in emergency mode", "Cannot open access to console")


def boot_vm(project: Path, *settings: str, timeout: float = 420) -> tuple[int, str, float]:
    """Boot until qemu exits; give up early when the guest lands in emergency mode. `timeout`
    is for an idle machine: it grows with the load (load_factor)."""
    timeout = round(timeout * load_factor())
    started = time.monotonic()
    proc = subprocess.Popen(
        vm_command(project, *settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    output = b""
    try:
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        while proc.poll() is None or selector.select(timeout=0):
            if time.monotonic() - started > timeout:
                pytest.fail(f"the VM did not power off within {timeout}s:\n{output[-3000:].decode(errors='replace')}")
            if selector.select(timeout=1):
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                output += chunk
            if any(marker.encode() in output for marker in EMERGENCY):
                pytest.fail(f"the guest fell into emergency mode:\n{output[-3000:].decode(errors='replace')}")
        return proc.wait(), output.decode(errors="replace"), time.monotonic() - started
    finally:
        stop_group(proc)
