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


@pytest.mark.parametrize(
    ("conf", "added"),
    [
        ("Bootloader=systemd-boot-signed\n", ("systemd-boot-efi-amd64-signed",)),
        ("Bootloader=systemd-boot-signed\nPackages=systemd-boot-efi-amd64-signed\n", ()),
        ("Bootloader=systemd-boot-signed\nBootable=no\n", ()),
        ("Bootloader=systemd-boot\n", ()),
        ("Bootloader=grub-signed\n", ()),
    ],
)
def test_signed_systemd_boot_is_installed_with_the_packages(tmp_path, conf, added):
    """Bootloader=systemd-boot-signed: the signed package joins the main install (and its
    cache key), not a later install whose systemd-boot trigger fails."""
    from kosi.boot.steps import packages_installed_up_front
    from kosi.pipeline.packages import InstallPackages
    from tests.boot.test_steps import loaded

    context = loaded(tmp_path, "[Distribution]\nDistribution=debian\n[Output]\nFormat=disk\n[Content]\n" + conf)
    assert packages_installed_up_front(context) == added
    assert InstallPackages().inputs(context).get("boot loader packages", ()) == added


def test_signed_systemd_boot_missing_beside_systemd_boot_is_one_line(tmp_path):
    """An image with systemd-boot and only the unsigned binary (the signed package removed, or
    from a base tree): kosi does not install the signed one afterwards (its trigger would fail)."""
    from kosi.boot.steps import InstallBootloader
    from tests.boot.test_steps import loaded, with_kernel

    context = with_kernel(loaded(tmp_path, "[Distribution]\nDistribution=debian\n[Output]\nFormat=disk\n"
                                           "[Content]\nBootloader=systemd-boot-signed\n"))  # fmt: skip
    put(context.root / systemd_boot.BINARY)
    put(context.root / "var/lib/dpkg/info/systemd-boot.list", b"/.\n")
    with pytest.raises(KosiError, match="the image has systemd-boot but not /usr/lib/systemd/boot/efi/") as error:
        InstallBootloader().run(context)
    assert error.value.hint == "add systemd-boot-efi-amd64-signed to Packages= (or use Bootloader=systemd-boot)"
