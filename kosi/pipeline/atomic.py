"""Caches that are never poisoned: written under a temporary name, committed by rename.

Every cache kosi keeps between builds (the Incremental= image, the default tools tree, the
default initrd, the essential set) is first written completely under a hidden partial name
next to its final place (same file system), and only then renamed into place; its stamp
(the key it was built for) is removed before the old entry is replaced and written last, so
an entry without a stamp that matches is never used. A partial entry is locked (flock on
the directory or file itself) for as long as its writer lives: the next writer removes the
ones whose lock can be taken — a writer that was killed — and never judges by age.

Running out of space is reported in one line naming the path, what was needed (where
known) and what was free.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from kosi import log
from kosi.errors import KosiError

#: prefix of everything written but not yet committed
PARTIAL_PREFIX = ".kosi-partial-"
#: what a partial entry is called until its lock is taken (never removed by another build)
NEW_PREFIX = ".kosi-new-"
#: what tools print when a file system is full
NO_SPACE_TEXTS = ("No space left on device", "Disk quota exceeded")


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def existing_parent(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_space(directory: Path) -> int:
    st = os.statvfs(existing_parent(directory))
    return st.f_bavail * st.f_frsize


def tree_size(path: Path) -> int:
    """Bytes a copy of `path` needs (apparent sizes of regular files; a symlink counts nothing)."""
    if path.is_symlink():
        return 0
    if not path.is_dir():
        return path.stat().st_size
    total = 0
    for top, _, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(top, name))
            total += st.st_size if not os.path.islink(os.path.join(top, name)) else 0
    return total


def no_space(path: Path, what: str, needed: int | None, directory: Path, hint: str | None = None) -> KosiError:
    """The one line for a full file system: the path, what needed how much, what was free."""
    need = f"{what} needs {human_size(needed)}, " if needed is not None else f"{what} ran out of space, "
    return KosiError(
        f"no space left on device for {path}: {need}{human_size(free_space(directory))} free in {directory}",
        hint=hint,
    )


def is_no_space(error: BaseException) -> bool:
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(error, KosiError) and any(text in str(error) for text in NO_SPACE_TEXTS)


# ---- partial entries and their locks --------------------------------------------------------


def _lock(path: Path, blocking: bool) -> int | None:
    """An flock on `path` itself (a directory or file); None when someone else holds it."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_abandoned(directory: Path) -> list[Path]:
    """Remove partial entries in `directory` whose writer is gone (their lock can be taken)."""
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for entry in sorted(directory.glob(f"{PARTIAL_PREFIX}*")):
        try:
            fd = _lock(entry, blocking=False)
        except OSError:
            continue  # gone meanwhile, or a symlink: not ours
        if fd is None:
            continue  # its writer is still at work
        try:
            log.debug(f"removing {entry}, left behind by an interrupted cache write")
            remove_path(entry)
            removed.append(entry)
        finally:
            os.close(fd)
    return removed


def _new_partial(final: Path, *, directory: bool) -> tuple[Path, int]:
    """A new, empty partial directory or file next to `final` and the descriptor holding its
    lock. It is locked under a name remove_abandoned() ignores and only then takes its partial
    name: another build cleaning up meanwhile never finds it unlocked and takes it for abandoned."""
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(final.parent)
    prefix = f"{NEW_PREFIX}{final.name}-"
    if directory:
        new = Path(tempfile.mkdtemp(prefix=prefix, dir=final.parent))
    else:
        handle, name = tempfile.mkstemp(prefix=prefix, dir=final.parent)
        os.close(handle)
        new = Path(name)
    fd = _lock(new, blocking=True)
    assert fd is not None  # blocking
    partial = new.with_name(PARTIAL_PREFIX + new.name.removeprefix(NEW_PREFIX))
    try:
        os.rename(new, partial)
    except BaseException:
        os.close(fd)
        remove_path(new)
        raise
    return partial, fd


@contextmanager
def partial_directory(final: Path) -> Iterator[Path]:
    """A new, locked, empty directory next to `final` to fill; removed again unless committed."""
    partial, fd = _new_partial(final, directory=True)
    try:
        yield partial
    finally:
        if os.path.lexists(partial):
            remove_path(partial)
        os.close(fd)


@contextmanager
def partial_file(final: Path) -> Iterator[Path]:
    """A new, locked, empty file next to `final` to write; removed again unless committed."""
    partial, fd = _new_partial(final, directory=False)
    try:
        yield partial
    finally:
        if os.path.lexists(partial):
            partial.unlink()
        os.close(fd)


def sync_path(path: Path) -> None:
    """Flush a file, or a directory's entries, to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(partial: Path, final: Path) -> None:
    """Rename a complete partial entry into place, replacing what was there."""
    if partial.is_file():
        sync_path(partial)
    if final.is_dir() and not final.is_symlink():
        old = final.with_name(f"{PARTIAL_PREFIX}old-{os.getpid()}-{final.name}")
        os.rename(final, old)
        os.rename(partial, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(partial, final)
    sync_path(final.parent)


def write_stamp(path: Path, value: Any) -> None:
    """Write a cache's stamp (JSON) atomically: complete, flushed and renamed into place."""
    with partial_file(path) as partial:
        partial.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")
        partial.chmod(0o644)
        commit(partial, path)


def read_stamp(path: Path) -> tuple[Any, str | None]:
    """A stamp's value, or None and why it cannot be used."""
    try:
        return json.loads(path.read_text()), None
    except FileNotFoundError:
        return None, "no stamp"
    except (OSError, ValueError) as e:
        return None, f"its stamp {path.name} is unreadable ({e.__class__.__name__})"


@contextmanager
def locked(path: Path, waiting: str) -> Iterator[bool]:
    """An exclusive flock on `path` (a file, created if missing, or a directory); when someone
    else holds it, say `waiting` and wait for them. Yields whether it had to wait (what the
    other one was doing may be done now)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    else:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            waited = False
        except BlockingIOError:
            log.info(waiting)
            fcntl.flock(fd, fcntl.LOCK_EX)
            waited = True
        yield waited
    finally:
        os.close(fd)
