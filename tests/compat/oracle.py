#!/usr/bin/env python3
"""Fetch mkosi 27.1 (the oracle of the compatibility tests) from Debian sid and unpack it.

The package is pure Python (architecture all), so it runs on the host's Python once unpacked.
apt uses a private state (lists, sources, cache) under the cache directory, so the host's apt
configuration is neither read nor changed. sid's Release file is often past its Valid-Until
date; it is still accepted (the package's own checksum is verified by apt).

    tests/compat/oracle.py [--root DIR]   # prints the directory mkosi was unpacked into

From Python: `ensure_oracle()` returns that directory, `mkosi_command()` the command line.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

VERSION = "27.1"
DEFAULT_CACHE = Path(os.environ.get("KOSI_ORACLE_CACHE", "/var/cache/kosi-oracle"))
SOURCES = "deb http://deb.debian.org/debian sid main\n"
SITE = "usr/lib/python3/dist-packages"


def installed_version(root: Path) -> str | None:
    """The mkosi version unpacked under `root`, None when there is none."""
    for metadata in (root / SITE).glob("mkosi-*.dist-info/METADATA"):
        match = re.search(r"^Version: (\S+)$", metadata.read_text(), re.MULTILINE)
        if match:
            return match.group(1)
    return None


def apt_options(cache: Path, lines: str = SOURCES) -> list[str]:
    """apt-get's options for a private state in `cache`, with the sources.list `lines`."""
    sources = cache / "etc/sources.list"
    sources.parent.mkdir(parents=True, exist_ok=True)
    sources.write_text(lines)
    (cache / "state/lists/partial").mkdir(parents=True, exist_ok=True)
    (cache / "cache/archives/partial").mkdir(parents=True, exist_ok=True)
    return [
        "-o",
        f"Dir::State::Lists={cache / 'state/lists'}",
        "-o",
        f"Dir::Etc::SourceList={sources}",
        "-o",
        "Dir::Etc::SourceParts=/dev/null",
        "-o",
        f"Dir::Cache={cache / 'cache'}",
        "-o",
        "Acquire::Check-Valid-Until=false",
        "-o",
        "APT::Get::List-Cleanup=0",
        "-q",
    ]


def fetch(cache: Path) -> Path:
    """Download the mkosi package of sid into `cache` and return the .deb."""
    options = apt_options(cache)
    subprocess.run(["apt-get", *options, "update"], check=True, stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory(dir=cache) as download:
        # 27.1 exactly when sid still has it; otherwise whatever sid has is refused below.
        for spec in (f"mkosi={VERSION}-1", "mkosi/sid"):
            result = subprocess.run(
                ["apt-get", *options, "download", spec],
                cwd=download,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            if result.returncode == 0:
                break
        else:
            raise SystemExit(f"oracle: apt-get download mkosi failed: {result.stderr.strip()}")
        deb = next(Path(download).glob("mkosi_*.deb"))
        target = cache / deb.name
        deb.replace(target)
    return target


def ensure_oracle(cache: Path = DEFAULT_CACHE) -> Path:
    """The directory mkosi 27.1 is unpacked in, fetching it first when it is missing."""
    root = cache / "root"
    if installed_version(root) == VERSION:
        return root
    cache.mkdir(parents=True, exist_ok=True)
    debs = sorted(cache.glob(f"mkosi_{VERSION}-*_all.deb")) or [fetch(cache)]
    with tempfile.TemporaryDirectory(dir=cache) as unpack:
        subprocess.run(["dpkg-deb", "-x", str(debs[-1]), unpack], check=True)
        version = installed_version(Path(unpack))
        if version != VERSION:
            raise SystemExit(f"oracle: Debian sid has mkosi {version}, the tests need {VERSION}")
        if root.exists():
            subprocess.run(["rm", "-rf", str(root)], check=True)
        Path(unpack).rename(root)
        os.chmod(root, 0o755)
    return root


def mkosi_command(root: Path) -> tuple[list[str], dict[str, str]]:
    """The command running the oracle and the environment variables it needs."""
    return [sys.executable, "-m", "mkosi"], {"PYTHONPATH": str(root / SITE)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="cache directory (default: %(default)s)")
    args = parser.parse_args()
    print(ensure_oracle(args.cache))


if __name__ == "__main__":
    main()
