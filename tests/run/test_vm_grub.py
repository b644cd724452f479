"""Bootloader=grub for real: one Debian trixie image with grub for UEFI and BIOS (one
grub.cfg for both), booted with `kosi vm` under UEFI and BIOS until the marker unit
prints; and Bootloader=grub-signed, Debian's signed grub reading its configuration
through EFI/debian/grub.cfg behind Debian's signed shim, booted under Secure Boot with
the Microsoft keys: shim, grub and kernel all keep the distribution's signatures."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from kosi.boot import grub_efi
from tests.run.vm_support import VM_CONF, boot_vm, build, needs_root

ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
BIOS_BOOT_TYPE = "21686148-6449-6E6F-744E-656564454649"
ROOT_X86_64_TYPE = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
#: TCG on two shared cores: firmware, grub and a full boot take minutes
BOOT_TIMEOUT = 900

GRUB_CONF = VM_CONF + "Bootloader=grub\n"
# Debian's signed shim and grub and nothing for BIOS; the signed kernel, no UKI (Debian ships none)
SIGNED_CONF = (
    VM_CONF.replace("         grub-pc-bin\n", "").replace("BiosBootloader=grub\n", "")
    + "Bootloader=grub-signed\nShimBootloader=signed\n"
)


def built(tmp_path_factory, name: str, conf: str) -> Path:
    if not shutil.which("qemu-system-x86_64"):
        pytest.skip("qemu-system-x86_64 is not installed")
    directory = tmp_path_factory.mktemp(name)
    (directory / "mkosi.conf").write_text(conf)
    (directory / "mkosi.output").mkdir()
    build(directory)
    return directory


@pytest.fixture(scope="module")
def grub_project(tmp_path_factory) -> Path:
    return built(tmp_path_factory, "grub", GRUB_CONF)


@pytest.fixture(scope="module")
def signed_project(tmp_path_factory) -> Path:
    return built(tmp_path_factory, "grub-signed", SIGNED_CONF)


def partition_types(image: Path) -> list[str]:
    out = subprocess.run(["sfdisk", "--json", str(image)], stdout=subprocess.PIPE, check=True, text=True).stdout
    return [p["type"] for p in json.loads(out)["partitiontable"]["partitions"]]


def esp_file(project: Path, path: str) -> bytes:
    """A file from the ESP (the image's split ESP partition, SplitArtifacts=partitions)."""
    esp = project / "mkosi.output/image.esp.raw"
    return subprocess.run(["mtype", "-i", str(esp), f"::/{path}"], stdout=subprocess.PIPE, check=True).stdout


def esp_listing(project: Path) -> set[str]:
    esp = project / "mkosi.output/image.esp.raw"
    out = subprocess.run(["mdir", "-b", "-s", "-i", str(esp), "::"], stdout=subprocess.PIPE, text=True).stdout
    return set(out.split())


@needs_root
@pytest.mark.image
def test_grub_image_layout(grub_project):
    assert "Bootloader=grub: installing" not in (grub_project / "build.log").read_text()  # the tools tree's modules
    assert partition_types(grub_project / "mkosi.output/image.raw") == [ESP_TYPE, BIOS_BOOT_TYPE, ROOT_X86_64_TYPE]
    files = esp_listing(grub_project)
    assert {
        "::/EFI/BOOT/BOOTX64.EFI",
        "::/grub/grub.cfg",
        "::/EFI/debian/grub.cfg",
        "::/grub/x86_64-efi/linux.mod",
        "::/grub/i386-pc/linux.mod",
    } <= files
    loader = esp_file(grub_project, "EFI/BOOT/BOOTX64.EFI")
    assert loader[:2] == b"MZ" and b"\x00/grub\x00" in loader and b"sbat,1,SBAT Version" in loader
    config = esp_file(grub_project, "grub/grub.cfg").decode()
    ukis = [f for f in files if f.startswith("::/EFI/Linux/") and f.endswith(".efi")]
    assert len(ukis) == 1 and f"chainloader {ukis[0][2:]}\n" in config  # UEFI: the UKI
    kernel = re.search(r"linux (/debian/[^/]+/linux) ", config).group(1)  # BIOS: kernel + initrds
    assert f"::{kernel}" in files and "root=PARTLABEL=root-x86-64" in config
    for initrd in re.search(r"initrd (.*)\n", config).group(1).split():
        assert f"::{initrd}" in files
    assert "configfile ($root)/grub/grub.cfg" in esp_file(grub_project, "EFI/debian/grub.cfg").decode()


@needs_root
@pytest.mark.vm
def test_uefi_grub_chainloads_the_uki_to_multi_user(grub_project):
    status, output, elapsed = boot_vm(grub_project, "--firmware=uefi", timeout=BOOT_TIMEOUT)
    assert "KOSI-BOOT-OK via-smbios" in output, output[-3000:]
    assert status == 0
    assert "Booting `Debian GNU/Linux 13 (trixie)'" in output  # grub's menu entry, on the serial console
    assert "Loading Linux from the unified kernel image" in output
    print(f"Firmware=uefi (grub, UKI) boot to marker and poweroff: {elapsed:.1f}s")


@needs_root
@pytest.mark.vm
def test_bios_grub_boots_the_same_image(grub_project):
    status, output, elapsed = boot_vm(grub_project, "--firmware=bios", timeout=BOOT_TIMEOUT)
    assert "KOSI-BOOT-OK via-smbios" in output, output[-3000:]
    assert status == 0
    assert "Loading Linux /debian/" in output  # grub.cfg's BIOS branch: kernel + initrds
    print(f"Firmware=bios (grub, same image) boot to marker and poweroff: {elapsed:.1f}s")


@needs_root
@pytest.mark.image
def test_grub_signed_image_layout(signed_project):
    log = (signed_project / "build.log").read_text()
    assert "Bootloader=grub-signed: installing grub-efi-amd64-signed" in log  # added to the image
    assert partition_types(signed_project / "mkosi.output/image.raw") == [ESP_TYPE, ROOT_X86_64_TYPE]
    files = esp_listing(signed_project)
    assert {"::/EFI/BOOT/BOOTX64.EFI", "::/EFI/BOOT/mmx64.efi"} <= files  # shim in front
    grub = esp_file(signed_project, str(grub_efi.efi_binary(Path(), "signed")))  # shim chains to grubx64.efi
    assert b"/EFI/debian\x00" in grub and b"grub.debian" in grub  # Debian's build, as shipped
    assert "configfile ($root)/grub/grub.cfg" in esp_file(signed_project, "EFI/debian/grub.cfg").decode()
    config = esp_file(signed_project, "grub/grub.cfg").decode()
    assert "chainloader" not in config and not any(f.startswith("::/EFI/Linux/") for f in files)
    kernel = re.search(r"linux (/debian/[^/]+/linux) ", config).group(1)
    assert f"::{kernel}" in files and not any("x86_64-efi" in f for f in files)


@needs_root
@pytest.mark.vm
def test_secure_boot_through_shim_and_signed_grub(signed_project):
    status, output, elapsed = boot_vm(
        signed_project, "--firmware=uefi-secure-boot", "--firmware-variables=microsoft", timeout=BOOT_TIMEOUT
    )
    assert "KOSI-BOOT-OK via-smbios" in output, output[-3000:]
    assert status == 0
    assert "Loading Linux /debian/" in output  # grub/grub.cfg, reached through EFI/debian/grub.cfg
    assert "secureboot: Secure boot enabled" in output  # shim let grub run, grub let the kernel run
    print(f"Firmware=uefi-secure-boot (shim, Debian's signed grub) boot to marker and poweroff: {elapsed:.1f}s")


@pytest.fixture(scope="module")
def secure_grub_esp(tmp_path_factory, default_tools_tree) -> Path:
    """Bootloader=grub (our grub-mkimage build) behind Debian's signed shim, SecureBoot=yes with a local key."""
    from tests.boot.test_secure_boot import extract_esp, genkey

    directory = tmp_path_factory.mktemp("grub-secure-boot")
    genkey(directory)
    conf = SIGNED_CONF.replace("Bootloader=grub-signed\n", "Bootloader=grub\n") + "\n[Validation]\nSecureBoot=yes\n"
    (directory / "mkosi.conf").write_text(conf)
    (directory / "mkosi.output").mkdir()
    build(directory)
    return extract_esp(directory, default_tools_tree)


@needs_root
@pytest.mark.image
def test_secure_boot_signs_our_grub_behind_shim(secure_grub_esp, default_tools_tree):
    from tests.boot.test_secure_boot import verifies

    certificate = secure_grub_esp.parent / "mkosi.crt"
    grub = grub_efi.efi_binary(secure_grub_esp, "signed")
    assert verifies(default_tools_tree, grub, certificate)  # signed before shim took its place
    assert b"\x00/grub\x00" in grub.read_bytes() and b"sbat,1,SBAT Version" in grub.read_bytes()  # shim checks SBAT
    assert not verifies(default_tools_tree, secure_grub_esp / "EFI/BOOT/BOOTX64.EFI", certificate)  # Debian's shim
    ukis = sorted((secure_grub_esp / "EFI/Linux").glob("*.efi"))
    assert len(ukis) == 1 and verifies(default_tools_tree, ukis[0], certificate)
    assert f"chainloader /EFI/Linux/{ukis[0].name}" in (secure_grub_esp / "grub/grub.cfg").read_text()
