"""Finding the kernels installed in an image root.

Distributions put the kernel in different places: /usr/lib/modules/<kver>/vmlinuz
(Fedora, Arch, systemd's kernel-install layout) or /boot/vmlinuz-<kver> (Debian,
Ubuntu). A kernel counts only when its modules directory exists, because a UKI or boot
entry for a kernel without modules would not boot far.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Kernel:
    version: str
    image: Path  # the kernel image (vmlinuz) on the host, inside the root

    def modules(self, root: Path) -> Path:
        return root / "usr/lib/modules" / self.version


def version_key(version: str) -> tuple:
    """Sort key close to `sort -V`: numbers compare as numbers, everything else as text."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", version) if part)


def find_kernels(root: Path) -> list[Kernel]:
    """Kernels in the image, newest first."""
    modules = root / "usr/lib/modules"
    found: dict[str, Kernel] = {}
    if modules.is_dir():
        for directory in modules.iterdir():
            if not directory.is_dir():
                continue
            for candidate in (
                directory / "vmlinuz",
                root / "boot" / f"vmlinuz-{directory.name}",
                directory / "vmlinux",
                root / "boot" / f"vmlinux-{directory.name}",
            ):
                if candidate.is_file():
                    found[directory.name] = Kernel(directory.name, candidate)
                    break
    return sorted(found.values(), key=lambda k: version_key(k.version), reverse=True)
