"""The sandbox apt and dpkg run in while they install into an image root.

They see the tools tree's /usr (or the host's) read-only, a minimal /etc and nothing of the
host's /var; writable are only the workspace (configuration, logs, the local repository),
the package cache and the image root, which gets its API file systems (/proc, /dev, /sys,
/run, /tmp) so maintainer scripts, run by dpkg chrooted into the root, find them. Every
mount lives in the sandbox's private namespace and vanishes with the command.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from kosi.sandbox import Mount, apivfs_mounts, sandbox_command

if TYPE_CHECKING:
    from kosi.pipeline.context import Context


#: where the fsync-eating library appears, both in the sandbox and in the image (in /run, a tmpfs
#: that dies with the sandbox, so it never lands in the image)
EATMYDATA = "/run/kosi-eatmydata/libeatmydata.so"
#: Debian architecture of the multiarch directories kosi's own interpreter uses
NATIVE = {
    "x86_64-linux-gnu": "amd64",
    "aarch64-linux-gnu": "arm64",
    "i386-linux-gnu": "i386",
    "arm-linux-gnueabihf": "armhf",
    "powerpc64le-linux-gnu": "ppc64el",
    "s390x-linux-gnu": "s390x",
    "riscv64-linux-gnu": "riscv64",
    "loongarch64-linux-gnu": "loong64",
}


def eatmydata_library(context: "Context", architecture: str) -> Path | None:
    """libeatmydata from the tools tree (or the host) when it can be preloaded into the image's
    programs too: only for an image of the native architecture. dpkg --force-unsafe-io skips
    the fsync of unpacked files, but dpkg's database and maintainer scripts still sync; with
    this library nothing does (the image is synced once, when it is written out)."""
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    if NATIVE.get(multiarch) != architecture:
        return None
    base = Path(context.tools) if context.tools else Path("/")
    library = base / "usr/lib" / multiarch / "libeatmydata.so.1"
    return library if library.exists() else None


def in_root(
    context: "Context",
    root: Path,
    *,
    apivfs: bool = True,
    network: bool = True,
    extra: Sequence[Mount] = (),
    eatmydata: Path | None = None,
) -> list[str]:
    """A command prefix that runs a package manager command for `root` in the sandbox; with
    `eatmydata` (a library path) that library is at EATMYDATA for the caller's LD_PRELOAD."""
    writable = [Path(context.workspace), Path(context.package_cache)]
    mounts = [Mount(path, str(path)) for path in writable]
    root = Path(root)
    if apivfs:
        mounts += apivfs_mounts(root)
    elif not any(root.is_relative_to(path) for path in writable):
        mounts.append(Mount(root, str(root)))
    if eatmydata:
        mounts.append(Mount(eatmydata, EATMYDATA, "ro-bind"))
        if apivfs:
            mounts.append(Mount(eatmydata, f"{root}{EATMYDATA}", "ro-bind"))
    return sandbox_command(mounts=[*mounts, *extra], tools=context.tools, network=network)
