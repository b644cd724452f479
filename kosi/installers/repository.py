"""The local package repository ($PACKAGEDIR): PackageDirectories= plus what build scripts produce.

It is a flat apt repository ("deb file:/dir ./"): the .deb files, a Packages index made by
dpkg-scanpackages (dpkg-dev) and a Release file listing the index's checksums, so apt
treats it like any other repository. It is trusted (no signature) because the packages
come from the user.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Iterable

from kosi.errors import KosiError
from kosi.sandbox import Mount, run, sandbox_command


def populate(repository: Path, directories: Iterable[Path]) -> None:
    """Copy (hard-link where possible) the .deb files of `directories` into the repository."""
    repository.mkdir(parents=True, exist_ok=True)
    for directory in directories:
        if not directory.is_dir():
            raise KosiError(f"PackageDirectories=: {directory} is not a directory")
        for deb in sorted(directory.rglob("*.deb")):
            target = repository / deb.name
            if target.exists():
                continue
            try:
                os.link(deb, target)
            except OSError:
                shutil.copy2(deb, target)


def fingerprint(repository: Path) -> str:
    """Changes when a package is added, removed or replaced: tells whether to re-index."""
    if not repository.is_dir():
        return ""
    entries = sorted(
        f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in repository.iterdir() if p.suffix == ".deb"
    )
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()


def has_packages(repository: Path) -> bool:
    return repository.is_dir() and any(p.suffix == ".deb" for p in repository.iterdir())


def index(repository: Path, tools: Path | None = None) -> None:
    """(Re)write Packages and Release for the .deb files in the repository."""
    sandbox = sandbox_command(mounts=[Mount(repository, str(repository), "ro-bind")], tools=tools,
                              workdir=str(repository))
    result = run(["dpkg-scanpackages", "--multiversion", ".", "/dev/null"], sandbox=sandbox,
                 stdout=-1, stderr=-1, check=False)
    if result.returncode != 0:
        message = (result.stderr or b"").decode(errors="replace").strip().splitlines()
        raise KosiError(f"dpkg-scanpackages failed in {repository}: {message[-1] if message else result.returncode}")
    packages = result.stdout or b""
    (repository / "Packages").write_bytes(packages)
    # A Release file keeps apt from warning about an unsigned, unlisted repository.
    lines = ["Origin: kosi", "Label: kosi local packages", "Suite: ./", "SHA256:",
             f" {hashlib.sha256(packages).hexdigest()} {len(packages)} Packages"]
    (repository / "Release").write_text("\n".join(lines) + "\n")


def sources_stanza(repository: Path) -> str:
    return f"Types: deb\nURIs: file://{repository}\nSuites: ./\nTrusted: yes\n"
