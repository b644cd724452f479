"""systemd-boot in the ESP tree: the boot loader binary, loader.conf and Type 1 entries.

The ESP's content is staged in the image's /boot (the default 00-esp.conf copies /boot
and /efi into the ESP). Installing is copying systemd-bootx64.efi to the fallback path
EFI/BOOT/BOOTX64.EFI (found by firmware without NVRAM entries) and to EFI/systemd/,
which is what `bootctl install` does without touching EFI variables.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from kosi.distributions.base import package_hint
from kosi.errors import KosiError

BINARY = "usr/lib/systemd/boot/efi/systemd-bootx64.efi"
SIGNED = "usr/lib/systemd/boot/efi/systemd-bootx64.efi.signed"


def find_binary(root: Path, tools: Path | None, signed: bool = False) -> Path | None:
    """The image's own boot loader first (Debian's systemd-boot may pull only the signed
    build, systemd-boot-efi-amd64-signed, which boots just as well without Secure Boot),
    then the tools tree's."""
    candidates = [root / SIGNED, root / BINARY] if signed else [root / BINARY, root / SIGNED]
    if tools is not None:
        candidates.append(tools / BINARY)
    return next((path for path in candidates if path.exists()), None)


def missing_packages(
    root: Path, tools: Path | None, packages: dict[str, tuple[str, ...]], *, signed: bool = False
) -> tuple[str, ...]:
    """The packages to add to the image so that install() finds its binary (`packages`: the
    distribution's bootloader_packages): a pre-signed boot loader must come from the image,
    an unsigned one may come from the tools tree."""
    if signed:
        return () if (root / SIGNED).exists() else packages.get("systemd-boot-signed", ())
    return () if find_binary(root, tools) else packages.get("systemd-boot", ())


def install(
    esp: Path,
    root: Path,
    tools: Path | None,
    *,
    signed: bool = False,
    packages: dict[str, tuple[str, ...]] | None = None,
) -> Path:
    binary = find_binary(root, tools, signed)
    if signed and binary != root / SIGNED:
        # An unsigned fallback would not be signed later either (it counts as pre-signed).
        raise KosiError(
            f"Bootloader=systemd-boot-signed: /{SIGNED} is not in the image",
            hint=f"add {package_hint(packages, 'systemd-boot-signed')} to Packages=, or use Bootloader=systemd-boot",
        )
    if binary is None:
        raise KosiError(
            "Bootloader=systemd-boot: systemd-bootx64.efi is neither in the image nor in the tools tree",
            hint=f"add {package_hint(packages, 'systemd-boot')} to Packages=, or use ToolsTree=default",
        )
    for target in ("EFI/BOOT/BOOTX64.EFI", "EFI/systemd/systemd-bootx64.efi"):
        (esp / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(binary, esp / target)
    (esp / "EFI/Linux").mkdir(parents=True, exist_ok=True)
    write_loader_conf(esp)
    return binary


def write_loader_conf(esp: Path) -> None:
    """loader.conf as `bootctl install` writes it (systemd-boot's defaults, commented out), an
    empty loader/keys/ for Secure Boot keys to enroll, and loader/entries/: what mkosi 27.1's
    ESP has."""
    loader = esp / "loader"
    loader.mkdir(parents=True, exist_ok=True)
    conf = loader / "loader.conf"
    if not conf.exists():  # an ExtraTrees= or SkeletonTrees= loader.conf stays
        conf.write_text("#timeout 3\n#console-mode keep\n")
    (loader / "keys").mkdir(exist_ok=True)
    (loader / "entries").mkdir(exist_ok=True)


def write_type1_entry(
    esp: Path, entry_token: str, kver: str, kernel: Path, initrds: list[Path], cmdline: str, title: str
) -> Path:
    """A Boot Loader Specification Type 1 entry with the kernel and initrds copied next to it."""
    directory = esp / entry_token / kver
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy2(kernel, directory / "linux")
    lines = [f"title {title}", f"version {kver}", f"linux /{entry_token}/{kver}/linux"]
    for index, initrd in enumerate(initrds):
        name = "initrd" if index == 0 else f"initrd{index}"
        shutil.copy2(initrd, directory / name)
        lines.append(f"initrd /{entry_token}/{kver}/{name}")
    lines.append(f"options {cmdline}")
    entry = esp / "loader/entries" / f"{entry_token}-{kver}.conf"
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_text("\n".join(lines) + "\n")
    return entry
