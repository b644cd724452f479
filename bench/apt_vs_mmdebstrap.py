#!/usr/bin/env python3
"""Cold bootstrap time of kosi's apt backend against mmdebstrap --variant=minbase, and kosi warm.

Each round runs both tools with an empty package cache, back to back (so a busy machine
or network affects both alike), for a minimal trixie root and for one with
systemd,udev,dbus; then kosi again with the package cache its cold run filled (warm).
Prints the median of N rounds (--rounds, default 1) and the ratios.

    python3 bench/apt_vs_mmdebstrap.py [--rounds N] [--release trixie] [--mirror URL]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kosi.config.model import Config
from kosi.installers.base import package_manager
from kosi.pipeline.context import Context


def kosi_bootstrap(directory: Path, release: str, mirror: str, packages: list[str], name: str = "kosi") -> float:
    workspace = directory / name
    workspace.mkdir()
    config = Config({"Distribution": "debian", "Release": release, "Mirror": mirror})
    context = Context(config=config, workspace=workspace, package_cache=directory / "kosi-cache")
    start = time.monotonic()
    pm = package_manager(context)
    pm.setup(context)
    pm.sync(context)
    pm.install(context, packages)
    return time.monotonic() - start


def mmdebstrap(directory: Path, release: str, mirror: str, packages: list[str]) -> float:
    cmd = ["mmdebstrap", "--variant=minbase", "--quiet", release, str(directory / "mmdebstrap"), f"{mirror}/debian"]
    if packages:
        cmd.insert(2, "--include=" + ",".join(packages))
    start = time.monotonic()
    subprocess.run(cmd, check=True)
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--release", default="trixie")
    parser.add_argument("--mirror", default="http://deb.debian.org")
    args = parser.parse_args()

    cases = {"minimal": [], "+systemd,udev,dbus": ["systemd", "udev", "dbus"]}
    tools = ("mmdebstrap", "kosi", "kosi-warm")
    results: dict[str, dict[str, list[float]]] = {case: {tool: [] for tool in tools} for case in cases}
    for _ in range(args.rounds):
        for case, packages in cases.items():
            for tool, run in (("mmdebstrap", mmdebstrap), ("kosi", kosi_bootstrap)):
                directory = Path(tempfile.mkdtemp(prefix="kosi-bench-", dir="/var/tmp"))
                try:
                    results[case][tool].append(run(directory, args.release, args.mirror, packages))
                    if tool == "kosi":  # again with the package cache the cold run filled
                        results[case]["kosi-warm"].append(
                            kosi_bootstrap(directory, args.release, args.mirror, packages, name="warm")
                        )
                finally:
                    shutil.rmtree(directory, ignore_errors=True)

    print(
        f"{'case':<22}{'mmdebstrap':>12}{'kosi':>10}{'ratio':>8}{'warm':>9}{'warm/cold':>11}"
        f"   (median of {args.rounds}, {args.release})"
    )
    for case in cases:
        mm, ko, warm = (statistics.median(results[case][tool]) for tool in tools)
        print(f"{case:<22}{mm:>11.1f}s{ko:>9.1f}s{ko / mm:>8.2f}{warm:>8.1f}s{warm / ko:>11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
