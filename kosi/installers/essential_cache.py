"""Reusing the configured essential set across builds that share a package cache.

Bootstrapping spends most of its time unpacking the essential set twice (once by extraction
so the root has a shell, once by dpkg) and configuring it. The outcome depends only on the
root as it was before (skeleton trees), the exact .deb files, the dpkg options and the
environment the maintainer scripts saw; with all of those in the key, a copy of an earlier
outcome is the same tree, so a warm build copies it instead of redoing the work.

Trees live in the package cache next to the archives (<cache>/essential/<key>), written
under a temporary name and renamed when complete; only the few most recent are kept.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from kosi import log
from kosi.pipeline import atomic
from kosi.sandbox import run

if TYPE_CHECKING:
    from kosi.pipeline.context import Context

#: bump when the bootstrap procedure changes what the essential tree contains
FORMAT = "1"
KEEP = 2


def _root_digest(root: Path) -> str:
    """Everything about the root before bootstrapping: names, types, modes, owners, contents."""
    digest = hashlib.sha256()
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(directory, name)
            info = os.lstat(path)
            digest.update(f"{os.path.relpath(path, root)}\0{info.st_mode}\0{info.st_uid}\0{info.st_gid}\0".encode())
            if stat.S_ISLNK(info.st_mode):
                digest.update(os.readlink(path).encode())
            elif stat.S_ISREG(info.st_mode):
                with open(path, "rb") as f:
                    digest.update(hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()


def tree_key(root: Path, debs: Sequence[Path], options: Sequence[str], environment: dict[str, str]) -> str:
    digest = hashlib.sha256(FORMAT.encode())
    for part in (sorted(d.name for d in debs), list(options), sorted(environment.items()), _root_digest(root)):
        digest.update(repr(part).encode())
    return digest.hexdigest()[:32]


def _copy(context: "Context", source: Path, target: Path, sandbox: list[str]) -> None:
    run(["cp", "-a", "--reflink=auto", "--no-target-directory", f"{source}/.", str(target)], sandbox=sandbox, stderr=-1)


def restore_or_build(
    context: "Context", cache: Path, root: Path, key: str, build: Callable[[], None], sandbox: list[str]
) -> bool:
    """Fill `root` with the cached tree for `key`, or run `build` and cache its result.
    Returns whether the cached tree was used."""
    trees = cache / "essential"
    cached = trees / key
    if cached.is_dir():
        # The root holds exactly what the tree started from (it is in the key): start afresh.
        for entry in root.iterdir():
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        _copy(context, cached, root, sandbox)
        os.utime(cached)  # most recently used: pruned last
        log.debug(f"essential set reused from {cached}")
        return True
    build()
    # Under a partial name (locked while written, removed by the next writer when its writer
    # was killed), renamed to its key when complete.
    with atomic.partial_directory(cached) as partial:
        _copy(context, root, partial, sandbox)
        os.chmod(partial, os.lstat(root).st_mode & 0o7777)
        try:
            partial.rename(cached)
        except OSError:
            pass  # another build sharing the cache stored the same tree first
    _prune(trees)
    return False


def _prune(trees: Path) -> None:
    entries = sorted(
        (p for p in trees.iterdir() if not p.name.startswith(".")), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for old in entries[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)
