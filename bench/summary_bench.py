#!/usr/bin/env python3
"""End-to-end time of `kosi summary` on a realistic 20-file project.

The project (written to a temporary directory) has a mkosi.conf, drop-ins with [Match]
sections, two profiles, a subimage with its own drop-ins, a local config, specifiers,
and a mkosi.version. Prints the median of 20 runs and its ratio to mkosi's 0.72 s.
Usage: bench/summary_bench.py [--runs N] [--keep]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MKOSI_SECONDS = 0.72

FILES = {
    "mkosi.conf": """\
[Distribution]
Distribution=debian
Release=bookworm
Architecture=x86-64

[Output]
ImageId=bench
Output=%i_%v
Format=disk

[Content]
Packages=systemd,udev,dbus
Hostname=%i-host
Bootable=no
WithDocs=no

[Config]
Profiles=server
""",
    "mkosi.version": "1.4.2\n",
    "mkosi.local.conf": "[Content]\nPackages=vim\n",
    "mkosi.conf.d/10-base.conf": "[Content]\nPackages=\n        bash\n        coreutils\n        less\n",
    "mkosi.conf.d/20-debian.conf": "[Match]\nDistribution=debian\n\n[Content]\nPackages=apt,debian-archive-keyring\n",
    "mkosi.conf.d/25-ubuntu.conf": "[Match]\nDistribution=ubuntu\n\n[Content]\nPackages=ubuntu-keyring\n",
    "mkosi.conf.d/30-disk.conf": "[Match]\nFormat=|disk\nFormat=|esp\n\n[Output]\nSplitArtifacts=uki\n",
    "mkosi.conf.d/40-x86.conf": "[Match]\nArchitecture=x86-64\n\n[Content]\nKernelCommandLine=console=ttyS0\n",
    "mkosi.conf.d/50-env.conf": "[Build]\nEnvironment=BENCH=1 IMAGE=%i\n",
    "mkosi.conf.d/60-locale.conf": "[Content]\nLocale=C.UTF-8\nTimezone=UTC\nKeymap=us\n",
    "mkosi.conf.d/70-net/mkosi.conf": "[Match]\nRelease=bookworm\n\n[Content]\nPackages=iproute2\n",
    "mkosi.conf.d/70-net/mkosi.conf.d/10-extra.conf": "[Content]\nPackages=iputils-ping\n",
    "mkosi.conf.d/80-vm.conf": "[Runtime]\nRAM=2G\nCPUs=2\n",
    "mkosi.conf.d/90-version.conf": "[Match]\nImageVersion=>=1.0\n\n[Content]\nPackages=curl\n",
    "mkosi.profiles/server/mkosi.conf": "[Content]\nPackages=openssh-server\n",
    "mkosi.profiles/server/mkosi.conf.d/10-more.conf": "[Content]\nPackages=nginx-light\n",
    "mkosi.profiles/desktop/mkosi.conf": "[Content]\nPackages=xorg\n",
    "mkosi.images/base/mkosi.conf": "[Output]\nFormat=directory\nOutput=%i-base\n\n[Content]\nPackages=busybox\n",
    "mkosi.images/base/mkosi.conf.d/10-match.conf": "[Match]\nProfiles=server\n\n[Content]\nPackages=tmux\n",
    "mkosi.images/base/mkosi.conf.d/20-tar.conf": "[Content]\nRemoveFiles=/usr/share/doc\n",
}


def write_project(directory: Path) -> None:
    for name, text in FILES.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def bytecode_environment(cache: Path) -> dict[str, str]:
    """Let Python keep compiled modules (in `cache`, not the checkout), as an installed kosi would."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def time_run(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one run; CPU time is what a loaded,
    shared machine does not distort."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def medians(command: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    time_run(command, env)  # warm the page cache and the bytecode cache
    samples = [time_run(command, env) for _ in range(runs)]
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the generated project and print its path")
    options = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="kosi-summary-bench-"))
    try:
        write_project(directory / "project")
        assert len(FILES) == 20
        env = bytecode_environment(directory / "pycache")
        # `python3 -S` leaves out site-packages hooks of the machine (kosi needs only the
        # standard library), so the second figure is kosi's own start-up.
        for label, python in (("python3", [sys.executable]), ("python3 -S", [sys.executable, "-S"])):
            bare_wall, bare_cpu = medians([*python, "-c", "pass"], env, options.runs)
            command = [*python, str(REPO / "bin/kosi"), "-C", str(directory / "project"), "summary"]
            wall, cpu = medians(command, env, options.runs)
            print(
                f"kosi summary ({label}), {len(FILES)} files, median of {options.runs}: {wall * 1000:.0f} ms wall "
                f"({wall / MKOSI_SECONDS:.2f}x mkosi's {MKOSI_SECONDS:.2f} s), {cpu * 1000:.0f} ms CPU; "
                f"bare interpreter: {bare_wall * 1000:.0f} ms wall, {bare_cpu * 1000:.0f} ms CPU"
            )
    finally:
        if options.keep:
            print(directory / "project")
        else:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
