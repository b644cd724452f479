"""The boot steps of the build: kernel modules, boot loader, UKIs / boot entries.

They fill the ESP tree in the image's /boot; Format=disk then copies it into the ESP
(00-esp.conf), Format=uki and Format=esp take their output from it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from kosi import distributions, log
from kosi.boot import grub, grub_efi, shim, signing, systemd_boot
from kosi.boot.devicetree import add_to_type1_entry, find_devicetrees
from kosi.boot.initrd import combined_initrd, default_initrd, image_initrds, modules_initrd
from kosi.boot.kernels import Kernel, find_kernels
from kosi.boot.microcode import microcode_cpio
from kosi.boot.modules import filter_image_modules
from kosi.boot.pcrs import PCR_SETTINGS, want_signed_pcrs
from kosi.boot.policy import bios_grub, bootloader, uki_is_bootloader, wants_boot
from kosi.boot.uki import UKIRequest, build_uki, default_format, entry_name, find_stub
from kosi.config.values import DefaultInitrd, Feature
from kosi.errors import KosiError
from kosi.outputs import format as formats
from kosi.pipeline.context import Context
from kosi.pipeline.step import ImageDependent, Skipped, Step
from kosi.pipeline.tools import find_tool


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


def write_entry_token(context: Context) -> str:
    """/etc/kernel/entry-token, as mkosi 27.1 records the token systemd-boot's entries are named
    with (kernel-install reads it when the image installs a kernel later); returns the token."""
    token = entry_token(context)
    path = context.root / "etc/kernel/entry-token"
    if bootloader(context) in ("systemd-boot", "systemd-boot-signed") and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(token + "\n")
    return token


def os_release(root: Path) -> dict[str, str]:
    for candidate in ("etc/os-release", "usr/lib/os-release"):
        path = root / candidate
        if path.exists():
            pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
            return {k.strip(): v.strip().strip('"') for k, v in pairs}
    return {}


def kernel_command_line(context: Context) -> str:
    """KernelCommandLine=, plus the defaults a fresh image needs to boot and show a console,
    and the verity root hash of a disk whose root or /usr has verity (roothash=/usrhash=)."""
    args = list(context.config.kernel_command_line)
    keys = {a.split("=", 1)[0] for a in args}
    defaults = [context.state.verity_hash] if context.state.verity_hash else []
    if "console" not in keys:
        defaults += ["console=ttyS0", "console=tty0"]
    # A root behind verity is read-only: no "rw" for it by default.
    root_verity = (context.state.verity_hash or "").startswith("roothash=")
    if "rw" not in keys and "ro" not in keys and not root_verity:
        defaults.append("rw")
    return " ".join([*defaults, *args])


def bootloader_packages(context: Context) -> dict[str, tuple[str, ...]]:
    """The distribution's packages that ship each boot loader (its bootloader_packages)."""
    return distributions.get(context.config.distribution).bootloader_packages


def regenerate_boot_entries(context: Context, verity_hash: str) -> None:
    """Format=disk with verity: the UKIs / boot entries again, with `verity_hash` (roothash= or
    usrhash=, known once repart wrote the partition) on their command line."""
    context.state.verity_hash = verity_hash
    esp = esp_tree(context)
    for uki in context.state.ukis:  # named after the command line's hash now (&h)
        (esp / "EFI/Linux" / uki.name).unlink(missing_ok=True)
        uki.unlink(missing_ok=True)
    GenerateUKIs().run(context)


def require_kernels(context: Context) -> list[Kernel]:
    kernels = find_kernels(context.root)
    if not kernels and context.config.bootable == Feature.enabled:
        raise KosiError(
            "Bootable=yes but no kernel is installed in the image",
            hint=f"add a kernel package to Packages=, e.g. {distributions.get(context.config.distribution).kernel_hint()}",
        )
    return kernels


def no_kernel(context: Context) -> str | None:
    """Bootable=auto without a kernel in the image: the boot steps have nothing to do (with
    Bootable=yes they run, and fail saying what is missing)."""
    if context.config.bootable == Feature.auto and not find_kernels(context.root):
        return ImageDependent("no kernel in the image (Bootable=auto)")
    return None


