"""What the host's own tools can do: systemd versions, and why the host cannot do the work.

When `host_shortcoming` names a reason, kosi uses the default tools tree (kosi/tools/tree.py).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from kosi import distributions
from kosi.boot.policy import needs_boot_tools
from kosi.config.model import Config
from kosi.outputs import format as formats

#: where distributions install systemd-sysupdate (it is not on $PATH); the runtime profile has it
SYSUPDATE_PATHS = ("/usr/lib/systemd/systemd-sysupdate", "/usr/bin/systemd-sysupdate")

#: minimum host versions for the work; older ones make kosi use a tools tree
MINIMUM_SYSTEMD = 254

#: the programs that install each package manager's distributions (any one of them serves)
PACKAGE_MANAGER_PROGRAMS = {"dnf": ("dnf5", "dnf"), "pacman": ("pacman",), "zypper": ("zypper",)}


def systemd_version(binary: str, tools: Path | None = None) -> int | None:
    """The version systemd tools report ("systemd 257 (257.13-1)"), None when not installed."""
    path = shutil.which(binary, path=f"{tools}/usr/bin:{tools}/usr/sbin" if tools else None)
    if not path:
        return None
    try:
        out = subprocess.run([path, "--version"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    except OSError:
        return None
    match = re.match(r"systemd (\d+)", out)
    return int(match.group(1)) if match else None


def host_shortcoming(config: Config, verb: str = "build") -> str | None:
    """Why the host cannot do the configured work itself, or None when it can."""
    manager = str(distributions.get(str(config.distribution)).package_manager)
    programs = PACKAGE_MANAGER_PROGRAMS.get(manager, ())
    if manager == "dnf" and os.environ.get("MKOSI_DNF"):
        programs = ()  # the user named the executable
    if programs and not any(shutil.which(p) for p in programs):
        return f"Distribution={config.distribution} is installed with {' or '.join(programs)}, which the host lacks"
    fmt = formats.get(config.format)
    if fmt.needs_repart or fmt.needs_boot_tools or needs_boot_tools(config):
        version = systemd_version("systemd-repart")
        if fmt.needs_repart and (version or 0) < MINIMUM_SYSTEMD:
            found = f"systemd-repart {version}" if version else "no systemd-repart"
            return f"Format={fmt.name} needs systemd-repart >= {MINIMUM_SYSTEMD}, the host has {found}"
        if needs_boot_tools(config) and (systemd_version("ukify") or 0) < MINIMUM_SYSTEMD:
            return f"a bootable image needs ukify >= {MINIMUM_SYSTEMD}, which the host lacks"
    if verb in ("vm", "qemu", "ssh") and not shutil.which("qemu-system-x86_64"):
        return "the vm verb needs qemu, which the host lacks"
    if verb == "sysupdate" and not any(Path(p).exists() for p in SYSUPDATE_PATHS):
        return "the sysupdate verb needs systemd-sysupdate, which the host lacks"
    return None
