"""ShimBootloader=: shim as the first-stage boot loader, MokManager next to it.

Firmware starts EFI/BOOT/BOOTX64.EFI; shim started from there runs the fallback
(fbx64.efi) when present, else grubx64.efi from its own directory. Not installing the
fallback makes shim chain straight to grubx64.efi, so the real boot loader (systemd-boot,
grub or a UKI) moves from BOOTX64.EFI to EFI/BOOT/grubx64.efi and shim takes its place.
The systemd-boot copy in EFI/systemd/ stays, for firmware with an NVRAM entry for it.

The binaries come from the image (/usr/lib/shim, Packages=shim-signed). When the image
lacks them, Debian's shim packages are downloaded and unpacked in the workspace rather
than installed: installing shim after systemd-boot fires systemd-boot's dpkg trigger,
which fails without a mounted ESP (`set -e` around `bootctl --print-esp-path`), and
the image does not need shim's files outside the ESP anyway.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from kosi import log
from kosi.distributions.base import package_hint
from kosi.errors import KosiError

SHIM_DIRECTORY = "usr/lib/shim"
#: ShimBootloader= -> (shim, MokManager) below usr/lib/shim (Debian's names)
BINARIES = {
    "signed": ("shimx64.efi.signed", "mmx64.efi.signed"),
    "unsigned": ("shimx64.efi", "mmx64.efi"),
}
#: the name shim chains to
CHAINED = "grubx64.efi"
#: where fetched packages are unpacked, below the workspace
FETCHED = "shim-packages"


def find_binaries(roots: list[Path], mode: str) -> tuple[Path, Path] | None:
    for root in roots:
        shim, manager = (root / SHIM_DIRECTORY / name for name in BINARIES[mode])
        if shim.is_file() and manager.is_file():
            return shim, manager
    return None


def fetch_if_missing(context) -> None:
    """Debian's shim packages unpacked in the workspace when ShimBootloader= finds nothing in the image."""
    from kosi.distributions import get
    from kosi.installers.apt import Apt
    from kosi.installers.base import required_package_manager
    from kosi.pipeline.tools import find_tool
    from kosi.sandbox import Mount, run

    mode = context.config.shim_bootloader
    if mode == "none" or find_binaries([context.root], mode) is not None:
        return
    if get(context.config.distribution).package_manager != "apt":
        return  # install() names the packages to add
    packages = get(context.config.distribution).bootloader_packages.get(f"shim-{mode}", ())
    if not packages:
        return  # install() says what is missing
    log.info(f"ShimBootloader={mode}: fetching {', '.join(packages)} (not in the image) for the ESP")
    debs = context.workspace / "shim-debs"
    (debs / "partial").mkdir(parents=True, exist_ok=True)
    apt = required_package_manager(context)
    assert isinstance(apt, Apt)  # checked above: the distribution's package manager is apt
    apt.apt_get(
        context,
        ["install", "--download-only", "-o", f"Dir::Cache::Archives={debs}", *packages],
        what="apt-get download shim",
    )
    target = context.workspace / FETCHED
    dpkg_deb = find_tool("dpkg-deb", context.tools)
    if dpkg_deb is None:
        raise KosiError(f"ShimBootloader={mode}: dpkg-deb is needed to unpack {packages[0]}")
    for deb in sorted(debs.glob("shim-*.deb")):
        run(
            [dpkg_deb.path, "-x", str(deb), str(target)],
            sandbox=dpkg_deb.sandbox([Mount(context.workspace, str(context.workspace))]),
        )


def install(esp: Path, roots: list[Path], mode: str, signer=None, packages: dict | None = None) -> None:
    """Put shim in front of the boot loader at EFI/BOOT/BOOTX64.EFI, taking the binaries from the
    first of `roots` that has them; `signer` (SecureBoot=yes) signs an unsigned shim and
    MokManager, never ones the distribution signed."""
    binaries = find_binaries(roots, mode)
    if binaries is None:
        names = " and ".join(f"/{SHIM_DIRECTORY}/{n}" for n in BINARIES[mode])
        raise KosiError(
            f"ShimBootloader={mode}: {names} are not in the image",
            hint=f"add {package_hint(packages, f'shim-{mode}')} to Packages=",
        )
    boot = esp / "EFI/BOOT"
    loader = boot / "BOOTX64.EFI"
    if loader.is_file():
        loader.replace(boot / CHAINED)
    elif not (boot / CHAINED).is_file():
        raise KosiError(
            f"ShimBootloader={mode}: there is no boot loader (EFI/BOOT/BOOTX64.EFI) for shim to start",
            hint="set Bootloader= to systemd-boot, grub or uki",
        )
    shim, manager = binaries
    shutil.copyfile(shim, loader)
    shutil.copyfile(manager, boot / "mmx64.efi")
    if signer is not None and mode == "unsigned":
        signer.sign(loader)
        signer.sign(boot / "mmx64.efi")
