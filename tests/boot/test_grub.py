"""grub.cfg generation, where grub's EFI binary goes and what the boot steps write for
Bootloader=grub / grub-signed, on stand-in kernels and grub binaries (real grub-mkimage
from the tools tree where marked)."""

from __future__ import annotations

import pytest

from kosi.boot import grub, grub_efi, steps
from kosi.distributions.debian import Debian
from kosi.errors import KosiError
from kosi.pipeline.step import Skipped
from tests.boot.test_steps import KVER, TOKEN, boot_from

#: Debian's boot loader packages, which the hints name
PACKAGES = Debian.bootloader_packages

UKI_ENTRY = grub.GrubEntry(
    "Debian", "tok/6.1/linux", ("tok/6.1/initrd", "tok/6.1/initrd1"), "rw quiet", "EFI/Linux/tok-6.1.efi"
)
TYPE1_ENTRY = grub.GrubEntry("Debian", "tok/6.1/linux", ("tok/6.1/initrd",), "rw root=PARTLABEL=root-x86-64")


def menuentry(config: str) -> str:
    return config[config.index("menuentry") :]


def test_uefi_only_chainloads_the_uki():
    config = grub.render_config([UKI_ENTRY], bios=False)
    entry = menuentry(config)
    assert "chainloader /EFI/Linux/tok-6.1.efi\n" in entry and "echo 'Loading Linux" in entry
    assert "linux /" not in entry and "initrd " not in entry and "grub_platform" not in entry
    assert "set timeout=0" in config and "set default=0" in config


def test_bios_and_uefi_share_one_config():
    entry = menuentry(grub.render_config([UKI_ENTRY], bios=True))
    efi, pc = entry.split("    else\n")
    assert efi.startswith('menuentry \'Debian\' {\n    if [ "$grub_platform" = "efi" ]; then\n')
    assert "chainloader /EFI/Linux/tok-6.1.efi" in efi and "linux" not in efi.replace("Loading Linux", "")
    assert "linux /tok/6.1/linux rw quiet\n" in pc and "initrd /tok/6.1/initrd /tok/6.1/initrd1\n" in pc
    assert pc.rstrip().endswith("fi\n}".rstrip())


def test_type1_entries_load_kernel_and_initrds_on_every_platform():
    entry = menuentry(grub.render_config([TYPE1_ENTRY, TYPE1_ENTRY], bios=False))
    assert entry.count("menuentry") == 2 and "chainloader" not in entry and "grub_platform" not in entry
    assert (
        "    linux /tok/6.1/linux rw root=PARTLABEL=root-x86-64\n    echo 'Loading initial ramdisk ...'\n"
        "    initrd /tok/6.1/initrd\n}" in entry
    )


def test_serial_console_only_where_firmware_does_not_mirror_it():
    config = grub.render_config([TYPE1_ENTRY], bios=True)
    preamble = config[: config.index("menuentry")]
    assert preamble.startswith('if [ "$grub_platform" = "pc" ]; then\n    serial --unit=0 --speed=115200\n')
    assert "terminal_output serial console\nfi\n" in preamble


def test_grub_binary_moves_behind_shim(tmp_path):
    assert grub_efi.efi_binary(tmp_path, "none") == tmp_path / "EFI/BOOT/BOOTX64.EFI"
    assert grub_efi.efi_binary(tmp_path, "signed") == tmp_path / "EFI/BOOT/grubx64.efi"


def test_prefix_of_a_monolithic_image(tmp_path):
    binary = tmp_path / "grubx64.efi"
    binary.write_bytes(b"MZ...normal (memdisk)/grub.cfg\x00/EFI/debian\x00sbat,1,SBAT Version")
    assert grub_efi.embedded_prefix(binary) == "/EFI/debian"
    binary.write_bytes(b"MZ no prefix here /EFI/ \x00")
    assert grub_efi.embedded_prefix(binary) is None


def test_missing_packages(tmp_path):
    root, tools = tmp_path / "root", tmp_path / "tools"
    assert grub_efi.missing_packages(root, None, PACKAGES, signed=False) == ("grub-efi-amd64-bin",)
    assert grub_efi.missing_packages(root, tools, PACKAGES, signed=True) == ("grub-efi-amd64-signed",)
    (tools / grub_efi.EFI_MODULES).mkdir(parents=True)
    (tools / grub_efi.EFI_MODULES / "kernel.img").write_bytes(b"")
    assert grub_efi.missing_packages(root, tools, PACKAGES, signed=False) == ()
    # the tools tree's unsigned modules do not stand in for the distribution's signed image
    assert grub_efi.missing_packages(root, tools, PACKAGES, signed=True) == ("grub-efi-amd64-signed",)


