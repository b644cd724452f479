"""Format=esp's partition definition: the manual's 00-esp.conf, grown when the content needs
it, without the kernel package's files from /boot."""

from __future__ import annotations

from kosi.outputs.esp import DEFAULT_SIZE, distribution_kernel_files, esp_definition
from kosi.outputs.disk import ESP_DEFINITION


def test_default_size_and_kernel_package_files_left_out(tmp_path):
    boot = tmp_path / "boot"
    (boot / "EFI/Linux").mkdir(parents=True)
    for name in ("vmlinuz-6.12", "config-6.12", "System.map-6.12", "initrd.img-6.12", "EFI/Linux/debian-6.12.efi"):
        (boot / name).write_bytes(b"x")
    excluded = distribution_kernel_files(tmp_path)
    assert [p.name for p in excluded] == ["System.map-6.12", "config-6.12", "initrd.img-6.12", "vmlinuz-6.12"]
    text = esp_definition(DEFAULT_SIZE, tmp_path, excluded)
    assert text.startswith(ESP_DEFINITION) and "ExcludeFiles=/boot/vmlinuz-6.12\n" in text
    grown = esp_definition(DEFAULT_SIZE + 1024 * 1024, tmp_path, [])
    assert f"SizeMinBytes={DEFAULT_SIZE + 1024 * 1024}\n" in grown and "512M" not in grown
