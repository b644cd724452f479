"""The boot steps of the build: kernel modules, boot loader, UKIs / boot entries.

They fill the ESP tree in the image's /boot; Format=disk then copies it into the ESP
(00-esp.conf), Format=uki and Format=esp take their output from it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from kosi import log
from kosi.boot import grub, systemd_boot
from kosi.boot.initrd import default_initrd, modules_initrd
from kosi.boot.kernels import Kernel, find_kernels
from kosi.boot.modules import filter_image_modules
from kosi.boot.uki import UKIRequest, build_uki, default_format, entry_name, find_stub
from kosi.errors import KosiError
from kosi.pipeline.context import Context
from kosi.pipeline.settings_access import flag, paths, setting, word
from kosi.pipeline.step import Step
from kosi.pipeline.tools import find_tool


def bootable_mode(context: Context) -> str:
    """"yes", "no" or "auto" (Bootable= as a word)."""
    value = word(context.config, "Bootable", "auto").lower()
    if value in ("yes", "true", "1", "enabled"):
        return "yes"
    if value in ("no", "false", "0", "disabled"):
        return "no"
    return "auto"


def wants_boot(context: Context) -> bool:
    fmt = word(context.config, "Format", "disk")
    mode = bootable_mode(context)
    if mode == "auto":  # an initrd (cpio) or extension image is never made bootable on its own
        return fmt in ("disk", "uki", "esp", "directory", "tar")
    return mode == "yes" and fmt not in ("none", "sysext", "confext", "portable", "addon")


def bootloader(context: Context) -> str:
    if word(context.config, "Format", "disk") == "uki":
        return "uki"
    return word(context.config, "Bootloader", "systemd-boot").lower()


def esp_tree(context: Context) -> Path:
    """Where the ESP's content is staged inside the image: /efi when the image has it, else /boot."""
    efi = context.root / "efi"
    return efi if efi.is_dir() and any(efi.iterdir()) else context.root / "boot"


def entry_token(context: Context) -> str:
    for candidate in ("etc/kernel/entry-token", "etc/machine-id"):
        path = context.root / candidate
        if path.exists() and path.read_text().strip() not in ("", "uninitialized"):
            return path.read_text().strip()
    release = os_release(context.root)
    return release.get("IMAGE_ID") or release.get("ID") or "linux"


def os_release(root: Path) -> dict[str, str]:
    for candidate in ("etc/os-release", "usr/lib/os-release"):
        path = root / candidate
        if path.exists():
            pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
            return {k.strip(): v.strip().strip('"') for k, v in pairs}
    return {}


def kernel_command_line(context: Context) -> str:
    """KernelCommandLine=, plus the defaults a fresh image needs to boot and show a console."""
    configured = setting(context.config, "KernelCommandLine", []) or []
    if isinstance(configured, str):
        configured = configured.split()
    args = [str(a) for a in configured]
    keys = {a.split("=", 1)[0] for a in args}
    defaults = []
    if "console" not in keys:
        defaults += ["console=ttyS0", "console=tty0"]
    if "rw" not in keys and "ro" not in keys:
        defaults.append("rw")
    return " ".join([*defaults, *args])


def require_kernels(context: Context) -> list[Kernel]:
    kernels = find_kernels(context.root)
    if not kernels and bootable_mode(context) == "yes":
        raise KosiError("Bootable=yes but no kernel is installed in the image",
                        hint="add a kernel package to Packages=, e.g. linux-image-amd64")
    return kernels


class KernelModules(Step):
    """KernelModules=: keep only the selected modules (and what they need) in the image."""

    name = "select kernel modules"

    def skip(self, context: Context) -> str | None:
        if not setting(context.config, "KernelModules", []):
            return "KernelModules= is not set"
        return None

    def inputs(self, context: Context) -> dict[str, Any]:
        return {"KernelModules": setting(context.config, "KernelModules", []),
                "FirmwareFiles": setting(context.config, "FirmwareFiles", [])}

    def run(self, context: Context) -> None:
        patterns = [str(p) for p in setting(context.config, "KernelModules", [])]
        firmware = [str(p) for p in setting(context.config, "FirmwareFiles", []) or []]
        for kernel in find_kernels(context.root):
            removed = filter_image_modules(context.root, kernel.version, patterns, firmware, context.tools)
            log.debug(f"{kernel.version}: removed {removed} modules not selected by KernelModules=")


def add_bootloader_packages(context: Context, packages: tuple[str, ...]) -> None:
    """Debian's systemd-boot does not pull systemd-boot-efi without Recommends; rather than
    failing late (as mkosi does), install what the boot loader needs into the image."""
    from kosi.distributions import get
    from kosi.installers.base import package_manager

    if get(word(context.config, "Distribution", "debian")).package_manager != "apt":
        return
    log.info(f"Bootloader={bootloader(context)}: installing {', '.join(packages)}, which the image lacks")
    package_manager(context).install(context, list(packages))


