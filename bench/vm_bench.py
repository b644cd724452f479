#!/usr/bin/env python3
"""Times for `kosi vm`: start to the guest's marker, and the edit loop.

1. boot: `kosi vm` of a built bootable image until the guest prints KOSI-BOOT-OK (a unit
   given as credentials, ordered after multi-user.target) and powers off.
2. edit loop: with Incremental=yes, change a file in mkosi.extra, then `kosi -f vm` until
   the marker prints the file's new content (rebuild + boot).
Reference: mkosi's vm reaches "Startup finished" in about 65 s under TCG on this machine.
Usage: bench/vm_bench.py [PROJECT-DIRECTORY]   (default: a fresh project in /var/tmp)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from tests.conftest import BOOTABLE_CONF  # noqa: E402

UNIT = (
    "[Unit]\nAfter=multi-user.target\n[Service]\nType=oneshot\n"
    "ExecStart=/bin/sh -c 'echo KOSI-BOOT-OK $$(cat /etc/kosi-bench 2>/dev/null) >/dev/console'\n"
    "ExecStart=/bin/systemctl poweroff --no-block\n"
)


def write_credentials(directory: Path) -> Path:
    credentials = directory / "bench-credentials"
    credentials.mkdir(exist_ok=True)
    (credentials / "systemd.extra-unit.kosi-bench.service").write_text(UNIT)
    (credentials / "systemd.unit-dropin.multi-user.target").write_text("[Unit]\nWants=kosi-bench.service\n")
    return credentials


def vm_until_marker(directory: Path, expected: str, *kosi_options: str) -> tuple[float, float | None]:
    """Seconds until the marker line appeared, and until the VM was gone (None if it never appeared)."""
    cmd = [
        sys.executable,
        str(REPO / "bin/kosi"),
        "-C",
        str(directory),
        "--console=read-only",
        f"--credential={write_credentials(directory)}",
        *kosi_options,
        "vm",
    ]
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, errors="replace"
    )
    marker = None
    for line in proc.stdout:
        if f"KOSI-BOOT-OK {expected}".strip() in line and marker is None:
            marker = time.monotonic() - started
    proc.wait()
    return (marker if marker is not None else float("nan")), time.monotonic() - started


def main() -> None:
    if len(sys.argv) > 1:
        directory = Path(sys.argv[1])
    else:
        directory = Path("/var/tmp/kosi-vm-bench")
        directory.mkdir(exist_ok=True)
        (directory / "mkosi.conf").write_text(BOOTABLE_CONF + "\n[Build]\nIncremental=yes\n")
        (directory / "mkosi.output").mkdir(exist_ok=True)
    extra = directory / "mkosi.extra/etc"
    extra.mkdir(parents=True, exist_ok=True)
    (extra / "kosi-bench").write_text("v1\n")
    build = subprocess.run(
        [sys.executable, str(REPO / "bin/kosi"), "-C", str(directory), "-f", "build"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if build.returncode != 0:
        sys.exit(f"build failed:\n{build.stdout[-3000:]}")
    marker, total = vm_until_marker(directory, "v1")
    print(f"vm: marker after {marker:.1f}s, powered off after {total:.1f}s")
    (extra / "kosi-bench").write_text("v2\n")
    loop_marker, loop_total = vm_until_marker(directory, "v2", "-f")
    print(
        f"edit loop (-f vm after changing mkosi.extra): marker after {loop_marker:.1f}s, done after {loop_total:.1f}s"
    )
    print(
        json.dumps(
            {
                "vm_marker_s": round(marker, 1),
                "vm_total_s": round(total, 1),
                "edit_loop_marker_s": round(loop_marker, 1),
                "edit_loop_total_s": round(loop_total, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
