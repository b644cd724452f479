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
from typing import TYPE_CHECKING, Callable, Iterable

from kosi.errors import KosiError
from kosi.sandbox import Mount, run, sandbox_command

if TYPE_CHECKING:
    from kosi.pipeline.context import Context


def package_directories(config) -> list[Path]:
    """PackageDirectories= and VolatilePackageDirectories=, or the project's mkosi.packages/ without them."""
    directories = [
        Path(p) for p in [*(config["PackageDirectories"] or ()), *(config["VolatilePackageDirectories"] or ())]
    ]
    if not directories and (Path(config.directory) / "mkosi.packages").is_dir():
        directories.append(Path(config.directory) / "mkosi.packages")
    return directories


def collect(context: Context, match: Callable[[Path], bool]) -> None:
    """$PACKAGEDIR gets the packages (the files `match` picks) of PackageDirectories=,
    VolatilePackageDirectories= or mkosi.packages/."""
    populate(context.repository, package_directories(context.config), match=match)


def reindex(context: Context, match: Callable[[Path], bool], index: Callable[[], None]) -> bool:
    """Run `index` when the local repository has packages it has not indexed yet (at setup,
    and again after build scripts added some); True when it ran."""
    repository = context.repository
    if not has_packages(repository, match):
        return False
    current = fingerprint(repository, match)
    if context.state.installer.local_fingerprint == current:
        return False
    index()
    context.state.installer.local_fingerprint = current
    context.state.installer.local_synced = False
    return True


def remove_path(path: Path) -> None:
    """Remove a file, symlink or directory tree from an image, if it is there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def populate(repository: Path, directories: Iterable[Path], match: Callable[[Path], bool] | None = None) -> None:
    """Copy (hard-link where possible) the .deb files (or the files `match` picks: .rpm, .pkg.tar.zst)
    of `directories` into the repository."""
    repository.mkdir(parents=True, exist_ok=True)
    for directory in directories:
        if not directory.is_dir():
            raise KosiError(f"PackageDirectories=: {directory} is not a directory")
        found = directory.rglob("*") if match else directory.rglob("*.deb")
        for deb in sorted(p for p in found if match is None or match(p)):
            target = repository / deb.name
            if target.exists():
                continue
            try:
                os.link(deb, target)
            except OSError:
                shutil.copy2(deb, target)


def _is_deb(path: Path) -> bool:
    return path.suffix == ".deb"


def fingerprint(repository: Path, match: Callable[[Path], bool] = _is_deb) -> str:
    """Changes when a package is added, removed or replaced: tells whether to re-index."""
    if not repository.is_dir():
        return ""
    entries = sorted(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in repository.iterdir() if match(p))
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()


def has_packages(repository: Path, match: Callable[[Path], bool] = _is_deb) -> bool:
    return repository.is_dir() and any(match(p) for p in repository.iterdir())


def index(repository: Path, tools: Path | None = None) -> None:
    """(Re)write Packages and Release for the .deb files in the repository."""
    sandbox = sandbox_command(
        mounts=[Mount(repository, str(repository), "ro-bind")], tools=tools, workdir=str(repository)
    )
    result = run(
        ["dpkg-scanpackages", "--multiversion", ".", "/dev/null"], sandbox=sandbox, stdout=-1, stderr=-1, check=False
    )
    if result.returncode != 0:
        message = (result.stderr or b"").decode(errors="replace").strip().splitlines()
        raise KosiError(f"dpkg-scanpackages failed in {repository}: {message[-1] if message else result.returncode}")
    packages = result.stdout or b""
    (repository / "Packages").write_bytes(packages)
    # A Release file keeps apt from warning about an unsigned, unlisted repository.
    lines = [
        "Origin: kosi",
        "Label: kosi local packages",
        "Suite: ./",
        "SHA256:",
        f" {hashlib.sha256(packages).hexdigest()} {len(packages)} Packages",
    ]
    (repository / "Release").write_text("\n".join(lines) + "\n")


def sources_stanza(repository: Path) -> str:
    return f"Types: deb\nURIs: file://{repository}\nSuites: ./\nTrusted: yes\n"
