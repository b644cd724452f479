"""The sandbox apt and dpkg run in while they install into an image root.

They see the tools tree's /usr (or the host's) read-only, a minimal /etc and nothing of the
host's /var; writable are only the workspace (configuration, logs, the local repository),
the package cache and the image root, which gets its API file systems (/proc, /dev, /sys,
/run, /tmp) so maintainer scripts, run by dpkg chrooted into the root, find them. Every
mount lives in the sandbox's private namespace and vanishes with the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from kosi.sandbox import Mount, apivfs_mounts, sandbox_command

if TYPE_CHECKING:
    from kosi.pipeline.context import Context


def in_root(context: "Context", root: Path, *, apivfs: bool = True, network: bool = True,
            extra: Sequence[Mount] = ()) -> list[str]:
    """A command prefix that runs a package manager command for `root` in the sandbox."""
    writable = [Path(context.workspace), Path(context.package_cache)]
    mounts = [Mount(path, str(path)) for path in writable]
    root = Path(root)
    if apivfs:
        mounts += apivfs_mounts(root)
    elif not any(root.is_relative_to(path) for path in writable):
        mounts.append(Mount(root, str(root)))
    return sandbox_command(mounts=[*mounts, *extra], tools=context.tools, network=network)