def test_missing_modules_name_the_package(tmp_path):
    with pytest.raises(KosiError, match="add grub-efi-amd64-bin to Packages=") as error:
        grub_efi.install(
            tmp_path / "esp", tmp_path / "root", None, tmp_path / "ws", signed=False, vendor="debian", packages=PACKAGES
        )
    assert "x86_64-efi modules" in str(error.value)
    with pytest.raises(KosiError, match="grub-efi-amd64-signed"):
        grub_efi.install(
            tmp_path / "esp", tmp_path / "root", None, tmp_path / "ws", signed=True, vendor="debian", packages=PACKAGES
        )


def test_signed_grub_reads_the_redirection_under_its_prefix(tmp_path):
    root, esp = tmp_path / "root", tmp_path / "esp"
    signed = root / grub_efi.SIGNED
    signed.parent.mkdir(parents=True)
    signed.write_bytes(b"MZsigned\x00/EFI/ubuntu\x00")
    assert grub_efi.install(esp, root, None, tmp_path / "ws", signed=True, vendor="debian") == esp / grub_efi.FALLBACK
    assert (esp / grub_efi.FALLBACK).read_bytes() == signed.read_bytes()
    redirect = (esp / "EFI/ubuntu/grub.cfg").read_text()
    assert "configfile ($root)/grub/grub.cfg\n" in redirect and "set prefix=($root)/grub\n" in redirect
    assert not (esp / "EFI/debian").exists() and not (esp / "grub/x86_64-efi").exists()


def test_bootloader_grub_without_ukis_boots_type1_files(tmp_path):
    context = boot_from(tmp_path, "Bootloader=grub\nUnifiedKernelImages=no\n")
    config = (context.root / "boot/grub/grub.cfg").read_text()
    assert f"linux /{TOKEN}/{KVER}/linux " in config and f"initrd /{TOKEN}/{KVER}/initrd\n" in config
    assert "root=PARTLABEL=root-x86-64" in config and "chainloader" not in config
    assert (context.root / "boot" / TOKEN / KVER / "linux").read_bytes() == b"kernel"


def test_grub_signed_prefers_the_signed_kernel_to_a_local_uki(tmp_path):
    """Debian ships no signed UKI: UnifiedKernelImages=auto falls back to kernel + initrd,
    which the signed grub verifies through shim under Secure Boot."""
    context = boot_from(tmp_path, "Bootloader=grub-signed\n")
    config = (context.root / "boot/grub/grub.cfg").read_text()
    assert f"linux /{TOKEN}/{KVER}/linux " in config and "chainloader" not in config
    assert context.state.ukis == []


def test_grub_skips_neither_step(tmp_path):
    from tests.boot.test_steps import loaded, with_kernel

    for loader in ("grub", "grub-signed"):
        context = with_kernel(loaded(tmp_path / loader, f"[Output]\nFormat=disk\n[Content]\nBootloader={loader}\n"))
        assert steps.InstallBootloader().skip(context) is None and steps.GenerateUKIs().skip(context) is None


@pytest.mark.image
def test_grub_mkimage_builds_an_efi_image_with_sbat(tmp_path, default_tools_tree):
    """Real grub-mkimage from the default tools tree, its modules in the ESP next to grub.cfg."""
    esp = tmp_path / "esp"
    binary = grub_efi.install(
        esp, tmp_path / "root", default_tools_tree, tmp_path / "ws", signed=False, vendor="debian"
    )
    data = binary.read_bytes()
    assert data[:2] == b"MZ" and b"\x00/grub\x00" in data  # PE, with the prefix grub.cfg is found by
    assert b"sbat,1,SBAT Version" in data and b"\ngrub," in data  # shim insists on SBAT data
    assert (esp / "grub/x86_64-efi/linux.mod").is_file() and (esp / "grub/x86_64-efi/bli.mod").is_file()
    assert (esp / "EFI/debian/grub.cfg").is_file()


@pytest.mark.parametrize("bootable, fails", [("auto", False), ("yes", True)])
def test_grub_missing_on_a_distribution_kosi_cannot_add_it_to(tmp_path, bootable, fails):
    from tests.boot.test_steps import loaded

    context = loaded(
        tmp_path,
        "[Distribution]\nDistribution=fedora\n[Output]\nFormat=disk\n"
        f"[Content]\nBootloader=grub\nBootable={bootable}\n",
    )
    context.tools = None
    if fails:
        with pytest.raises(KosiError, match="x86_64-efi modules") as error:
            steps.install_grub_efi(context, tmp_path / "esp")
        assert "grub-efi-amd64-bin" not in str(error.value)  # Debian's package is no help on Fedora
    else:  # Bootable=auto: the step declares a skip, with the reason
        with pytest.raises(Skipped, match="grub is not installed"):
            steps.install_grub_efi(context, tmp_path / "esp")
        assert not (tmp_path / "esp").exists()
