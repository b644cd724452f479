"""The kernel, initrd and command line for direct kernel boot (Firmware=linux, Linux=).

Sources, in order: Linux=, the split artifacts next to the image (<name>.vmlinuz/.initrd,
<name>.efi), then the newest UKI in the disk image's ESP (read with mtools, no mount needed).
A UKI is a PE file; qemu's direct boot needs the bzImage and initrd inside it, so those
sections are cut out of it.
"""

from __future__ import annotations

import json
import struct
import subprocess
from dataclasses import dataclass
from typing import Any, Sequence
from pathlib import Path

from kosi.errors import KosiError

ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
# Discoverable Partitions Specification root types. Without UEFI nobody tells the initrd
# which disk it booted from, so gpt-auto cannot find the root: name it on the command line.
ROOT_TYPES = {
    "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",  # x86-64
    "B921B045-1DF0-41C3-AF44-4C6F280D3FAE",  # arm64
}


@dataclass
class DirectBoot:
    kernel: Path
    initrd: Path | None
    cmdline: list[str]


def pe_sections(path: Path) -> dict[str, bytes]:
    """Named sections of a PE image (a UKI: .linux, .initrd, .cmdline, .osrel, ...)."""
    data = path.read_bytes()
    if data[:2] != b"MZ":
        return {}
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    if data[pe : pe + 4] != b"PE\0\0":
        return {}
    count = struct.unpack_from("<H", data, pe + 6)[0]
    optional_size = struct.unpack_from("<H", data, pe + 20)[0]
    table = pe + 24 + optional_size
    sections: dict[str, Any] = {}
    for index in range(count):
        entry = table + index * 40
        name = data[entry : entry + 8].rstrip(b"\0").decode(errors="replace")
        virtual_size, _, raw_size, raw_offset = struct.unpack_from("<IIII", data, entry + 8)
        # the first of a name: a UKI's later .cmdline/.profile sections belong to extra profiles
        sections.setdefault(name, data[raw_offset : raw_offset + min(virtual_size or raw_size, raw_size)])
    return sections


def is_uki(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return head == b"MZ" and ".linux" in pe_sections(path)


def from_uki(uki: Path, scratch: Path) -> DirectBoot:
    sections = pe_sections(uki)
    if ".linux" not in sections:
        raise KosiError(f"{uki} is not a unified kernel image (it has no .linux section)")
    scratch.mkdir(parents=True, exist_ok=True)
    kernel = scratch / "vmlinuz"
    kernel.write_bytes(sections[".linux"])
    initrd = None
    if ".initrd" in sections:
        initrd = scratch / "initrd"
        initrd.write_bytes(sections[".initrd"])
    cmdline = sections.get(".cmdline", b"").decode(errors="replace").strip("\0 \n").split()
    return DirectBoot(kernel, initrd, cmdline)


def partition_table(image: Path) -> dict:
    result = subprocess.run(
        ["sfdisk", "--json", str(image)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    if result.returncode != 0:
        return {}
    return json.loads(result.stdout).get("partitiontable", {})


def root_argument(image: Path) -> list[str]:
    """root=PARTUUID=... for the image's root partition (direct kernel boot of a disk image)."""
    if not image.is_file():
        return []
    for partition in partition_table(image).get("partitions", []):
        if str(partition.get("type", "")).upper() in ROOT_TYPES and partition.get("uuid"):
            return [f"root=PARTUUID={str(partition['uuid']).lower()}"]
    return []


def esp_offset(image: Path) -> int | None:
    table = partition_table(image)
    if not table:
        return None
    sector = int(table.get("sectorsize", 512))
    for partition in table.get("partitions", []):
        if str(partition.get("type", "")).upper() == ESP_TYPE:
            return int(partition["start"]) * sector
    return None


def has_esp(image: Path) -> bool:
    return image.is_file() and esp_offset(image) is not None


def uki_from_esp(image: Path, scratch: Path) -> Path | None:
    """Copy the newest UKI from the ESP's /EFI/Linux (mtools reads the FAT at an offset)."""
    offset = esp_offset(image)
    if offset is None:
        return None
    target = f"{image}@@{offset}"
    listing = subprocess.run(
        ["mdir", "-b", "-i", target, "::/EFI/Linux"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    if listing.returncode != 0:
        return None
    ukis = sorted(line.strip() for line in listing.stdout.splitlines() if line.strip().lower().endswith(".efi"))
    if not ukis:
        return None
    scratch.mkdir(parents=True, exist_ok=True)
    destination = scratch / "esp.efi"
    source = "::" + ukis[-1] if ukis[-1].startswith("/") else "::/EFI/Linux/" + ukis[-1].rsplit("/", 1)[-1]
    subprocess.run(["mcopy", "-n", "-i", target, source, str(destination)], check=True, stderr=subprocess.DEVNULL)
    return destination


def concatenated_initrd(candidates: Sequence[Path | None], scratch: Path) -> Path | None:
    """qemu takes one initrd; cpio archives concatenate (the kernel unpacks them in order)."""
    parts = [p for p in candidates if p and p.exists()]
    if len(parts) <= 1:
        return parts[0] if parts else None
    scratch.mkdir(parents=True, exist_ok=True)
    target = scratch / "initrd.combined"
    with target.open("wb") as out:
        for part in parts:
            out.write(part.read_bytes())
    return target


def find_direct_boot(linux: Path | None, artifacts: dict[str, Path], image: Path, scratch: Path) -> DirectBoot:
    """Linux= wins; then the split artifacts (the UKI first: its initrd already includes the
    kernel modules and it carries the command line); then the UKI inside the image's ESP."""
    # image.initrd is the whole initrd, the kernel modules initrd included (as mkosi 27.1 writes it)
    whole = artifacts.get("initrd")
    initrds = [whole] if whole and whole.exists() else [artifacts.get("kernel-modules-initrd")]
    if linux is not None:
        if not linux.exists():
            raise KosiError(f"Linux=: {linux} does not exist")
        if is_uki(linux):
            return from_uki(linux, scratch)
        return DirectBoot(linux, concatenated_initrd(initrds, scratch), [])
    uki, kernel = artifacts.get("efi"), artifacts.get("vmlinuz")
    if uki and uki.exists() and is_uki(uki):
        return from_uki(uki, scratch)
    if kernel and kernel.exists():
        return DirectBoot(kernel, concatenated_initrd(initrds, scratch), [])
    if image.is_file() and is_uki(image):
        return from_uki(image, scratch)
    if image.is_file():
        found = uki_from_esp(image, scratch)
        if found:
            return from_uki(found, scratch)
    raise KosiError(
        "Firmware=linux: no kernel found: set Linux=, use SplitArtifacts=uki,kernel,initrd, "
        "or build a UKI into the image's ESP"
    )
