"""Cached .deb files are checked against the repository metadata before apt uses them.

apt (2.6 and 3.0 alike: pkgAcqArchive) takes a file in the archives directory whose size
matches the metadata as already downloaded, without checking its checksum; a file with a
flipped bit would be installed as it is (or break dpkg halfway). A truncated one apt
notices by its size and fetches again.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from kosi import log

if TYPE_CHECKING:
    from kosi.installers.apt import Apt
    from kosi.pipeline.context import Context


def deb_filename(name: str, version: str, arch: str) -> str:
    """The name apt gives a downloaded package: epoch colons are URL-quoted."""
    return f"{name}_{version.replace(':', '%3a')}_{arch}.deb"


def verify_cached_packages(apt: "Apt", context: "Context", root: Path, packages: Sequence[str]) -> None:
    """apt takes a .deb in the package cache whose size is right as it is, without checking
    its checksum (apt 2.6 and 3.0), so a corrupt one would be installed. Check every cached
    package this install uses against the SHA256 of the repository metadata and remove the
    ones that differ: apt fetches them again (a truncated one apt notices by its size)."""
    archives = apt.cache_dir(context) / "archives"
    simulation = apt.apt_get(context, ["install", "-s", *packages], root=root, what="apt-get (simulate)")
    planned = re.findall(r"^Inst (\S+) (?:\[\S+\] )?\((\S+) .*\[(\S+)\]\)", simulation, re.M)
    cached = {
        (name, version): archives / deb_filename(name, version, arch)
        for name, version, arch in planned
        if (archives / deb_filename(name, version, arch)).is_file()
    }
    if not cached:
        return
    shown = apt._run(
        context,
        ["apt-cache", *apt.root_options(context, root), "show", *(f"{n}={v}" for n, v in cached)],
        root=root,
        apivfs=False,
        what="apt-cache show",
        quiet=True,
    )
    expected: dict[tuple[str, str], set[str]] = {}
    for stanza in shown.split("\n\n"):
        fields = dict(re.findall(r"^(Package|Version|SHA256): (\S+)", stanza, re.M))
        if len(fields) == 3:
            expected.setdefault((fields["Package"], fields["Version"]), set()).add(fields["SHA256"])
    for key, path in cached.items():
        if key not in expected:
            continue  # no checksum to compare with (a local repository's package)
        with open(path, "rb") as f:
            actual = hashlib.file_digest(f, "sha256").hexdigest()
        if actual not in expected[key]:
            log.warn(f"{path} does not match its SHA256 in the repository metadata: fetching it again")
            path.unlink()
