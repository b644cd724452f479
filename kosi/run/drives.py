"""Drives=: extra block devices for the VM, backed by (optionally persistent) sparse files.

Syntax: ID:SIZE[:DIRECTORY[:OPTIONS[:FILE-ID[:FLAGS]]]], files named
<directory>/mkosi-drive-<machine>-<file-id>; drives sharing a file ID share the file.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from kosi.config.values import Drive


@contextlib.contextmanager
def drive_args(drives: list[Drive], machine: str) -> Iterator[list[str]]:
    """-blockdev options for every drive; non-persistent backing files are removed afterwards."""
    files: dict[str, Path] = {}
    temporary: list[Path] = []
    args: list[str] = []
    try:
        for drive in drives:
            file_id = drive.file_id or drive.id
            path = files.get(file_id)
            if path is None:
                directory = drive.directory or Path("/var/tmp")
                path = directory / f"mkosi-drive-{machine}-{file_id}"
                directory.mkdir(parents=True, exist_ok=True)
                existed = path.exists()
                with path.open("ab") as f:
                    if f.tell() < drive.size:
                        f.truncate(drive.size)
                if "persist" not in drive.flags and not existed:
                    temporary.append(path)
                files[file_id] = path
            spec = (
                f"driver=raw,node-name={drive.id},discard=unmap,file.driver=file,file.filename={path},file.locking=off"
            )
            if drive.options:
                spec += "," + drive.options
            args += ["-blockdev", spec]
        yield args
    finally:
        for path in temporary:
            path.unlink(missing_ok=True)
