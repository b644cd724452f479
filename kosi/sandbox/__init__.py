"""Running tools and scripts in their own mount namespace.

Interface used by the rest of kosi (the implementation lives in this package):

- `Mount(source, target, kind)`: one mount inside the sandbox.
- `sandbox_command(...) -> list[str]`: a command prefix that sets up the namespaces and
  mounts and then execs the command given after it.
- `run(cmd, sandbox=prefix, ...)`: run a command (optionally in a sandbox), log it with
  --debug, and turn a failure into a one-line KosiError naming the tool and its error.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Mapping, Sequence

from kosi import log
from kosi.errors import KosiError

MountKind = Literal["bind", "ro-bind", "tmpfs", "proc", "dev", "overlay"]


@dataclass(frozen=True)
class Mount:
    source: Path | str | None
    target: str
    kind: MountKind = "bind"


def sandbox_command(
    *,
    mounts: Sequence[Mount] = (),
    tools: Path | None = None,
    network: bool = False,
    root: Path | None = None,
    workdir: str | None = None,
) -> list[str]:
    """Placeholder until the namespace implementation lands: no isolation yet."""
    return []


def run(
    cmd: Sequence[str],
    *,
    sandbox: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    input: str | bytes | None = None,
    stdout=None,
    stderr=None,
    check: bool = True,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess:
    argv = [*sandbox, *cmd]
    log.debug("+ " + " ".join(str(a) for a in cmd))
    try:
        result = subprocess.run(argv, env=env, input=input, stdout=stdout, stderr=stderr, cwd=cwd, text=isinstance(input, str) or None)
    except FileNotFoundError:
        raise KosiError(f"{cmd[0]} is not installed (install it, or use a tools tree with ToolsTree=default)") from None
    if check and result.returncode != 0:
        raise KosiError(f"{Path(str(cmd[0])).name} failed with exit status {result.returncode}")
    return result
