"""The boot policy in one place: whether an image boots, with which boot loader, and
whether the work needs the boot tools. The boot steps, the disk writer, signing and the
tools tree ask here; the facts per format come from the format registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kosi.config.values import Feature
from kosi.outputs import format as formats

if TYPE_CHECKING:
    from kosi.config.model import Config
    from kosi.pipeline.context import Context


def needs_boot_tools(config: Config) -> bool:
    """Whether the build will need the boot tools (ukify, the EFI stub): Bootable=yes, or
    auto for the formats that carry a kernel."""
    if config.bootable == Feature.auto:
        return formats.get(config.format).needs_boot_tools
    return config.bootable == Feature.enabled


def wants_boot(context: Context) -> bool:
    fmt = formats.get(context.config.format)
    if context.config.bootable == Feature.auto:  # an initrd (cpio) or extension image is never bootable on its own
        return fmt.boots_by_default
    return context.config.bootable == Feature.enabled and fmt.can_boot


def bootloader(context: Context) -> str:
    """Bootloader=, except that Format=uki means the UKI is the boot loader."""
    return "uki" if formats.get(context.config.format).output_is_uki else context.config.bootloader


def uki_is_bootloader(context: Context) -> bool:
    """Bootloader=uki / uki-signed (or Format=uki): the newest kernel's UKI is EFI/BOOT/BOOTX64.EFI."""
    return bootloader(context) in ("uki", "uki-signed")


def bios_grub(context: Context) -> bool:
    return context.config.bios_bootloader == "grub"


def is_bootable(context: Context) -> bool:
    """Bootable=yes, or auto with a kernel found by the boot steps."""
    if context.config.bootable == Feature.auto:
        return bool(context.state.kernels) or needs_boot_tools(context.config) and bool(context.state.ukis)
    return context.config.bootable == Feature.enabled


def installs_bios_grub(context: Context) -> bool:
    return context.config.bios_bootloader == "grub" and is_bootable(context)
