"""CPU architectures as the manual names them (Architecture=), with the names other tools use.

Scripts receive $ARCHITECTURE, $QEMU_ARCHITECTURE, $EFI_ARCHITECTURE and
$DISTRIBUTION_ARCHITECTURE; the [Match] condition Architecture=uefi selects every
architecture with UEFI firmware.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Architecture:
    name: str  # the manual's spelling, e.g. "x86-64"
    kernel: str  # `uname -m`, e.g. "x86_64"
    debian: str  # dpkg's architecture, e.g. "amd64"
    qemu: str  # qemu-system-<qemu>
    efi: str | None  # the suffix of BOOT<EFI>.EFI, e.g. "x64"; None without UEFI
    bits: int = 64

    @property
    def supports_uefi(self) -> bool:
        return self.efi is not None


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture("x86-64", "x86_64", "amd64", "x86_64", "x64"),
        Architecture("x86", "i686", "i386", "i386", "ia32", bits=32),
        Architecture("arm64", "aarch64", "arm64", "aarch64", "aa64"),
        Architecture("arm", "armv7l", "armhf", "arm", "arm", bits=32),
        Architecture("alpha", "alpha", "alpha", "alpha", None),
        Architecture("arc", "arc", "arc", "arc", None, bits=32),
        Architecture("ia64", "ia64", "ia64", "ia64", None),
        Architecture("loongarch64", "loongarch64", "loong64", "loongarch64", "loongarch64"),
        Architecture("mips-le", "mips", "mipsel", "mipsel", None, bits=32),
        Architecture("mips64-le", "mips64", "mips64el", "mips64el", None),
        Architecture("parisc", "parisc64", "hppa", "hppa", None),
        Architecture("ppc", "ppc", "powerpc", "ppc", None, bits=32),
        Architecture("ppc64", "ppc64", "ppc64", "ppc64", None),
        Architecture("ppc64-le", "ppc64le", "ppc64el", "ppc64", None),
        Architecture("riscv32", "riscv32", "riscv32", "riscv32", "riscv32", bits=32),
        Architecture("riscv64", "riscv64", "riscv64", "riscv64", "riscv64"),
        Architecture("s390", "s390", "s390", "s390x", None, bits=32),
        Architecture("s390x", "s390x", "s390x", "s390x", None),
        Architecture("tilegx", "tilegx", "tilegx", "tilegx", None),
    )
}

#: `uname -m` spellings that differ per CPU generation but mean one architecture.
KERNEL_ALIASES = {
    "i386": "x86",
    "i486": "x86",
    "i586": "x86",
    "amd64": "x86-64",
    "armv8l": "arm",
    "armv7hl": "arm",
    "armv6l": "arm",
    "mips64el": "mips64-le",
    "mipsel": "mips-le",
}


def names() -> list[str]:
    return list(ARCHITECTURES)


def get(name: str) -> Architecture:
    return ARCHITECTURES[name]


def from_kernel(machine: str) -> str | None:
    """The manual's name for a `uname -m` string, or None when kosi does not know it."""
    for arch in ARCHITECTURES.values():
        if arch.kernel == machine:
            return arch.name
    return KERNEL_ALIASES.get(machine)


def host() -> str:
    """The architecture of the machine kosi runs on (the default of Architecture=)."""
    machine = os.uname().machine
    return from_kernel(machine) or machine


def uefi_names() -> list[str]:
    return [a.name for a in ARCHITECTURES.values() if a.supports_uefi]