class InstallBootloader(Step):
    """systemd-boot into the ESP tree (and grub's files for BiosBootloader=grub)."""

    name = "install bootloader"

    def skip(self, context: Context) -> str | None:
        if not wants_boot(context):
            return "Bootable=no"
        if bootloader(context) in ("none", "uki") and word(context.config, "BiosBootloader", "none") != "grub":
            return f"Bootloader={bootloader(context)}"
        return None

    def run(self, context: Context) -> None:
        kernels = require_kernels(context)
        context.state["kernels"] = [k.version for k in kernels]
        if not kernels:
            log.info("no kernel in the image: not installing a boot loader (Bootable=auto)")
            return
        esp = esp_tree(context)
        if bootloader(context) in ("systemd-boot", "systemd-boot-signed"):
            if systemd_boot.find_binary(context.root, context.tools) is None:
                add_bootloader_packages(context, systemd_boot.DEBIAN_PACKAGES)
            if systemd_boot.find_binary(context.root, context.tools) is None and bootable_mode(context) == "auto":
                log.info("systemd-boot is not installed: no boot loader (Bootable=auto)")
                return
            binary = systemd_boot.install(esp, context.root, context.tools,
                                          signed=bootloader(context).endswith("signed"))
            log.debug(f"systemd-boot from {binary}")
        if word(context.config, "BiosBootloader", "none") == "grub":
            grub.stage_modules(esp, context.root, context.tools)


class GenerateUKIs(Step):
    """A UKI per kernel (or Type 1 entries), with the default or configured initrds."""

    name = "generate unified kernel images"

    def skip(self, context: Context) -> str | None:
        if not wants_boot(context):
            return "Bootable=no"
        if bootloader(context) == "none" and word(context.config, "Format", "disk") != "uki":
            return "Bootloader=none"
        return None

    def inputs(self, context: Context) -> dict[str, Any]:
        names = ("Bootloader", "UnifiedKernelImages", "UnifiedKernelImageFormat", "Initrds", "InitrdPackages",
                 "KernelCommandLine", "KernelInitrdModules", "KernelModulesInitrd", "Splash")
        return {n: setting(context.config, n) for n in names}

    def run(self, context: Context) -> None:
        kernels = require_kernels(context)
        if not kernels:
            return
        context.state["kernels"] = [k.version for k in kernels]
        esp = esp_tree(context)
        cmdline = kernel_command_line(context)
        base_initrds = [Path(p) for p in paths(context.config, "Initrds")] or [default_initrd(context)]
        ukis_mode = word(context.config, "UnifiedKernelImages", "auto").lower()
        use_ukis = bootloader(context) == "uki" or ukis_mode not in ("no", "none", "false", "0")
        if use_ukis and ukis_mode == "auto" and (find_stub(context.root, context.tools) is None
                                                 or find_tool("ukify", context.tools) is None):
            use_ukis = False  # UnifiedKernelImages=auto: Type 1 entries when a UKI can't be built
        token = entry_token(context)
        release = os_release(context.root)
        title = release.get("PRETTY_NAME", "Linux")
        if bootloader(context) == "uki":
            kernels = kernels[:1]  # only the newest kernel, as the default boot entry
        ukis: list[Path] = []
        grub_entries = []
        for kernel in kernels:
            initrds = list(base_initrds)
            if flag(context.config, "KernelModulesInitrd", True):
                initrds.append(modules_initrd(context, kernel.version,
                                              context.workspace / f"kernel-modules-{kernel.version}.cpio"))
            context.state["split_kernel"] = str(kernel.image)
            context.state["split_initrd"] = str(base_initrds[0])
            if len(initrds) > len(base_initrds):
                context.state["split_modules_initrd"] = str(initrds[-1])
            if not use_ukis:
                systemd_boot.write_type1_entry(esp, token, kernel.version, kernel.image, initrds, cmdline, title)
                grub_entries.append((title, f"{token}/{kernel.version}/linux",
                                     [f"{token}/{kernel.version}/initrd{i or ''}" for i in range(len(initrds))], cmdline))
                continue
            pattern = setting(context.config, "UnifiedKernelImageFormat") or default_format(cmdline, context.root)
            name = entry_name(str(pattern), token, kernel.version, cmdline) + ".efi"
            output = context.workspace / "ukis" / name
            output.parent.mkdir(parents=True, exist_ok=True)
            splash = setting(context.config, "Splash")
            request = UKIRequest(kernel=kernel.image, kver=kernel.version, initrds=initrds, cmdline=cmdline,
                                 os_release=context.root / "usr/lib/os-release", output=output,
                                 splash=context.root / str(splash).lstrip("/") if splash else None,
                                 profiles=[Path(p) for p in paths(context.config, "UnifiedKernelImageProfiles")])
            build_uki(request, context.root, context.tools, context.workspace)
            ukis.append(output)
            if bootloader(context) == "uki":
                target = esp / "EFI/BOOT/BOOTX64.EFI"
            else:
                target = esp / "EFI/Linux" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(output, target)
        context.state["ukis"] = [str(u) for u in ukis]
        if word(context.config, "BiosBootloader", "none") == "grub":
            if use_ukis:  # BIOS cannot start a PE file: boot kernel + initrds directly
                grub_entries = []
                for kernel in kernels:
                    systemd_boot.write_type1_entry(esp, token, kernel.version, kernel.image, base_initrds
                                                   + [context.workspace / f"kernel-modules-{kernel.version}.cpio"]
                                                   * flag(context.config, "KernelModulesInitrd", True), cmdline, title)
                    (esp / "loader/entries" / f"{token}-{kernel.version}.conf").unlink()
                    count = len(base_initrds) + int(flag(context.config, "KernelModulesInitrd", True))
                    grub_entries.append((title, f"{token}/{kernel.version}/linux",
                                         [f"{token}/{kernel.version}/initrd{i or ''}" for i in range(count)], cmdline))
            grub.write_config(esp, grub_entries, None)


STEPS = (KernelModules, InstallBootloader, GenerateUKIs)
