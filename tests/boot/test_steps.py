"""Boot steps reading their settings from a real mkosi.conf: which images boot, which boot
loader, Type 1 entries and grub entries from a stand-in kernel (no UKI tools needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kosi.boot import steps
from kosi.config.cli_args import parse_command_line
from kosi.config.loader import load_project
from kosi.errors import KosiError
from kosi.pipeline.context import Context
from kosi.pipeline.step import ImageDependent

KVER = "6.12.9-amd64"
TOKEN = "0123456789abcdef0123456789abcdef"  # the stand-in root's machine ID, the entry token


def loaded(directory: Path, conf: str) -> Context:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "mkosi.conf").write_text(conf)
    config = load_project(parse_command_line(["-C", str(directory), "build"])).main
    return Context(config=config, workspace=directory / "ws", package_cache=directory / "cache")


def with_kernel(context: Context) -> Context:
    """A root with a kernel as Debian installs it (/boot/vmlinuz-<kver> plus its modules directory)."""
    (context.root / "usr/lib/modules" / KVER / "kernel").mkdir(parents=True)
    (context.root / "boot").mkdir(parents=True)
    (context.root / "boot" / f"vmlinuz-{KVER}").write_bytes(b"kernel")
    (context.root / "etc").mkdir()
    (context.root / "etc/os-release").write_text('ID=debian\nPRETTY_NAME="Debian GNU/Linux 13 (trixie)"\n')
    (context.root / "etc/machine-id").write_text(TOKEN + "\n")
    return context


def boot_from(tmp_path: Path, content: str) -> Context:
    """Run the UKI/entry step on a stand-in kernel with Initrds=my.initrd and no modules initrd."""
    (tmp_path / "my.initrd").write_bytes(b"initrd")
    context = with_kernel(
        loaded(tmp_path, "[Output]\nFormat=disk\n[Content]\nKernelModulesInitrd=no\nInitrds=my.initrd\n" + content)
    )
    steps.GenerateUKIs().run(context)
    return context


@pytest.mark.parametrize(
    "conf, boots",
    [
        ("[Output]\nFormat=disk\n", True),  # Bootable=auto
        ("[Output]\nFormat=cpio\n", False),  # an initrd is not made bootable on its own
        ("[Output]\nFormat=disk\n[Content]\nBootable=no\n", False),
        ("[Output]\nFormat=cpio\n[Content]\nBootable=yes\n", True),
        ("[Output]\nFormat=sysext\n[Content]\nBootable=yes\n", False),
    ],
)
def test_wants_boot_follows_bootable_and_format(tmp_path, conf, boots):
    assert steps.wants_boot(loaded(tmp_path, conf)) is boots


def test_bootloader_words(tmp_path):
    assert steps.bootloader(loaded(tmp_path / "a", "[Output]\nFormat=disk\n")) == "systemd-boot"
    uki = loaded(tmp_path / "b", "[Output]\nFormat=uki\n[Content]\nBootloader=systemd-boot\n")
    assert steps.bootloader(uki) == "uki" and steps.uki_is_bootloader(uki)
    assert steps.uki_is_bootloader(loaded(tmp_path / "c", "[Content]\nBootloader=uki-signed\n"))
    none = loaded(tmp_path / "d", "[Content]\nBootloader=none\n")
    assert steps.GenerateUKIs().skip(none) == "Bootloader=none"
    assert steps.InstallBootloader().skip(none) == "Bootloader=none"
    grub = with_kernel(loaded(tmp_path / "e", "[Content]\nBootloader=none\nBiosBootloader=grub\n"))
    assert steps.GenerateUKIs().skip(grub) is None and steps.InstallBootloader().skip(grub) is None
    # Bootable=auto without a kernel: nothing to do, known only once the image is there
    kernelless = loaded(tmp_path / "f", "[Output]\nFormat=disk\n")
    for step in (steps.GenerateUKIs(), steps.InstallBootloader()):
        assert step.skip(kernelless) == "no kernel in the image (Bootable=auto)"
        assert isinstance(step.skip(kernelless), ImageDependent)


def test_kernel_command_line_keeps_configured_console(tmp_path):
    plain = loaded(tmp_path / "a", "[Content]\nKernelCommandLine=quiet loglevel=3\n")
    assert steps.kernel_command_line(plain) == "console=ttyS0 console=tty0 rw quiet loglevel=3"
    own = loaded(tmp_path / "b", "[Content]\nKernelCommandLine=console=hvc0 ro\n")
    assert steps.kernel_command_line(own) == "console=hvc0 ro"


def test_bootable_yes_without_kernel_fails(tmp_path):
    with pytest.raises(KosiError, match="Bootable=yes but no kernel"):
        steps.require_kernels(loaded(tmp_path, "[Content]\nBootable=yes\n"))
    assert steps.require_kernels(loaded(tmp_path / "auto", "[Output]\nFormat=disk\n")) == []


def test_type1_entry_with_configured_initrds(tmp_path):
    context = boot_from(tmp_path, "UnifiedKernelImages=no\nKernelCommandLine=quiet\n")
    token = TOKEN
    entry = (context.root / "boot/loader/entries" / f"{token}-{KVER}.conf").read_text()
    assert f"linux /{token}/{KVER}/linux" in entry and f"initrd /{token}/{KVER}/initrd\n" in entry
    assert "initrd1" not in entry and "options console=ttyS0 console=tty0 rw quiet" in entry
    assert (context.root / "boot" / token / KVER / "initrd").read_bytes() == b"initrd"
    assert context.state.ukis == [] and context.state.split_initrd == tmp_path / "my.initrd"
    assert context.state.split_modules_initrd is None


def test_bios_grub_without_efi_loader_gets_kernel_files(tmp_path):
    context = boot_from(tmp_path, "Bootloader=none\nBiosBootloader=grub\n")
    token = TOKEN
    config = (context.root / "boot/grub/grub.cfg").read_text()
    assert f"/{token}/{KVER}/linux" in config and f"/{token}/{KVER}/initrd" in config
    assert "root=PARTLABEL=root-x86-64" in config  # BIOS: no LoaderDevicePartUUID to find the root
    assert "terminal_output serial console" in config
    assert (context.root / "boot" / token / KVER / "linux").read_bytes() == b"kernel"


def test_initrds_default_is_the_default_initrd_in_place(tmp_path, monkeypatch):
    """Initrds=default (mkosi 27.1) puts kosi's default initrd at that place of the list; the
    file mkosi's summary names for it (<OutputDirectory>/initrd) is never looked for."""
    built = tmp_path / "cache/default.cpio"
    built.parent.mkdir(parents=True)
    built.write_bytes(b"default")
    monkeypatch.setattr(steps, "default_initrd", lambda context: built)
    context = boot_from(tmp_path, "Initrds=default\nUnifiedKernelImages=no\n")
    entry = (context.root / "boot/loader/entries" / f"{TOKEN}-{KVER}.conf").read_text()
    assert f"initrd /{TOKEN}/{KVER}/initrd\ninitrd /{TOKEN}/{KVER}/initrd1\n" in entry
    assert (context.root / "boot" / TOKEN / KVER / "initrd").read_bytes() == b"initrd"
    assert (context.root / "boot" / TOKEN / KVER / "initrd1").read_bytes() == b"default"
    assert not (tmp_path / "initrd").exists()
