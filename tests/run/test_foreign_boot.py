"""Bootable images of distributions whose mirrors are out of reach here, built and booted for
real: their repositories hold Debian trixie's binaries repackaged under the distribution's
package names (tests/installers/debian_payload.py, bootable_rpms.py), signed by a test key
and served on 127.0.0.1.

Fedora (dnf, bootable_rpms.py), openSUSE Tumbleweed (zypper, bootable_rpms.py) and Arch
(pacman, bootable_pacman.py): `Format=disk Bootable=yes` with systemd-boot and a UKI, whose
default initrd kosi builds from the same repository with the same package manager; each disk
is inspected (partitions, the ESP's UKI, its kernel and initrds, the manifest from the package
database) and booted in qemu to the marker unit.
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
import bootable_pacman
import bootable_rpms
import rpm_repo

FEDORA_KEY = "RPM-GPG-KEY-fedora-42-primary"
OPENSUSE_KEYS = "usr/share/distribution-gpg-keys/opensuse"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@pytest.fixture(scope="session")
def fedora_boot_mirror():
    mirror = bootable_rpms.fedora_mirror()
    with rpm_repo.Server(mirror.root) as server:
        yield mirror, server.url


@pytest.fixture(scope="session")
def opensuse_boot_mirror():
    mirror = bootable_rpms.opensuse_mirror()
    with rpm_repo.Server(mirror.root) as server:
        yield mirror, server.url


@pytest.fixture(scope="session")
def arch_boot_mirror():
    mirror = bootable_pacman.arch_mirror()
    with rpm_repo.Server(mirror.root) as server:  # any static server: the layout is the mirror's
        yield mirror, server.url


def disk_project(directory: Path, distribution: str, packages: str, sandbox: dict[str, Path]) -> Path:
    """A bootable disk (systemd-boot, a UKI) of `distribution` ([Distribution] lines) with
    `packages`, `sandbox` copied into mkosi.sandbox/ (the repository's key), built."""
    if not shutil.which("qemu-system-x86_64"):
        pytest.skip("qemu-system-x86_64 is not installed")
    (directory / "mkosi.conf").write_text(
        f"[Distribution]\n{distribution}\n\n"
        "[Output]\nFormat=disk\nManifestFormat=json\nSplitArtifacts=uki,kernel,initrd\n\n"
        f"[Content]\nBootable=yes\nBootloader=systemd-boot\nPackages={packages}\n\n"
        f"[Build]\nPackageCacheDirectory={directory / 'pkgcache'}\n"
    )
    for relative, source in sandbox.items():
        (directory / "mkosi.sandbox" / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, directory / "mkosi.sandbox" / relative)
    (directory / "mkosi.output").mkdir()
    build(directory)
    return directory


@pytest.fixture(scope="module")
def fedora_disk(tmp_path_factory, fedora_boot_mirror) -> Path:
    mirror, url = fedora_boot_mirror
    return disk_project(
        tmp_path_factory.mktemp("fedora-boot"),
        f"Distribution=fedora\nRelease={bootable_rpms.RELEASE}\nMirror={url}/fedora",
        "kernel systemd udev systemd-boot",
        {f"etc/pki/rpm-gpg/{FEDORA_KEY}": mirror.key},
    )


@pytest.fixture(scope="module")
def opensuse_disk(tmp_path_factory, opensuse_boot_mirror) -> Path:
    mirror, url = opensuse_boot_mirror
    return disk_project(
        tmp_path_factory.mktemp("opensuse-boot"),
        f"Distribution=opensuse\nRelease=tumbleweed\nMirror={url}",
        "kernel-default systemd udev systemd-boot",
        # the tools tree's distribution-gpg-keys has openSUSE's own keys: the mirror's replaces both
        {
            f"{OPENSUSE_KEYS}/RPM-GPG-KEY-openSUSE-Tumbleweed": mirror.key,
            f"{OPENSUSE_KEYS}/RPM-GPG-KEY-openSUSE": mirror.key,
        },
    )


@pytest.fixture(scope="module")
def arch_disk(tmp_path_factory, arch_boot_mirror) -> Path:
    mirror, url = arch_boot_mirror
    keyrings = {f"usr/share/keyrings/{p.name}": p for p in mirror.keyrings.iterdir()}
    return disk_project(
        tmp_path_factory.mktemp("arch-boot"), f"Distribution=arch\nMirror={url}", "linux systemd udev", keyrings
    )


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


def inspect_disk(project: Path, kver: str, os_id: str) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """What every bootable disk here has: a GPT with the ESP and the root partition, systemd-boot
    and one UKI named after the packaged kernel in the ESP, the UKI carrying that kernel, the
    image's os-release and the initrd; returns the initrd's two archives (the default initrd,
    the kernel modules)."""
    out = project / "mkosi.output"
    table = json.loads(
        subprocess.run(["sfdisk", "--json", str(out / "image.raw")], stdout=subprocess.PIPE, check=True).stdout
    )["partitiontable"]
    assert table["label"] == "gpt"
    names = [p["name"] for p in table["partitions"]]
    assert names == ["esp", "root-x86-64"], names
    listing = box(project, "mdir", "-/", "-b", "-i", f"{out / 'image.raw'}@@1M", "::/")
    files = {line.strip().lstrip(":") for line in listing.split()}
    assert "/EFI/BOOT/BOOTX64.EFI" in files and "/EFI/systemd/systemd-bootx64.efi" in files, listing
    ukis = [f for f in files if f.startswith("/EFI/Linux/") and f.endswith(".efi")]
    assert len(ukis) == 1 and kver in ukis[0], listing
    uki = (out / "image.efi").read_bytes()
    vmlinuz = bootable_rpms.debian_payload.payload().vmlinuz.read_bytes()
    assert section(uki, ".linux")[: len(vmlinuz)] == vmlinuz
    assert f"ID={os_id}" in section(uki, ".osrel").decode()
    assert section(uki, ".initrd").startswith((out / "image.initrd").read_bytes())
    # the default initrd, made by the distribution's package manager from the same repository,
    # with systemd as /init; then every module of the kernel, with the modules.dep of the
    # depmod kosi ran (the packages have none)
    base, modules = initrd_archives((out / "image.initrd").read_bytes())
    assert "usr/lib/systemd/systemd" in base and f"ID={os_id}".encode() in base["usr/lib/os-release"]
    directory = f"usr/lib/modules/{kver}"
    assert f"{directory}/kernel/fs/btrfs/btrfs.ko.xz" in modules and f"{directory}/modules.dep" in modules
    assert "btrfs.ko.xz" in modules[f"{directory}/modules.dep"].decode()
    return base, modules


def manifest_names(project: Path) -> set[str]:
    """The packages of the image's manifest (which kosi reads from the package database)."""
    manifest = json.loads((project / "mkosi.output/image.manifest").read_text())
    return {p["name"] for p in manifest["packages"]} - {"gpg-pubkey"}


@needs_root
@pytest.mark.image
def test_fedora_disk_has_a_uki_of_the_rpm_kernel(fedora_disk, fedora_boot_mirror):
    mirror, _ = fedora_boot_mirror
    base, _ = inspect_disk(fedora_disk, mirror.kver, "fedora")
    # shadow-utils came with the userland's Requires(pre): and left the initrd again, as in mkosi 27.1
    assert bootable_rpms.SHADOW_MARKER not in base
    assert manifest_names(fedora_disk) == set(mirror.packages)


@needs_root
@pytest.mark.image
def test_opensuse_disk_has_a_uki_of_kernel_default(opensuse_disk, opensuse_boot_mirror):
    mirror, _ = opensuse_boot_mirror
    base, _ = inspect_disk(opensuse_disk, mirror.kver, "opensuse-tumbleweed")
    # shadow and sysuser-shadow came with the userland's Requires(pre): and left the initrd
    # again (zypper), as in mkosi 27.1
    for name in bootable_rpms.OPENSUSE_REMOVED:
        assert f"usr/share/{name}/kosi-test-marker" not in base
    assert manifest_names(opensuse_disk) == set(mirror.packages)


@needs_root
@pytest.mark.image
def test_arch_disk_has_a_uki_of_the_linux_package(arch_disk, arch_boot_mirror):
    mirror, _ = arch_boot_mirror
    inspect_disk(arch_disk, mirror.kver, "arch")
    assert manifest_names(arch_disk) == set(mirror.packages)


@needs_root
@pytest.mark.vm
@pytest.mark.parametrize("disk", ["fedora_disk", "arch_disk", "opensuse_disk"])
def test_disk_boots_to_the_marker(disk, request):
    status, output, elapsed = boot_vm(request.getfixturevalue(disk))
    assert "KOSI-BOOT-OK" in output, output[-4000:]
    print(f"boot of the {disk}: {elapsed:.1f}s")
