"""CPU microcode for early loading: an uncompressed cpio with kernel/x86/microcode/<vendor>.bin.

The kernel applies microcode before it unpacks any compressed initrd, and only looks for it
in an uncompressed newc archive at this fixed path, one file per vendor holding all the
updates of that vendor concatenated. The updates come from the image's firmware directory
(Debian: intel-microcode and amd64-microcode from non-free-firmware). MicrocodeHost=yes
keeps only the file that matches the CPU of the build host, as /proc/cpuinfo describes it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from kosi import log

FIRMWARE = "usr/lib/firmware"
#: vendor id (as in /proc/cpuinfo) -> directory of its updates below the firmware directory
VENDORS = {"GenuineIntel": "intel-ucode", "AuthenticAMD": "amd-ucode"}


@dataclass(frozen=True)
class CPU:
    vendor: str
    family: int
    model: int
    stepping: int


def host_cpu(cpuinfo: str | None = None) -> CPU | None:
    """The first processor of /proc/cpuinfo, None when it does not say (not x86)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor is enough
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    try:
        return CPU(fields["vendor_id"], int(fields["cpu family"]), int(fields["model"]), int(fields["stepping"]))
    except (KeyError, ValueError):
        return None


def host_update_name(cpu: CPU) -> str | None:
    """Name of the file holding the updates for `cpu` in its vendor's directory: Intel names
    files family-model-stepping in hex, AMD has one file per family (older ones share one)."""
    if cpu.vendor == "GenuineIntel":
        return f"{cpu.family:02x}-{cpu.model:02x}-{cpu.stepping:02x}"
    if cpu.vendor == "AuthenticAMD":
        return f"microcode_amd_fam{cpu.family:x}h.bin" if cpu.family >= 0x15 else "microcode_amd.bin"
    return None


def update_files(root: Path, vendor: str) -> list[Path]:
    directory = root / FIRMWARE / VENDORS[vendor]
    if not directory.is_dir():
        return []
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.endswith((".asc", ".sig")))
    # AMD's directory also holds documentation; its updates all end in .bin
    return [p for p in files if vendor != "AuthenticAMD" or p.suffix == ".bin"]


def select_updates(root: Path, only_host: bool, cpu: CPU | None = None) -> dict[str, list[Path]]:
    """vendor -> the update files going into the early cpio."""
    found = {vendor: update_files(root, vendor) for vendor in VENDORS}
    if not only_host:
        return {vendor: files for vendor, files in found.items() if files}
    cpu = cpu or host_cpu()
    name = host_update_name(cpu) if cpu else None
    if cpu is None or name is None:
        log.warn("MicrocodeHost=yes: the host's CPU is not known, so no microcode is included")
        return {}
    chosen = [p for p in found.get(cpu.vendor, []) if p.name == name]
    if not chosen:
        log.info(f"MicrocodeHost=yes: the image has no microcode update for this CPU ({cpu.vendor} {name})")
    return {cpu.vendor: chosen} if chosen else {}


def stage_tree(updates: dict[str, list[Path]], tree: Path) -> None:
    """kernel/x86/microcode/<vendor>.bin: each vendor's updates concatenated, as the kernel wants."""
    shutil.rmtree(tree, ignore_errors=True)
    target = tree / "kernel/x86/microcode"
    target.mkdir(parents=True)
    for vendor, files in updates.items():
        with open(target / f"{vendor}.bin", "wb") as out:
            for path in files:
                out.write(path.read_bytes())


def microcode_cpio(root: Path, only_host: bool, workspace: Path, tools: Path | None) -> Path | None:
    """The early microcode cpio for the image in `root`, None when it ships no microcode."""
    from kosi.boot.initrd import write_cpio

    updates = select_updates(root, only_host)
    if not updates:
        return None
    tree = workspace / "microcode-tree"
    stage_tree(updates, tree)
    output = workspace / "microcode.cpio"
    write_cpio(tree, output, tools, compress=False)
    shutil.rmtree(tree, ignore_errors=True)
    log.debug("early microcode: " + ", ".join(f"{v}: {len(f)} files" for v, f in updates.items()))
    return output
