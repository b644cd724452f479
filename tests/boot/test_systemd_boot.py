"""systemd-boot into an ESP tree: which binary, where it goes, Type 1 entries."""

from __future__ import annotations

import pytest

from kosi.boot import systemd_boot
from kosi.distributions.debian import Debian
from kosi.errors import KosiError


def put(path, content=b"MZ"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_image_binary_preferred_signed_accepted_tools_last(tmp_path):
    root, tools = tmp_path / "root", tmp_path / "tools"
    put(tools / systemd_boot.BINARY)
    assert systemd_boot.find_binary(root, tools) == tools / systemd_boot.BINARY
    signed = put(root / systemd_boot.SIGNED)  # what Debian's systemd-boot pulls by default
    assert systemd_boot.find_binary(root, tools) == signed
    unsigned = put(root / systemd_boot.BINARY)
    assert systemd_boot.find_binary(root, tools) == unsigned
    assert systemd_boot.find_binary(root, tools, signed=True) == signed


def test_install_writes_fallback_path_and_loader_conf(tmp_path):
    root, esp = tmp_path / "root", tmp_path / "root/boot"
    put(root / systemd_boot.BINARY, b"MZboot")
    systemd_boot.install(esp, root, None)
    assert (esp / "EFI/BOOT/BOOTX64.EFI").read_bytes() == b"MZboot"
    assert (esp / "EFI/systemd/systemd-bootx64.efi").read_bytes() == b"MZboot"
    assert (esp / "loader/loader.conf").read_text() == "#timeout 3\n#console-mode keep\n"  # bootctl's
    assert (esp / "loader/keys").is_dir() and (esp / "loader/entries").is_dir()


def test_missing_binary_names_the_package(tmp_path):
    with pytest.raises(KosiError, match="systemd-boot-efi"):
        systemd_boot.install(tmp_path / "esp", tmp_path / "root", None, packages=Debian.bootloader_packages)


def test_type1_entry(tmp_path):
    kernel = put(tmp_path / "vmlinuz", b"kernel")
    initrds = [put(tmp_path / "a.cpio", b"a"), put(tmp_path / "b.cpio", b"b")]
    entry = systemd_boot.write_type1_entry(tmp_path / "esp", "debian", "6.12", kernel, initrds, "rw quiet", "Debian")
    text = entry.read_text()
    assert entry.name == "debian-6.12.conf"
    assert "linux /debian/6.12/linux" in text and "initrd /debian/6.12/initrd\n" in text
    assert "initrd /debian/6.12/initrd1" in text and "options rw quiet" in text
    assert (tmp_path / "esp/debian/6.12/initrd1").read_bytes() == b"b"