class BootDirectories(Step):
    """/efi and /boot (0500 when missing) and /boot/loader/entries.srel saying "type1", so
    kernel-install and bootctl in the image use the Boot Loader Specification's Type 1 layout:
    mkosi 27.1 adds them to every image that is a whole OS, bootable or not."""

    name = "create /efi and /boot/loader/entries.srel"

    def skip(self, context):
        from kosi.pipeline.layers import layered_skip

        return layered_skip(context.config)

    def inputs(self, context):
        return {"boot directories": "efi, boot/loader/entries.srel"}

    def run(self, context):
        for name in ("efi", "boot"):
            directory = context.root / name
            if not directory.is_dir():
                directory.mkdir(mode=0o500)
                directory.chmod(0o500)  # whatever the umask
        loader = context.root / "boot/loader"
        if not loader.is_dir():
            loader.mkdir(mode=0o700)
            loader.chmod(0o700)
        srel = loader / "entries.srel"
        if not srel.exists():
            srel.touch(mode=0o600)
            srel.chmod(0o600)
        srel.write_text("type1\n")


def image_module_patterns(config: Any) -> list[str]:
    """KernelModules=, with "host" added by the older KernelModulesIncludeHost=yes."""
    return [*config.kernel_modules, *(["host"] if config.kernel_modules_include_host else [])]


class KernelModules(Step):
    """KernelModules=: keep only the selected modules (and what they need) in the image."""

    name = "select kernel modules"

    def skip(self, context: Context) -> str | None:
        if not image_module_patterns(context.config) and not context.config.kernel_modules_exclude:
            return "neither KernelModules= nor KernelModulesExclude= is set"
        return None

    def inputs(self, context: Context) -> dict[str, Any]:
        return {
            "KernelModules": image_module_patterns(context.config),
            "KernelModulesExclude": context.config.kernel_modules_exclude,
            "FirmwareFiles": context.config.firmware_files,
            "FirmwareExclude": context.config.firmware_exclude,
        }

    def run(self, context: Context) -> None:
        for kernel in find_kernels(context.root):
            removed = filter_image_modules(
                context.root,
                kernel.version,
                image_module_patterns(context.config),
                context.config.firmware_files,
                context.tools,
                context.config.kernel_modules_exclude,
                context.config.firmware_exclude,
            )
            log.debug(f"{kernel.version}: removed {removed} modules not selected by KernelModules=")


def packages_installed_up_front(context: Context) -> tuple[str, ...]:
    """What the main install adds to Packages= for the boot loader: with Bootloader=
    systemd-boot-signed on a distribution installed with apt, the signed systemd-boot. Installed
    later into an image whose systemd-boot came with the unsigned binary (Packages=systemd-boot
    systemd-boot-efi), it fires systemd-boot's dpkg trigger, which fails without an ESP
    (`bootctl --print-esp-path` under `set -e`); in one transaction with systemd-boot it does
    not. mkosi 27.1 stops instead (docs/compatibility.md)."""
    from kosi.distributions import get

    if bootloader(context) != "systemd-boot-signed" or not wants_boot(context):
        return ()
    distribution = get(context.config.distribution)
    if distribution.package_manager != "apt":
        return ()
    wanted = distribution.bootloader_packages.get("systemd-boot-signed", ())
    return tuple(package for package in wanted if package not in context.config.packages)


def has_debian_package(root: Path, name: str) -> bool:
    return (root / "var/lib/dpkg/info" / f"{name}.list").exists()


def add_bootloader_packages(context: Context, packages: tuple[str, ...]) -> None:
    """Debian's systemd-boot does not pull systemd-boot-efi without Recommends; rather than
    failing late (as mkosi does), install what the boot loader needs into the image."""
    from kosi.distributions import get
    from kosi.installers.base import required_package_manager

    if not packages or get(context.config.distribution).package_manager != "apt":
        return
    log.info(f"Bootloader={bootloader(context)}: installing {', '.join(packages)}, which the image lacks")
    required_package_manager(context).install(context, list(packages))


class InstallBootloader(Step):
    """systemd-boot into the ESP tree (and grub's files for BiosBootloader=grub)."""

    name = "install bootloader"

    def skip(self, context: Context) -> str | None:
        if not wants_boot(context):
            return "Bootable=no"
        if (bootloader(context) == "none" or uki_is_bootloader(context)) and not bios_grub(context):
            return f"Bootloader={bootloader(context)}"
        return no_kernel(context)

    def run(self, context: Context) -> None:
        kernels = require_kernels(context)
        context.state.kernels = [k.version for k in kernels]
        if not kernels:
            raise Skipped("no kernel in the image (Bootable=auto)")
        esp = esp_tree(context)
        if bootloader(context) in ("systemd-boot", "systemd-boot-signed"):
            signed = bootloader(context).endswith("signed")
            packages = bootloader_packages(context)
            if missing := systemd_boot.missing_packages(context.root, context.tools, packages, signed=signed):
                if signed and has_debian_package(context.root, "systemd-boot"):  # its trigger would fail
                    raise KosiError(
                        f"Bootloader=systemd-boot-signed: the image has systemd-boot but not /{systemd_boot.SIGNED}",
                        hint=f"add {', '.join(missing)} to Packages= (or use Bootloader=systemd-boot)",
                    )
                add_bootloader_packages(context, missing)
            if (
                systemd_boot.find_binary(context.root, context.tools) is None
                and context.config.bootable == Feature.auto
            ):
                raise Skipped("systemd-boot is not installed (Bootable=auto)")
            binary = systemd_boot.install(esp, context.root, context.tools, signed=signed, packages=packages)
            log.debug(f"systemd-boot from {binary}")
        if bootloader(context) in ("grub", "grub-signed"):
            install_grub_efi(context, esp)
        shim.fetch_if_missing(context)  # ShimBootloader=
        if bios_grub(context):
            grub.stage_modules(esp, context.root, context.tools, bootloader_packages(context))


