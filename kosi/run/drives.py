"""Drives=: extra block devices for the VM, backed by (optionally persistent) sparse files.

Syntax: ID:SIZE[:DIRECTORY[:OPTIONS[:FILE-ID[:FLAGS]]]], files named
<directory>/mkosi-drive-<machine>-<file-id>; drives sharing a file ID share the file.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from kosi.errors import KosiError

SIZE_SUFFIXES = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


@dataclass(frozen=True)
class Drive:
    id: str
    size: int
    directory: Path
    options: str
    file_id: str
    persist: bool


def parse_size(text: str) -> int:
    text = text.strip().upper().removesuffix("B")
    suffix = text[-1:] if text[-1:] in SIZE_SUFFIXES and text[-1:] else ""
    number = text[: -len(suffix)] if suffix else text
    try:
        return int(number) * SIZE_SUFFIXES[suffix]
    except ValueError:
        raise KosiError(f"Drives=: invalid size {text!r}, expected bytes with an optional K, M, G or T suffix") from None


def parse_drive(value: Any) -> Drive:
    if isinstance(value, Drive):
        return value
    if not isinstance(value, str):  # a structured value from the config table
        get = (lambda k, d=None: value.get(k, d)) if isinstance(value, dict) else (lambda k, d=None: getattr(value, k, d))
        flags = get("flags", []) or []
        return Drive(str(get("id")), int(get("size")), Path(get("directory") or "/var/tmp"), get("options") or "",
                     str(get("file_id") or get("id")), "persist" in flags)
    parts = value.split(":")
    if len(parts) < 2 or not parts[0]:
        raise KosiError(f"Drives=: {value!r} is not ID:SIZE[:DIRECTORY[:OPTIONS[:FILE-ID[:FLAGS]]]]")
    parts += [""] * (6 - len(parts))
    ident, size, directory, options, file_id, flags = parts[:6]
    unknown = {f for f in flags.split(",") if f} - {"persist"}
    if unknown:
        raise KosiError(f"Drives=: unknown flag {sorted(unknown)[0]!r} in {value!r}, only 'persist' is known")
    return Drive(ident, parse_size(size), Path(directory or "/var/tmp"), options, file_id or ident,
                 "persist" in flags.split(","))


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
