#!/usr/bin/env python3
"""Times for the tools tree (cold, cached) and a bootable Debian disk build (cold, warm).

cold tools tree: the cached default tools tree is removed first; cached: it is reused.
cold disk: the default initrd cache is removed too; warm: everything cached (package
cache, tools tree, default initrd), i.e. the common edit-rebuild loop.
Usage: bench/boot_bench.py [--skip-cold]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kosi.tools_tree import cache_root  # noqa: E402
from tests.conftest import BOOTABLE_CONF  # noqa: E402


def timed_build(directory: Path, log: list[str] | None = None) -> float:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(REPO / "bin/kosi"), "-C", str(directory), "-f", "build"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if result.returncode != 0:
        sys.exit(f"build failed:\n{result.stdout[-3000:]}")
    if log is not None:
        log.append(result.stdout)
    return time.monotonic() - started


def image_seconds(output: str, image: str) -> float | None:
    """The "built 'NAME' in Xs" line of one image in a build's log."""
    import re

    match = re.search(rf"built '{image}' in ([0-9.]+)s", output)
    return float(match.group(1)) if match else None


def main() -> None:
    skip_cold = "--skip-cold" in sys.argv
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        directory = Path(tmp)
        (directory / "mkosi.conf").write_text(BOOTABLE_CONF)
        (directory / "mkosi.output").mkdir()
        results = []
        if not skip_cold:
            for cached in ("tools", "initrd"):
                shutil.rmtree(cache_root() / cached, ignore_errors=True)
            for leftover in cache_root().glob("tools/*.json"):
                leftover.unlink()
            logs: list[str] = []
            results.append(("bootable disk, cold (tools tree + initrd built)", timed_build(directory, logs)))
            tools = image_seconds(logs[0], "tools")
            initrd = image_seconds(logs[0], "default-initrd")
            if tools is not None:
                results.append(("  of which: tools tree, cold", tools))
            if initrd is not None:
                results.append(("  of which: default initrd, cold", initrd))
        results.append(("bootable disk, warm (everything cached)", timed_build(directory)))
        results.append(("bootable disk, warm again", timed_build(directory)))
        # Incremental=yes keeps the installed image between builds: the edit-rebuild loop.
        (directory / "mkosi.conf").write_text(BOOTABLE_CONF + "\n[Build]\nIncremental=yes\n")
        results.append(("bootable disk, Incremental=yes, first", timed_build(directory)))
        results.append(("bootable disk, Incremental=yes, warm", timed_build(directory)))
    size = subprocess.run(["du", "-sh", str(cache_root() / "tools")], stdout=subprocess.PIPE, text=True).stdout.split()
    for label, seconds in results:
        print(f"{label:<50} {seconds:7.1f} s")
    print(f"{'tools tree size':<50} {size[0] if size else '?':>9}")


if __name__ == "__main__":
    main()
