"""Drives=: extra block devices for the VM, backed by (optionally persistent) sparse files.

Syntax: ID:SIZE[:DIRECTORY[:OPTIONS[:FILE-ID[:FLAGS]]]], files named
<directory>/mkosi-drive-<machine>-<file-id>; drives sharing a file ID share the file.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator


@dataclass(frozen=True)
class Drive:
    id: str
    size: int
    directory: Path
    options: str
    file_id: str
    persist: bool


def parse_drive(value: Any) -> Drive:
    """A Drives= entry as the config table parsed it, or its text (hand-made Configs)."""
    if isinstance(value, Drive):
        return value
    if isinstance(value, str):
        from kosi.config.values import DriveValue, Origin

        value = DriveValue().parse("Drives", value, Origin())
    flags = getattr(value, "flags", ()) or ()
    return Drive(str(value.id), int(value.size), Path(value.directory or "/var/tmp"), value.options or "",
                 str(value.file_id or value.id), "persist" in flags)


@contextlib.contextmanager
def drive_args(values: list[Any], machine: str) -> Iterator[list[str]]:
    """-blockdev options for every drive; non-persistent backing files are removed afterwards."""
    drives = [parse_drive(v) for v in values]
    files: dict[str, Path] = {}
    temporary: list[Path] = []
    args: list[str] = []
    try:
        for drive in drives:
            path = files.get(drive.file_id)
            if path is None:
                path = drive.directory / f"mkosi-drive-{machine}-{drive.file_id}"
                drive.directory.mkdir(parents=True, exist_ok=True)
                existed = path.exists()
                with path.open("ab") as f:
                    if f.tell() < drive.size:
                        f.truncate(drive.size)
                if not drive.persist and not existed:
                    temporary.append(path)
                files[drive.file_id] = path
            spec = f"driver=raw,node-name={drive.id},discard=unmap,file.driver=file,file.filename={path},file.locking=off"
            if drive.options:
                spec += "," + drive.options
            args += ["-blockdev", spec]
        yield args
    finally:
        for path in temporary:
            path.unlink(missing_ok=True)
