"""Format=tar: a POSIX tar archive with sorted entries, numeric owners and xattrs.

With SourceDateEpoch= mtimes are clamped and the per-archive noise (atime, ctime and
the PID in pax header names) is left out, so two builds give identical bytes.
"""

from __future__ import annotations

from kosi.outputs.base import OutputFormat, source_date_epoch


def tar_command(context, directory) -> list[str]:
    cmd = [
        "tar",
        "--create",
        "--file=-",
        f"--directory={directory}",
        "--format=posix",
        "--sort=name",
        "--numeric-owner",
        "--xattrs",
        "--xattrs-include=*",
        "--acls",
        "--sparse",
        "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
    ]
    epoch = source_date_epoch(context)
    if epoch is not None:
        cmd += [f"--mtime=@{epoch}", "--clamp-mtime"]
    return cmd + ["."]


class TarOutput(OutputFormat):
    name = "tar"
    compresses_output = True
    extension = "tar"
    compressed = True
    boots_by_default = True

    def write(self) -> None:
        self.pipe_compressed(tar_command(self.context, self.context.root))
