"""Format=esp: a disk image holding only the EFI system partition: the boot loader and the UKI,
whose initrd is the image itself (the boot steps stage both in the image's /boot or /efi).

The partition has the manual's 512M unless the staged content needs more (a UKI carrying a
whole OS can), in which case it grows to the content plus room for the FAT metadata. What
Debian's kernel package leaves in /boot (vmlinuz-*, config-*, ...) stays out: the UKI has
the kernel, and the ESP is meant to hold the boot loader and the UKI only.
"""

from __future__ import annotations

import os
from pathlib import Path

from kosi.outputs.base import OutputFormat
from kosi.outputs.disk import ESP_DEFINITION, run_repart
from kosi.outputs.uki import write_plain

MIB = 1024 * 1024
DEFAULT_SIZE = 512 * MIB
#: headroom over the content for FAT tables, directories and cluster rounding
SLACK = 64 * MIB


#: files distributions' kernel packages install in /boot, by prefix
KERNEL_PACKAGE_FILES = ("vmlinuz-", "vmlinux-", "initrd.img-", "config-", "System.map-")


def distribution_kernel_files(root: Path) -> list[Path]:
    boot = root / "boot"
    if not boot.is_dir():
        return []
    return sorted(p for p in boot.iterdir() if p.name.startswith(KERNEL_PACKAGE_FILES) and not p.is_dir())


def content_size(root: Path, excluded: list[Path]) -> int:
    total = 0
    for directory in (root / "boot", root / "efi"):
        for parent, _, files in os.walk(directory):
            total += sum(os.lstat(os.path.join(parent, name)).st_size for name in files)
    return total - sum(os.lstat(p).st_size for p in excluded)


def esp_definition(size: int, root: Path, excluded: list[Path]) -> str:
    text = ESP_DEFINITION
    if size > DEFAULT_SIZE:
        text = text.replace(f"SizeMinBytes={DEFAULT_SIZE // MIB}M", f"SizeMinBytes={size}").replace(
            f"SizeMaxBytes={DEFAULT_SIZE // MIB}M", f"SizeMaxBytes={size}"
        )
    return text + "".join(f"ExcludeFiles=/{p.relative_to(root)}\n" for p in excluded)


class ESPOutput(OutputFormat):
    name = "esp"
    extension = "raw"
    image_is_initrd = True
    compressed = True
    boots_by_default = True
    needs_boot_tools = True
    needs_repart = True

    def write(self) -> None:
        directory = self.context.workspace / "esp-definitions"
        directory.mkdir(parents=True, exist_ok=True)
        root = self.context.root
        excluded = distribution_kernel_files(root)
        size = -(-(content_size(root, excluded) + SLACK) // MIB) * MIB  # whole MiB
        (directory / "00-esp.conf").write_text(esp_definition(size, root, excluded))
        raw = self.context.workspace / "esp.raw"
        wanted = set(self.config.split_artifacts)
        run_repart(self.context, raw, split="partitions" in wanted, definitions=[directory])
        write_plain(self, raw)
