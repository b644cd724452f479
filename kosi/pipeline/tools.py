"""Finding the programs the image-setup steps run, and running them in the sandbox.

A program comes from the tools tree when there is one and it ships the program (a newer
systemd knows the newer image), else from the host. Either way it runs in the sandbox with
that /usr, read-only; only the paths the caller mounts (the image root) are visible.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from kosi.sandbox import Mount, run, sandbox_command
from kosi.tools.packages import debian_package

#: where programs live below a root; bin and sbin for hosts that have not merged /usr
PROGRAM_DIRECTORIES = ("usr/bin", "usr/sbin", "usr/lib/systemd", "bin", "sbin")

HOST = Path("/")


@dataclass(frozen=True)
class Tool:
    name: str
    path: str  # where the program is inside the sandbox, e.g. /usr/bin/systemd-hwdb
    tools: Path | None  # the tools tree whose /usr the sandbox gets; None for the host's

    def where(self) -> str:
        return f"the tools tree {self.tools}" if self.tools else "the host"

    def sandbox(self, mounts: Sequence[Mount]) -> list[str]:
        return sandbox_command(mounts=mounts, tools=self.tools, network=False)


def _program_in(root: Path, relative: str) -> bool:
    """Whether `root`/`relative` is an executable file, reading absolute symlinks as `root` sees them."""
    path = root / relative
    for _ in range(10):
        if not path.is_symlink():
            return path.is_file() and os.access(path, os.X_OK)
        target = os.readlink(path)
        path = root / target.lstrip("/") if target.startswith("/") else path.parent / target
    return False


def find_tool(name: str, tools: Path | None) -> Tool | None:
    """`name` from ExtraSearchPaths=, else the tools tree, else the host; None when none has it."""
    from kosi.sandbox import extra_search_paths

    for directory in extra_search_paths():
        if _program_in(Path("/"), f"{directory.strip('/')}/{name}"):
            return Tool(name, f"{directory.rstrip('/')}/{name}", None if tools is None else Path(tools))
    for root in ([Path(tools)] if tools is not None else []) + [HOST]:
        for directory in PROGRAM_DIRECTORIES:
            if _program_in(root, f"{directory}/{name}"):
                return Tool(name, f"/{directory}/{name}", None if root == HOST else Path(root))
    return None


def missing_reason(name: str, tools: Path | None) -> str | None:
    """The skip reason of a step whose program is nowhere to be found."""
    if find_tool(name, tools) is not None:
        return None
    where = "on the host or in the tools tree" if tools else "on the host"
    package = debian_package(name)
    return f"{name} not found {where}" + (f" (Debian package {package})" if package else "")


def run_on_root(
    tool: Tool,
    root: Path,
    arguments: Sequence[str],
    *,
    mounts: Sequence[Mount] = (),
    env: Mapping[str, str] | None = None,
    check: bool = True,
):
    """Run `tool` with `arguments` (which name `root` by its own path) in the sandbox, where the
    image root (and `mounts`) appear at the same paths as outside; only they can be written."""
    return run([tool.path, *arguments], sandbox=tool.sandbox([Mount(root, str(root)), *mounts]), env=env, check=check)
