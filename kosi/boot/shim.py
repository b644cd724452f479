"""ShimBootloader=: shim as the first-stage boot loader, MokManager next to it.

Firmware starts EFI/BOOT/BOOTX64.EFI; shim started from there runs the fallback
(fbx64.efi) when present, else grubx64.efi from its own directory. Not installing the
fallback makes shim chain straight to grubx64.efi, so the real boot loader (systemd-boot,
grub or a UKI) moves from BOOTX64.EFI to EFI/BOOT/grubx64.efi and shim takes its place.
The systemd-boot copy in EFI/systemd/ stays, for firmware with an NVRAM entry for it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from kosi.errors import KosiError

SHIM_DIRECTORY = "usr/lib/shim"
#: ShimBootloader= -> (shim, MokManager) below usr/lib/shim (Debian's names)
BINARIES = {
    "signed": ("shimx64.efi.signed", "mmx64.efi.signed"),
    "unsigned": ("shimx64.efi", "mmx64.efi"),
}
#: Debian's packages with those files (shim-signed pulls shim-helpers-amd64-signed for MokManager)
DEBIAN_PACKAGES = {"signed": ("shim-signed",), "unsigned": ("shim-unsigned",)}
#: the name shim chains to
CHAINED = "grubx64.efi"


def find_binaries(root: Path, mode: str) -> tuple[Path, Path] | None:
    shim, manager = (root / SHIM_DIRECTORY / name for name in BINARIES[mode])
    return (shim, manager) if shim.is_file() and manager.is_file() else None


def missing_packages(root: Path, mode: str) -> tuple[str, ...]:
    if mode == "none" or find_binaries(root, mode) is not None:
        return ()
    return DEBIAN_PACKAGES[mode]


def install(esp: Path, root: Path, mode: str, signer=None) -> None:
    """Put shim in front of the boot loader at EFI/BOOT/BOOTX64.EFI; `signer` (SecureBoot=yes)
    signs an unsigned shim and MokManager, never ones the distribution signed."""
    binaries = find_binaries(root, mode)
    if binaries is None:
        names = " and ".join(f"/{SHIM_DIRECTORY}/{n}" for n in BINARIES[mode])
        raise KosiError(f"ShimBootloader={mode}: {names} are not in the image",
                        hint=f"add {' '.join(DEBIAN_PACKAGES[mode])} to Packages=")
    boot = esp / "EFI/BOOT"
    loader = boot / "BOOTX64.EFI"
    if loader.is_file():
        loader.replace(boot / CHAINED)
    elif not (boot / CHAINED).is_file():
        raise KosiError(f"ShimBootloader={mode}: there is no boot loader (EFI/BOOT/BOOTX64.EFI) for shim to start",
                        hint="set Bootloader= to systemd-boot, grub or uki")
    shim, manager = binaries
    shutil.copyfile(shim, loader)
    shutil.copyfile(manager, boot / "mmx64.efi")
    if signer is not None and mode == "unsigned":
        signer.sign(loader)
        signer.sign(boot / "mmx64.efi")