class GenerateUKIs(Step):
    """A UKI per kernel (or Type 1 entries), with the default or configured initrds."""

    name = "generate unified kernel images"

    def skip(self, context: Context) -> str | None:
        if not wants_boot(context):
            return "Bootable=no"
        if bootloader(context) == "none" and not bios_grub(context):
            return "Bootloader=none"
        return no_kernel(context)

    def inputs(self, context: Context) -> dict[str, Any]:
        names = (
            "Bootloader",
            "UnifiedKernelImages",
            "UnifiedKernelImageFormat",
            "Initrds",
            "InitrdPackages",
            "KernelCommandLine",
            "KernelInitrdModules",
            "KernelModulesInitrd",
            "Splash",
            "Devicetrees",
            "MicrocodeHost",
            "UnifiedKernelImageProfiles",
            *PCR_SETTINGS,
        )
        return {n: context.config[n] for n in names}

    def run(self, context: Context) -> None:
        kernels = require_kernels(context)
        if not kernels:
            raise Skipped("no kernel in the image (Bootable=auto)")
        config = context.config
        context.state.kernels = [k.version for k in kernels]
        for kernel in kernels:  # systemd's layout too, as mkosi 27.1 (Debian's kernel is in /boot)
            layout = kernel.modules(context.root) / "vmlinuz"
            if not layout.exists():
                shutil.copy2(kernel.image, layout)
        esp = esp_tree(context)
        cmdline = kernel_command_line(context)
        # Format=uki / esp: the image is the initrd, with its own modules
        image_is_initrd = formats.get(config.format).image_is_initrd
        if image_is_initrd:
            base_initrds = image_initrds(context)
        else:  # Initrds=default (or none) is the default initrd; kosi builds it, mkosi's file is not read
            configured = [default_initrd(context) if isinstance(i, DefaultInitrd) else i for i in config.initrds]
            base_initrds = configured or [default_initrd(context)]
        # With Bootloader=none only grub (BiosBootloader=grub) boots the image, and it takes Type 1 files.
        use_ukis = uki_is_bootloader(context) or (
            bootloader(context) != "none" and config.unified_kernel_images != "none"
        )
        if (
            bootloader(context) in ("grub-signed", "systemd-boot-signed")
            and config.unified_kernel_images == "auto"
            and any(signing.find_prebuilt_uki(context.root, k.version) is None for k in kernels)
        ):
            use_ukis = False  # a signed boot loader boots the distribution's signed kernel (Secure Boot through shim)
        if (
            use_ukis
            and not uki_is_bootloader(context)
            and config.unified_kernel_images == "auto"
            and (find_stub(context.root, context.tools) is None or find_tool("ukify", context.tools) is None)
        ):
            use_ukis = False  # UnifiedKernelImages=auto: Type 1 entries when a UKI can't be built
        token = write_entry_token(context)
        title = os_release(context.root).get("PRETTY_NAME", "Linux")
        if uki_is_bootloader(context):
            kernels = kernels[:1]  # only the newest kernel, as the default boot entry
        ukis: list[Path] = []
        esp_ukis: dict[str, str] = {}  # kernel version -> its UKI, relative to the ESP
        initrds_of: dict[str, list[Path]] = {}
        microcode = microcode_cpio(context.root, config.microcode_host, context.workspace, context.tools)
        for kernel in kernels:
            devicetrees = find_devicetrees(context.root, kernel.version, config.devicetrees)
            initrds = list(base_initrds)
            if config.kernel_modules_initrd and not image_is_initrd:
                initrds.append(
                    modules_initrd(context, kernel.version, context.workspace / f"kernel-modules-{kernel.version}.cpio")
                )
                context.state.split_modules_initrd = initrds[-1]
            # Without a UKI's .ucode section (Type 1 entries, grub), early microcode is the first initrd.
            initrds_of[kernel.version] = [microcode, *initrds] if microcode else initrds
            context.state.split_kernel = kernel.image
            context.state.split_initrd = combined_initrd(initrds, context.workspace / f"initrd-{kernel.version}")
            if not use_ukis:
                entry = systemd_boot.write_type1_entry(
                    esp, token, kernel.version, kernel.image, initrds_of[kernel.version], cmdline, title
                )
                add_to_type1_entry(entry, esp, devicetrees)
                continue
            pattern = config.unified_kernel_image_format or default_format(cmdline, context.root)
            name = entry_name(pattern, token, kernel.version, cmdline) + ".efi"
            output = context.workspace / "ukis" / name
            output.parent.mkdir(parents=True, exist_ok=True)
            request = UKIRequest(
                kernel=kernel.image,
                kver=kernel.version,
                initrds=initrds,
                cmdline=cmdline,
                os_release=context.root / "usr/lib/os-release",
                output=output,
                splash=context.root / config.splash.lstrip("/") if config.splash else None,
                profiles=list(config.unified_kernel_image_profiles),
                microcode=microcode,
                devicetrees=devicetrees,
                pcr_config=config if want_signed_pcrs(config, context.tools) else None,
            )
            if not signing.copy_prebuilt_uki(context, kernel.version, output):
                build_uki(request, context.root, context.tools, context.workspace)
            ukis.append(output)
            target = esp / "EFI/BOOT/BOOTX64.EFI" if uki_is_bootloader(context) else esp / "EFI/Linux" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(output, target)
            esp_ukis[kernel.version] = str(target.relative_to(esp))
        context.state.ukis = ukis
        signing.secure_esp(context, esp)  # SecureBoot=, ShimBootloader=, SecureBootAutoEnroll=
        if bios_grub(context) or bootloader(context) in ("grub", "grub-signed"):
            write_grub_entries(
                context, esp, token, title, bios_command_line(context, cmdline), kernels, initrds_of, esp_ukis
            )


