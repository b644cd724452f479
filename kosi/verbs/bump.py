"""`kosi bump` and `--auto-bump`: raise the last number of the version in mkosi.version.

`1.2.3` becomes `1.2.4`, `1` becomes `2`, `2024.09~rc1` becomes `2024.09~rc2` (the last run
of digits, keeping its zero padding). A missing mkosi.version is an error rather than a
silent "1", and an executable one is a script whose output is the version, so it cannot
be bumped either.

With --auto-bump the build uses the bumped version and the file is only written when the
build succeeds: `auto_bump_begin()` before, `auto_bump_commit()` after.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kosi import log
from kosi.errors import KosiError

VERSION_FILE = "mkosi.version"


def bumped(version: str, origin: str = VERSION_FILE) -> str:
    matches = list(re.finditer(r"\d+", version))
    if not matches:
        raise KosiError(f"cannot bump version {version!r}: it has no number", file=origin)
    last = matches[-1]
    number = str(int(last.group()) + 1).zfill(len(last.group()))
    return version[: last.start()] + number + version[last.end() :]


def version_file(directory: Path) -> Path:
    from kosi.config.loader import config_directory

    path = config_directory(directory) / VERSION_FILE
    if not path.is_file():
        raise KosiError(f"{path} does not exist, nothing to bump", hint=f"create it, e.g. echo 1 > {VERSION_FILE}")
    if os.access(path, os.X_OK):
        raise KosiError(f"{path} is executable: its output is the version, so it cannot be bumped")
    return path


def bump_file(path: Path) -> str:
    old = path.read_text().strip()
    new = bumped(old, str(path))
    path.write_text(new + "\n")
    log.info(f"bumped version {old} -> {new} in {path}")
    return new


def project_directory(args: Any) -> Path:
    directory = getattr(args, "directory", None)
    return Path(directory).resolve() if directory else Path.cwd()


@dataclass
class PendingBump:
    path: Path
    old: str
    new: str


def auto_bump_begin(target: Any) -> PendingBump | None:
    """Make the build use the bumped version; nothing is written until auto_bump_commit().

    Best called with the parsed command line *before* the project is loaded: the new
    version is then added as `--image-version`, so specifiers such as %v in Output= see
    it. Called with an already loaded Project, the images' ImageVersion= is replaced
    (values derived from it while loading keep the old version).
    """
    images = getattr(target, "images", None)
    directory = Path(images[-1].directory) if images else project_directory(target)
    try:
        path = version_file(directory)
    except KosiError as e:
        log.warn(f"--auto-bump: {e}")
        return None
    old = path.read_text().strip()
    new = bumped(old, str(path))
    if images is None:
        from kosi.config.settings import SETTINGS_BY_NAME

        target.assignments.append((SETTINGS_BY_NAME["ImageVersion"], new))
    else:
        for config in images:
            if config.values.get("ImageVersion") in (None, old):
                config.values["ImageVersion"] = new
    return PendingBump(path, old, new)


def auto_bump_commit(pending: PendingBump | None) -> None:
    """The build succeeded: record the version it used."""
    if pending is None:
        return
    pending.path.write_text(pending.new + "\n")
    log.info(f"bumped version {pending.old} -> {pending.new} in {pending.path}")


def run(args) -> int:
    bump_file(version_file(project_directory(args)))
    return 0
