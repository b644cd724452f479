"""Running a program with the tools tree's /usr: the one thing low-level code needs of the tools tree.

A leaf module: boot, outputs and installers call `tools_command`; which tree to use and
building it live in kosi/tools/tree.py and kosi/verbs/build.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable


def tools_command(tools: Path | None, mounts: Iterable[Path] = ()) -> list[str]:
    """A command prefix that runs a program with the tools tree's /usr (its libraries and
    Python match its programs; a trixie binary cannot run against the host's libraries).

    Uses kosi.sandbox when it isolates; until then a private mount namespace where the
    tools tree's /usr is bound over /usr, the rest of the host (and so every path we pass)
    staying visible.
    """
    from kosi.sandbox import Mount, sandbox_command

    if tools is None:
        return []
    # The sandbox shows only what is mounted: every directory a command reads or writes.
    directories = sorted({Path(p) if Path(p).is_dir() else Path(p).parent for p in mounts})
    outermost = [d for d in directories if not any(o != d and o in d.parents for o in directories)]
    prefix = sandbox_command(tools=tools, mounts=[Mount(d, str(d)) for d in outermost])
    if prefix:
        return prefix
    script = 'mount --rbind "$0" /usr && exec env PATH=/usr/bin:/usr/sbin "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(tools / "usr")]