def bios_command_line(context: Context, cmdline: str) -> str:
    """Under BIOS no boot loader tells the initrd which partition it came from (UEFI's
    LoaderDevicePartUUID), so name the root partition by the label systemd-repart gives the
    default 10-root.conf ("root-<architecture>"). Own repart definitions need their own root=."""
    if any(word.startswith("root=") for word in cmdline.split()) or context.config.repart_directories:
        return cmdline
    return f"{cmdline} root=PARTLABEL=root-{context.config.architecture}"


def install_grub_efi(context: Context, esp: Path) -> None:
    """Bootloader=grub / grub-signed: grub's EFI image into the ESP tree."""
    signed = bootloader(context) == "grub-signed"
    packages = bootloader_packages(context)
    if missing := grub_efi.missing_packages(context.root, context.tools, packages, signed=signed):
        add_bootloader_packages(context, missing)
    if context.config.bootable == Feature.auto and not grub_efi.found(context.root, context.tools, signed=signed):
        raise Skipped("grub is not installed (Bootable=auto)")
    binary = grub_efi.install(
        esp,
        context.root,
        context.tools,
        context.workspace / "grub",
        signed=signed,
        vendor=os_release(context.root).get("ID", "linux"),
        packages=packages,
    )
    log.debug(f"grub for UEFI at {binary}")


def write_grub_entries(
    context: Context,
    esp: Path,
    token: str,
    title: str,
    cmdline: str,
    kernels: list[Kernel],
    initrds_of: dict[str, list[Path]],
    esp_ukis: dict[str, str],
) -> None:
    """grub.cfg: UEFI grub chainloads the UKIs when there are some; BIOS grub (and UEFI grub
    without UKIs) boots kernel + initrds from the files a Type 1 entry puts into the ESP
    (written here, without the entry, if only UKIs were built)."""
    bios = bios_grub(context)
    entries = []
    for kernel in kernels:
        initrds = initrds_of[kernel.version]
        uki = esp_ukis.get(kernel.version) if bootloader(context) in ("grub", "grub-signed") else None
        if kernel.version in esp_ukis and (bios or uki is None):
            systemd_boot.write_type1_entry(esp, token, kernel.version, kernel.image, initrds, cmdline, title)
            (esp / "loader/entries" / f"{token}-{kernel.version}.conf").unlink()
        entries.append(
            grub.GrubEntry(
                title,
                f"{token}/{kernel.version}/linux",
                tuple(f"{token}/{kernel.version}/initrd{i or ''}" for i in range(len(initrds))),
                cmdline,
                uki,
            )
        )
    grub.write_config(esp, entries, bios=bios)


STEPS = (KernelModules, InstallBootloader, GenerateUKIs)
