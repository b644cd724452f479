"""Format=esp: a disk image holding only the EFI system partition: the boot loader and the UKI,
whose initrd is the image itself (the boot steps stage both in the image's /boot or /efi).

The partition has the manual's 512M unless the staged content needs more (a UKI carrying a
whole OS can), in which case it grows to the content plus room for the FAT metadata.
"""

from __future__ import annotations

import os
from pathlib import Path

from kosi.outputs.base import OutputFormat
from kosi.outputs.disk import ESP_DEFINITION, run_repart
from kosi.outputs.uki import write_maybe_compressed

MIB = 1024 * 1024
DEFAULT_SIZE = 512 * MIB
#: headroom over the content for FAT tables, directories and cluster rounding
SLACK = 64 * MIB


def content_size(*directories: Path) -> int:
    total = 0
    for directory in directories:
        for parent, _, files in os.walk(directory):
            total += sum(os.lstat(os.path.join(parent, name)).st_size for name in files)
    return total


def esp_definition(size: int) -> str:
    if size <= DEFAULT_SIZE:
        return ESP_DEFINITION
    return (ESP_DEFINITION.replace(f"SizeMinBytes={DEFAULT_SIZE // MIB}M", f"SizeMinBytes={size}")
            .replace(f"SizeMaxBytes={DEFAULT_SIZE // MIB}M", f"SizeMaxBytes={size}"))


class ESPOutput(OutputFormat):
    format = "esp"

    def write(self) -> None:
        directory = self.context.workspace / "esp-definitions"
        directory.mkdir(parents=True, exist_ok=True)
        needed = content_size(self.context.root / "boot", self.context.root / "efi") + SLACK
        size = -(-needed // MIB) * MIB  # whole MiB
        (directory / "00-esp.conf").write_text(esp_definition(size))
        raw = self.context.workspace / "esp.raw"
        run_repart(self.context, raw, definitions=[directory])
        write_maybe_compressed(self, raw)
