"""Bootable images of distributions whose mirrors are out of reach here, built and booted for
real: their repositories hold Debian trixie's binaries repackaged under the distribution's
package names (tests/installers/debian_payload.py, bootable_rpms.py), signed by a test key
and served on 127.0.0.1.

Fedora: `Format=disk Bootable=yes` with systemd-boot and a UKI, whose default initrd kosi
builds from the same repository with dnf; the disk is inspected (partitions, the ESP's UKI,
its kernel and initrds, the rpm database) and booted in qemu to the marker unit.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.boot.pe_cpio import cpio_members, section
from tests.run.vm_support import KOSI, boot_vm, build, needs_root

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "installers"))
import bootable_rpms
import rpm_repo

FEDORA_KEY = "RPM-GPG-KEY-fedora-42-primary"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@pytest.fixture(scope="session")
def fedora_boot_mirror():
    mirror = bootable_rpms.fedora_mirror()
    with rpm_repo.Server(mirror.root) as server:
        yield mirror, server.url


@pytest.fixture(scope="module")
def fedora_disk(tmp_path_factory, fedora_boot_mirror) -> Path:
    if not shutil.which("qemu-system-x86_64"):
        pytest.skip("qemu-system-x86_64 is not installed")
    mirror, url = fedora_boot_mirror
    project = tmp_path_factory.mktemp("fedora-boot")
    (project / "mkosi.conf").write_text(
        f"[Distribution]\nDistribution=fedora\nRelease={bootable_rpms.RELEASE}\nMirror={url}/fedora\n\n"
        "[Output]\nFormat=disk\nManifestFormat=json\nSplitArtifacts=uki,kernel,initrd\n\n"
        "[Content]\nBootable=yes\nBootloader=systemd-boot\nPackages=kernel\n         systemd\n         udev\n"
        "         systemd-boot\n\n"
        f"[Build]\nPackageCacheDirectory={project / 'pkgcache'}\n"
    )
    pki = project / "mkosi.sandbox/etc/pki/rpm-gpg"
    pki.mkdir(parents=True)
    shutil.copy(mirror.key, pki / FEDORA_KEY)
    (project / "mkosi.output").mkdir()
    build(project)
    return project


def zstd_frame_end(data: bytes, offset: int) -> int:
    """Where the zstd frame at `offset` ends (RFC 8878: header, blocks, checksum)."""
    assert data[offset : offset + 4] == ZSTD_MAGIC, offset
    descriptor = data[offset + 4]
    single_segment = descriptor >> 5 & 1
    size_field = (0 if not single_segment else 1, 2, 4, 8)[descriptor >> 6]
    position = offset + 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[descriptor & 3] + size_field
    while True:
        header = int.from_bytes(data[position : position + 3], "little")
        kind, size = header >> 1 & 3, header >> 3
        position += 3 + (1 if kind == 1 else size)
        if header & 1:
            return position + (4 if descriptor & 4 else 0)


def initrd_archives(initrd: bytes) -> list[dict[str, bytes]]:
    """The regular files of each zstd-compressed cpio archive of a combined initrd (one
    after another, each padded to 4 bytes)."""
    archives, offset = [], 0
    while offset < len(initrd):
        end = zstd_frame_end(initrd, offset)
        data = subprocess.run(["zstd", "-dcq"], input=initrd[offset:end], stdout=subprocess.PIPE, check=True).stdout
        archives.append(cpio_members(data))
        offset = end + (-end % 4)
    return archives


def box(project: Path, *command: str) -> str:
    """`command` run in kosi's sandbox with the tools tree (mtools, systemd-dissect, ...)."""
    result = subprocess.run(
        [*KOSI, "-C", str(project), "box", "--", *command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert result.returncode == 0, result.stdout
    return result.stdout


@needs_root
@pytest.mark.image
def test_fedora_disk_has_a_uki_of_the_rpm_kernel(fedora_disk, fedora_boot_mirror):
    mirror, _ = fedora_boot_mirror
    out = fedora_disk / "mkosi.output"
    table = json.loads(
        subprocess.run(["sfdisk", "--json", str(out / "image.raw")], stdout=subprocess.PIPE, check=True).stdout
    )["partitiontable"]
    assert table["label"] == "gpt"
    names = [p["name"] for p in table["partitions"]]
    assert names == ["esp", "root-x86-64"], names
    # the ESP: systemd-boot and the UKI named after the kernel of kernel-core
    listing = box(fedora_disk, "mdir", "-/", "-b", "-i", f"{out / 'image.raw'}@@1M", "::/")
    files = {line.strip().lstrip(":") for line in listing.split()}
    assert "/EFI/BOOT/BOOTX64.EFI" in files and "/EFI/systemd/systemd-bootx64.efi" in files, listing
    ukis = [f for f in files if f.startswith("/EFI/Linux/") and f.endswith(".efi")]
    assert len(ukis) == 1 and mirror.kver in ukis[0], listing
    # the UKI carries the rpm's kernel, the image's os-release and the default initrd
    uki = (out / "image.efi").read_bytes()
    vmlinuz = (bootable_rpms.debian_payload.payload().vmlinuz).read_bytes()
    assert section(uki, ".linux")[: len(vmlinuz)] == vmlinuz
    assert "ID=fedora" in section(uki, ".osrel").decode()
    assert section(uki, ".initrd").startswith((out / "image.initrd").read_bytes())
    # the default initrd, made with dnf from the same repository: systemd as /init, without
    # shadow-utils (removed again, as mkosi 27.1 does); then every module of the kernel, with
    # the modules.dep of the depmod kosi ran (the rpm has none)
    base, modules = initrd_archives((out / "image.initrd").read_bytes())
    assert "usr/lib/systemd/systemd" in base and b"ID=fedora" in base["usr/lib/os-release"]
    assert (
        bootable_rpms.SHADOW_MARKER not in base
        and (fedora_disk / "mkosi.output/image" / bootable_rpms.SHADOW_MARKER).exists() is False
    )
    kernel = f"usr/lib/modules/{mirror.kver}"
    assert f"{kernel}/kernel/fs/btrfs/btrfs.ko.xz" in modules and f"{kernel}/modules.dep" in modules
    assert "btrfs.ko.xz" in modules[f"{kernel}/modules.dep"].decode()
    # the packages came from the repository, as the rpm database in the image and the manifest say
    manifest = json.loads((out / "image.manifest").read_text())
    names = {p["name"] for p in manifest["packages"]} - {"gpg-pubkey"}
    assert names == set(mirror.packages), names


@needs_root
@pytest.mark.vm
def test_fedora_disk_boots_to_the_marker(fedora_disk):
    status, output, elapsed = boot_vm(fedora_disk)
    assert "KOSI-BOOT-OK" in output, output[-4000:]
    print(f"boot of the Fedora disk: {elapsed:.1f}s")
