"""`kosi burn DEVICE`: write the disk image to a block device, the GPT fitted to the device.

systemd-repart --copy-from (v255+) rewrites the partition table for the medium's sector
size and end; with an older repart the image is copied byte for byte and the backup GPT
header moved to the end of the device with sfdisk.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from kosi import log
from kosi.errors import KosiError


def repart_copy_from_supported(tools: Path | None) -> bool:
    from kosi.tools.host import systemd_version

    return (systemd_version("systemd-repart", tools) or 0) >= 255


def burn_commands(image: Path, device: str, *, copy_from: bool) -> list[list[str]]:
    if copy_from:
        return [
            [
                "systemd-repart",
                "--no-pager",
                "--dry-run=no",
                "--offline=no",
                "--empty=force",
                f"--copy-from={image}",
                device,
            ]
        ]
    return [
        ["dd", f"if={image}", f"of={device}", "bs=4M", "conv=fsync,notrunc", "status=progress"],
        ["sfdisk", "--relocate", "gpt-bak-std", device],
    ]


def run(args) -> int:
    from kosi.config.loader import load_project
    from kosi.outputs.naming import output_format
    from kosi.run.image import ensure_built
    from kosi.run.toolsenv import runtime_prefix
    from kosi.verbs.build import ensure_tools_tree

    words = list(getattr(args, "verb_args", []) or [])
    if len(words) != 1:
        raise KosiError("burn takes exactly one argument: the block device to write to", hint="kosi burn /dev/sdX")
    device = words[0]
    try:
        mode = os.stat(device).st_mode
    except FileNotFoundError:
        raise KosiError(f"burn: {device} does not exist") from None
    if not stat.S_ISBLK(mode):
        raise KosiError(f"burn: {device} is not a block device")
    project = load_project(args)
    if output_format(project.main) != "disk":
        raise KosiError(f"burn writes disk images; Format={output_format(project.main)}", hint="use Format=disk")
    image = ensure_built(project, args)
    tools = ensure_tools_tree(project, args)
    prefix = runtime_prefix(tools)
    for cmd in burn_commands(image, device, copy_from=repart_copy_from_supported(tools)):
        log.step(" ".join(cmd))
        if subprocess.run([*prefix, *cmd]).returncode != 0:
            raise KosiError(f"burn: {cmd[0]} failed writing {device}")
    return 0
