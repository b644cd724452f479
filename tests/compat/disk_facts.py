"""The facts of a built bootable disk that the differential test compares, read without mounting
anything (no loop device needed): output names, the partition table (sfdisk), the ESP's files
(mtools), the UKI's sections, the root partition's entries and packages (debugfs), and the
entries of the initrds (cpio). Everything is plain JSON, so mkosi's side can be cached.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tests.boot.pe_cpio import pe_sections
from tests.compat.builds import installed, listing

UUID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")
MIB = 1024 * 1024
#: UKI sections whose text is compared as it is (the others by size or digest)
TEXT_SECTIONS = (".cmdline", ".osrel", ".uname", ".sbat")


def partitions(image: Path) -> dict[str, Any]:
    """The partition table's shape: label, and per partition its type, name, attributes,
    whether it starts 1 MiB-aligned and has a UUID, and its size in MiB."""
    table = json.loads(subprocess.run(["sfdisk", "--json", str(image)], capture_output=True, text=True,
                                      check=True).stdout)["partitiontable"]  # fmt: skip
    sector = table.get("sectorsize", 512)
    found: dict[str, Any] = {"label": table["label"], "id is a UUID": bool(UUID.match(table.get("id", "")))}
    for index, part in enumerate(table["partitions"], 1):
        found[f"{index}"] = {
            "type": part["type"],
            "name": part.get("name"),
            "attrs": part.get("attrs"),
            "uuid is a UUID": bool(UUID.match(part.get("uuid", ""))),
            "aligned": part["start"] * sector % MIB == 0,
            "MiB": part["size"] * sector // MIB,
        }
    return found


def fat_files(raw: Path) -> dict[str, str]:
    """path -> "dir" or "file" for every entry of a FAT file system image (mtools)."""
    result = subprocess.run(["mdir", "-/", "-b", "-i", str(raw), "::"], capture_output=True, text=True, check=True)
    lines = [line.removeprefix("::/") for line in result.stdout.splitlines() if line.strip()]
    return {line.rstrip("/"): "dir" if line.endswith("/") else "file" for line in lines}


def fat_text(raw: Path, path: str) -> str:
    return subprocess.run(["mtype", "-i", str(raw), f"::{path}"], capture_output=True, text=True, check=True).stdout


def uki(path: Path) -> dict[str, Any]:
    """Section names in order; the text of the small sections; the kernel's digest; sizes."""
    sections = pe_sections(path.read_bytes())
    found: dict[str, Any] = {"sections": [name for name, _ in sections]}
    for name, content in sections:
        if name in TEXT_SECTIONS:
            found[name] = content.rstrip(b"\0").decode(errors="replace")
        elif name == ".linux":
            found[".linux sha256"] = hashlib.sha256(content).hexdigest()
        else:
            found[f"{name} KiB"] = len(content) // 1024
    return found


def ext4_entries(raw: Path) -> dict[str, list]:
    """path -> [type, mode, uid, gid] of every entry of an ext4 image, read with debugfs one
    directory level at a time (its rdump would drop setuid and setgid bits)."""
    entries: dict[str, list] = {}
    level = [""]
    while level:
        commands = "".join(f'ls -p "/{directory}"\n' for directory in level)
        with tempfile.NamedTemporaryFile("w", suffix=".debugfs") as script:
            script.write(commands)
            script.flush()
            output = subprocess.run(["debugfs", "-f", script.name, str(raw)], capture_output=True, text=True,
                                    check=True).stdout  # fmt: skip
        following, directory = [], None
        for line in output.splitlines():
            if line.startswith("debugfs: ls -p "):
                directory = line.removeprefix("debugfs: ls -p ").strip('"/')
                continue
            fields = line.split("/")
            if directory is None or len(fields) < 7 or fields[5] in (".", ".."):
                continue
            mode, uid, gid, name = int(fields[2], 8), int(fields[3]), int(fields[4]), fields[5]
            path = f"{directory}/{name}".strip("/")
            kind = {0o040000: "d", 0o120000: "l", 0o100000: "f"}.get(mode & 0o170000, "other")
            entries[path] = [kind, mode & 0o7777, uid, gid]
            if kind == "d":
                following.append(path)
        level = following
    return entries


