"""Moving finished outputs into OutputDirectory= — the very last thing a build does.

Everything is produced in the workspace's staging directory first, so a failed or
interrupted build leaves the previous outputs untouched. Publishing itself is atomic per
output: each new output is first written completely next to its destination, under a
hidden temporary name in the output directory (same file system: a rename when staging is
on it too, else a copy that is flushed to disk), and only when every new output is complete
are they renamed over the old ones. Running out of space while copying leaves the previous
outputs byte-identical and no temporary file behind.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from kosi.config.model import Config
from kosi.errors import KosiError
from kosi.outputs.naming import artifact_names, base_name, output_directory, output_name
from kosi.pipeline import atomic
from kosi.pipeline.atomic import free_space, tree_size
from kosi.pipeline.context import Context

#: prefix of the temporary names publishing uses in the output directory
TEMPORARY_PREFIX = ".kosi-publish-"


def existing_outputs(config: Config) -> list[Path]:
    directory = output_directory(config)
    return [directory / n for n in artifact_names(config) if os.path.lexists(directory / n)]


def check_previous(config: Config, force: int) -> None:
    """Refuse to overwrite outputs of an earlier build unless -f was given.

    With -f the old outputs are only removed when the new ones are published, so a
    failed build still leaves the previous outputs intact.
    """
    existing = existing_outputs(config)
    if existing and not force:
        raise KosiError(f"output {existing[0]} already exists", hint="use -f to rebuild, or `kosi clean`")


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def copy_nspawn_settings(context: Context) -> None:
    source = context.config.nspawn_settings  # mkosi.nspawn when it exists (loader)
    if source:
        shutil.copy2(source, context.staging / f"{base_name(context.config)}.nspawn")


def no_space(path: Path, needed: int, directory: Path) -> KosiError:
    return atomic.no_space(path, "publishing", needed, directory, hint="previous outputs were left as they were")


def copy_file_synced(source: Path, target: Path) -> None:
    """Copy one regular file and flush it to disk before it can be renamed into place."""
    with open(source, "rb") as src, open(target, "xb") as dst:
        shutil.copyfileobj(src, dst, 1024 * 1024)
        dst.flush()
        os.fsync(dst.fileno())
    shutil.copystat(source, target)


def copy_entry(source: Path, target: Path) -> None:
    if source.is_symlink():
        os.symlink(os.readlink(source), target)
    elif source.is_dir():
        shutil.copytree(source, target, symlinks=True, copy_function=lambda s, d: copy_file_synced(Path(s), Path(d)))
    else:
        copy_file_synced(source, target)


def stage_next_to(entries: list[Path], directory: Path) -> list[tuple[Path, Path]]:
    """Put every entry under a temporary name in `directory`; returns (temporary, final) pairs.
    On any failure, every temporary it made is removed again."""
    same_fs = os.stat(directory).st_dev
    needed = sum(tree_size(e) for e in entries if os.lstat(e).st_dev != same_fs)
    if needed > free_space(directory):
        raise no_space(directory / entries[0].name, needed, directory)
    staged: list[tuple[Path, Path]] = []
    current = directory
    try:
        for entry in entries:
            current = directory / entry.name
            temporary = directory / f"{TEMPORARY_PREFIX}{os.getpid()}-{entry.name}"
            if os.path.lexists(temporary):
                remove_path(temporary)
            staged.append((temporary, directory / entry.name))
            if os.lstat(entry).st_dev == same_fs:
                os.rename(entry, temporary)
            else:
                copy_entry(entry, temporary)
    except BaseException as e:
        for temporary, _ in staged:
            if os.path.lexists(temporary):
                remove_path(temporary)
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise no_space(current, needed, directory) from None
        if isinstance(e, OSError):
            raise KosiError(
                f"cannot publish into {directory}: {e.strerror or e} ({e.filename or current})",
                hint="previous outputs were left as they were",
            ) from None
        raise
    return staged


def replace(temporary: Path, target: Path) -> None:
    """Rename `temporary` over `target`; a directory (which rename cannot replace) is swapped."""
    if os.path.isdir(target) and not os.path.islink(target):
        old = target.with_name(f"{TEMPORARY_PREFIX}old-{os.getpid()}-{target.name}")
        os.rename(target, old)
        os.rename(temporary, target)
        shutil.rmtree(old)
    else:
        if os.path.isdir(temporary) and os.path.lexists(target):
            target.unlink()
        os.rename(temporary, target)


def publish(context: Context) -> list[Path]:
    directory = output_directory(context.config)
    directory.mkdir(parents=True, exist_ok=True)
    mode = context.config.output_mode
    main = output_name(context.config)
    entries = sorted(context.staging.iterdir(), key=lambda p: p.name != main)
    staged = stage_next_to(entries, directory) if entries else []
    try:
        for temporary, target in staged:
            if mode is not None and target.name == main and not temporary.is_dir():
                os.chmod(temporary, mode)
        # Every new output is complete: now they replace the old ones, and old artifacts
        # this build does not produce go.
        for temporary, target in staged:
            replace(temporary, target)
    finally:
        for temporary, _ in staged:
            if os.path.lexists(temporary):
                remove_path(temporary)
    produced = {target.name for _, target in staged}
    for previous in existing_outputs(context.config):
        if previous.name not in produced:
            remove_path(previous)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return [target for _, target in staged]
