"""Format=cpio: a newc archive with sorted entries, as the kernel expects for initrds."""

from __future__ import annotations

import os
import subprocess

from pathlib import Path

from kosi.outputs.base import OutputFormat, pipe_compressed, source_date_epoch
from kosi.outputs.compression import Compression
from kosi.outputs.naming import output_compression


def clamp_mtimes(root, epoch: int) -> None:
    """cpio has no --clamp-mtime; clamp in the tree itself (it is thrown away afterwards)."""
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            if st.st_mtime > epoch:
                os.utime(path, (epoch, epoch), follow_symlinks=False)
    if os.lstat(root).st_mtime > epoch:
        os.utime(root, (epoch, epoch))


class CpioOutput(OutputFormat):
    name = "cpio"
    extension = "cpio"
    compressed = True
    compresses_output = True
    vm_initrd = True

    def write(self) -> None:
        write_archive(self.context, self.target, output_compression(self.config))


def write_archive(context, target: Path, compression: Compression | None) -> None:
    """The image root as a sorted newc archive (mtimes clamped to SourceDateEpoch=) in `target`."""
    root = context.root
    epoch = source_date_epoch(context)
    if epoch is not None:
        clamp_mtimes(root, epoch)
    names = subprocess.run(
        ["find", ".", "-mindepth", "1", "-print0"], cwd=root, stdout=subprocess.PIPE, check=True
    ).stdout
    entries = sorted(n for n in names.split(b"\0") if n)
    listing = root.parent / "cpio-file-list"
    listing.write_bytes(b"\0".join(entries) + b"\0")
    try:
        pipe_compressed(
            context,
            [
                "sh",
                "-c",
                'exec cpio --create --reproducible --renumber-inodes --null --format=newc --quiet < "$0"',
                str(listing),
            ],
            target,
            compression,
            cwd=root,
        )
    finally:
        listing.unlink(missing_ok=True)