def ext4_file(raw: Path, path: str) -> str:
    return subprocess.run(["debugfs", "-R", f'cat "/{path}"', str(raw)], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip


ZSTD = b"\x28\xb5\x2f\xfd"


def zstd_frame_end(data: bytes, offset: int) -> int:
    """Where the zstd frame starting at `offset` ends (RFC 8878: header, blocks, checksum), so
    that archives padded and concatenated after it can be found."""
    descriptor = data[offset + 4]
    single_segment = descriptor >> 5 & 1
    size_field = {0: single_segment, 1: 2, 2: 4, 3: 8}[descriptor >> 6]
    position = offset + 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[descriptor & 3] + size_field
    while True:
        header = int.from_bytes(data[position : position + 3], "little")
        last, kind, size = header & 1, header >> 1 & 3, header >> 3
        position += 3 + (1 if kind == 1 else size)
        if last:
            return position + (4 if descriptor >> 2 & 1 else 0)


def cpio_entries(path: Path) -> dict[str, list]:
    """path -> [type, mode, uid, gid, size] of every entry of a newc archive or several
    concatenated ones (each plain or zstd-compressed, padded with NULs between them)."""
    data = path.read_bytes()
    pieces, offset = [], 0
    while offset < len(data):
        if data[offset : offset + 4] == ZSTD:
            end = zstd_frame_end(data, offset)
            pieces.append(subprocess.run(["zstd", "-dcq"], input=data[offset:end], capture_output=True,
                                         check=True).stdout)  # fmt: skip
            offset = end
        else:
            end = data.find(ZSTD, offset)
            pieces.append(data[offset : len(data) if end < 0 else end])
            offset = len(data) if end < 0 else end
    entries: dict[str, list] = {}
    for piece in pieces:
        entries.update(newc_entries(piece))
    return entries


def newc_entries(data: bytes) -> dict[str, list]:
    entries: dict[str, list] = {}
    offset = 0
    while offset < len(data):
        if data[offset : offset + 6] != b"070701":
            offset += 1  # NUL padding after an archive
            continue
        fields = [int(data[offset + 6 + 8 * i : offset + 14 + 8 * i], 16) for i in range(13)]
        mode, uid, gid, size, name_size = fields[1], fields[2], fields[3], fields[6], fields[11]
        name = data[offset + 110 : offset + 110 + name_size - 1].decode(errors="replace").removeprefix("./")
        content = (offset + 110 + name_size + 3) & ~3
        offset = (content + size + 3) & ~3
        if name in ("TRAILER!!!", "."):
            continue
        kind = {0o040000: "d", 0o120000: "l", 0o100000: "f"}.get(mode & 0o170000, "other")
        entries[name] = [kind, mode & 0o7777, uid, gid, size if kind == "f" else 0]
    return entries


def disk_facts(output: Path) -> dict[str, Any]:
    """Every compared fact of a bootable disk built into `output` (its output directory)."""
    image = output / "image.raw"
    esp = output / "image.esp.raw"
    root = next(output.glob("image.root-*.raw"))
    esp_files = fat_files(esp)
    ukis = sorted(p for p in esp_files if p.lower().startswith("efi/linux/") and p.lower().endswith(".efi"))
    with tempfile.TemporaryDirectory() as scratch:
        status = Path(scratch, "status")
        status.write_text(ext4_file(root, "var/lib/dpkg/status"))
        packages = installed(status)
    return {
        "outputs": listing(output, set()),
        "partitions": partitions(image),
        "esp": esp_files,
        "loader.conf": fat_text(esp, "loader/loader.conf") if "loader/loader.conf" in esp_files else None,
        "uki names": ukis,
        "uki": uki(output / "image.efi"),
        "packages": packages,
        "root": ext4_entries(root),
        "initrd": cpio_entries(output / "image.initrd"),
        "kernel modules initrd": cpio_entries(output / "image.kernel-modules-initrd"),
    }
