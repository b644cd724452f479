#!/usr/bin/env python3
"""Size of a one-package system extension with and without Overlay=yes (issue 10).

Builds, in one project, the re-introduction post's base directory image (systemd, udev)
and two sysexts of btrfs-progs on top of it (BaseTrees=%O/base): one with Overlay=yes,
which holds only what the package added, and one without, which holds the base's whole
/usr as well. Prints the size of each .raw and of the files in it.

    python3 bench/sysext_bench.py [--release trixie] [--package btrfs-progs]

Measured on the development machine (trixie, btrfs-progs, no keys so no verity):
Overlay=yes 6.9 MiB image (5.9 MiB root file system), Overlay=no 156.5 MiB (155.5 MiB),
22.6x smaller; 66 s for base and both sysexts.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KOSI = Path(__file__).resolve().parent.parent / "bin" / "kosi"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def project(directory: Path, release: str, package: str) -> None:
    write(
        directory / "mkosi.conf",
        f"[Distribution]\nDistribution=debian\nRelease={release}\n\n[Output]\nOutputDirectory=mkosi.output\n",
    )
    write(
        directory / "mkosi.images/base/mkosi.conf",
        "[Output]\nFormat=directory\n\n[Content]\nCleanPackageMetadata=no\nPackages=systemd\n         udev\n",
    )
    for name, overlay in (("overlay", "yes"), ("full", "no")):
        write(
            directory / f"mkosi.images/{name}/mkosi.conf",
            f"[Config]\nDependencies=base\n\n[Output]\nFormat=sysext\nOverlay={overlay}\n\n"
            f"[Content]\nBaseTrees=%O/base\nPackages={package}\n",
        )
    (directory / "mkosi.output").mkdir()


def payload(image: Path) -> int:
    """Bytes of the root partition's file system, as systemd-repart sized it (Minimize=best)."""
    import json

    table = json.loads(
        subprocess.run(["sfdisk", "--json", str(image)], stdout=subprocess.PIPE, check=True, text=True).stdout
    )["partitiontable"]["partitions"]
    return table[0]["size"] * 512


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default="trixie")
    parser.add_argument("--package", default="btrfs-progs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="kosi-sysext-bench-") as tmp:
        directory = Path(tmp)
        project(directory, args.release, args.package)
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, str(KOSI), "-C", str(directory), "-f", "build"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if result.returncode != 0:
            print(result.stdout[-3000:], file=sys.stderr)
            return 1
        elapsed = time.monotonic() - started
        out = directory / "mkosi.output"
        sizes = {
            name: ((out / f"{name}.raw").stat().st_size, payload(out / f"{name}.raw")) for name in ("overlay", "full")
        }
        print(f"one-package sysext ({args.package}, Debian {args.release}), built in {elapsed:.0f}s with its base:")
        for name, label in (("overlay", "Overlay=yes"), ("full", "Overlay=no ")):
            image, root = sizes[name]
            print(f"  {label}  image {image / 2**20:7.1f} MiB   root file system {root / 2**20:7.1f} MiB")
        print(f"  Overlay=yes is {sizes['full'][0] / sizes['overlay'][0]:.1f}x smaller")
    return 0


if __name__ == "__main__":
    sys.exit(main())
