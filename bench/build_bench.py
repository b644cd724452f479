#!/usr/bin/env python3
"""Whole `kosi build` timings against mmdebstrap, in one run on the same machine.

Cases (issue "Build real Debian and Ubuntu images"):
  cold minimal         Format=directory, empty package cache   vs mmdebstrap --variant=essential
  cold systemd         same with Packages=systemd,udev,dbus     vs mmdebstrap --variant=essential --include=...

Like with like: kosi (as mkosi 27.1) installs Debian's essential set plus Packages=, which is
mmdebstrap's "essential" variant (its default variant, "required", also installs the rest of
priority required: apt, login, tzdata, ...; "minbase" adds apt).
  warm rebuild         `kosi -f build` with the package cache populated (target < 0.7x cold)
  incremental rebuild  Incremental=yes, a file in mkosi.extra changed, `kosi -f build` (target < 4 s)

Prints the median of --rounds runs (default 1) and the ratios. Reference figures measured
on this host: mkosi 21.4 s / 39.6 s cold, 5.7 s incremental; mmdebstrap 15.2 s / 21.5 s (measured with --variant=minbase).

    python3 bench/build_bench.py [--rounds N] [--release trixie]
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

KOSI = Path(__file__).resolve().parent.parent / "bin" / "kosi"
MIRROR = "http://deb.debian.org/debian"


def timed(cmd: list[str], **kwargs) -> float:
    start = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
    return time.monotonic() - start


def project(directory: Path, release: str, packages: list[str], incremental: bool = False) -> Path:
    directory.mkdir(parents=True)
    (directory / "mkosi.output").mkdir()
    (directory / "mkosi.extra/etc").mkdir(parents=True)
    (directory / "mkosi.extra/etc/motd").write_text("benchmark\n")
    lines = ["[Distribution]", "Distribution=debian", f"Release={release}", "", "[Output]", "Format=directory", "",
             "[Content]", f"Packages={','.join(packages)}", "", "[Build]",
             f"PackageCacheDirectory={directory / 'pkgcache'}", f"CacheDirectory={directory / 'cache'}",
             f"Incremental={'yes' if incremental else 'no'}"]  # fmt: skip
    (directory / "mkosi.conf").write_text("\n".join(lines) + "\n")
    return directory


def kosi(directory: Path, *args: str) -> float:
    return timed([sys.executable, str(KOSI), "-C", str(directory), *args, "build"])


#: the mmdebstrap variant installing what kosi installs: the essential set (plus --include=)
VARIANT = "essential"


def mmdebstrap(directory: Path, release: str, packages: list[str]) -> float:
    include = [f"--include={','.join(packages)}"] if packages else []
    return timed(
        ["mmdebstrap", f"--variant={VARIANT}", "--quiet", *include, release, str(directory / "mmdebstrap"), MIRROR]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--release", default="trixie")
    args = parser.parse_args()

    cases = {"minimal": [], "systemd": ["systemd", "udev", "dbus"]}
    results: dict[str, list[float]] = {}

    def record(name: str, value: float) -> None:
        results.setdefault(name, []).append(value)
        print(f"  {name:<28}{value:7.1f} s", file=sys.stderr)

    for round_number in range(args.rounds):
        print(f"round {round_number + 1}/{args.rounds}", file=sys.stderr)
        for case, packages in cases.items():
            scratch = Path(tempfile.mkdtemp(prefix="kosi-bench-", dir="/var/tmp"))
            try:
                record(f"mmdebstrap {case}", mmdebstrap(scratch, args.release, packages))
                directory = project(scratch / "project", args.release, packages)
                record(f"kosi cold {case}", kosi(directory))
                record(f"kosi warm {case}", kosi(directory, "-f"))
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        scratch = Path(tempfile.mkdtemp(prefix="kosi-bench-", dir="/var/tmp"))
        try:
            directory = project(scratch / "project", args.release, cases["systemd"], incremental=True)
            kosi(directory)  # fills the package cache and the incremental cache
            (directory / "mkosi.extra/etc/motd").write_text("changed\n")
            record("kosi incremental systemd", kosi(directory, "-f"))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    median = {name: statistics.median(values) for name, values in results.items()}
    print(
        f"\nmedians of {args.rounds} round(s), release {args.release}; mmdebstrap --variant={VARIANT}: the same"
        " package set as kosi (the essential set plus the case's packages), not its default 'required'"
    )
    for case in cases:
        cold, warm, reference = median[f"kosi cold {case}"], median[f"kosi warm {case}"], median[f"mmdebstrap {case}"]
        print(
            f"{case:<9} mmdebstrap {reference:6.1f} s  kosi cold {cold:6.1f} s ({cold / reference:.2f}x, target <= 1.2x)"
            f"  warm {warm:6.1f} s ({warm / cold:.2f}x cold, target < 0.7x)"
        )
    incremental = median["kosi incremental systemd"]
    print(f"incremental rebuild after an mkosi.extra change: {incremental:.1f} s (target < 4 s; mkosi 5.7 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
