"""BiosBootloader=grub, and the grub.cfg every grub kosi installs reads (grub_efi.py: UEFI).

For BIOS boot on GPT, grub's core image lives in the BIOS boot partition (type
21686148-...). After systemd-repart wrote the disk, grub-mkimage builds core.img with
what it needs to find the ESP, boot.img goes into the MBR boot code (with the core's
sector patched in, which grub-bios-setup does) and the modules plus grub.cfg into the
ESP's grub/ directory. grub.cfg boots each kernel with linux/initrd entries (BIOS cannot
run a UKI), or chainloads the UKIs under UEFI; one file serves both, so an image with
Bootloader=grub and BiosBootloader=grub boots either way.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from kosi.distributions.base import package_hint
from kosi.errors import KosiError
from kosi.sandbox import run
from kosi.tools.command import tools_command

#: the menu, relative to the ESP; every grub kosi installs reads it
CONFIG = "grub/grub.cfg"
BIOS_BOOT_TYPE = "21686148-6449-6e6f-744e-656564454649"
GRUB_I386_PC = "usr/lib/grub/i386-pc"
CORE_MODULES = ("biosdisk", "part_gpt", "fat", "ext2", "normal", "search", "search_fs_uuid", "linux", "configfile",
                "echo", "test", "all_video")  # fmt: skip


def modules_directory(
    root: Path, tools: Path | None, packages: dict[str, tuple[str, ...]] | None = None
) -> tuple[Path, Path | None]:
    """Where i386-pc modules are, and the tree whose grub programs to run."""
    for base in (root, tools):
        if base is not None and (base / GRUB_I386_PC / "boot.img").exists():
            return base / GRUB_I386_PC, base
    raise KosiError(
        "BiosBootloader=grub: grub's i386-pc modules are neither in the image nor in the tools tree",
        hint=f"add {package_hint(packages, 'grub-bios')} to Packages=, or use ToolsTree=default",
    )


@dataclass(frozen=True)
class GrubEntry:
    """One menu entry. Paths are relative to the ESP: `kernel` and `initrds` are the Type 1
    files (which both platforms can boot), `uki` the unified kernel image, if one was built."""

    title: str
    kernel: str
    initrds: tuple[str, ...]
    cmdline: str
    uki: str | None = None


def render_config(entries: Sequence[GrubEntry], *, bios: bool) -> str:
    """grub.cfg for every platform the image boots on (`bios`: i386-pc grub reads it too).

    Under UEFI grub chainloads the UKI when there is one: the UKI carries its own command
    line and initrds, is what SecureBoot= signs, and its stub tells systemd which partition
    it came from (LoaderDevicePartUUID), which grub does only with its bli module (Debian's
    signed grub lacks it). BIOS cannot run a PE file, so there (and without UKIs) grub loads
    kernel and initrds itself, and the command line names the root partition."""
    # The serial console too, so `kosi vm` (and anyone on a serial line) sees grub at work.
    # UEFI firmware (OVMF) already mirrors its console on the serial port; grub writing
    # there too would print everything twice.
    lines = [
        'if [ "$grub_platform" = "pc" ]; then',
        "    serial --unit=0 --speed=115200",
        "    terminal_input serial console",
        "    terminal_output serial console",
        "fi",
        "set timeout=0",
        "set default=0",
    ]
    for entry in entries:
        lines.append(f"menuentry '{entry.title}' {{")
        if entry.uki and bios:
            lines += [
                '    if [ "$grub_platform" = "efi" ]; then',
                *_chainload(entry, "        "),
                "    else",
                *_linux(entry, "        "),
                "    fi",
            ]
        else:
            lines += _chainload(entry, "    ") if entry.uki else _linux(entry, "    ")
        lines.append("}")
    return "\n".join(lines) + "\n"


def _chainload(entry: GrubEntry, indent: str) -> list[str]:
    return [
        f"{indent}echo 'Loading Linux from the unified kernel image /{entry.uki} ...'",
        f"{indent}chainloader /{entry.uki}",
    ]


def _linux(entry: GrubEntry, indent: str) -> list[str]:
    lines = [f"{indent}echo 'Loading Linux /{entry.kernel} ...'", f"{indent}linux /{entry.kernel} {entry.cmdline}"]
    if entry.initrds:
        lines += [
            f"{indent}echo 'Loading initial ramdisk ...'",
            f"{indent}initrd " + " ".join(f"/{i}" for i in entry.initrds),
        ]
    return lines


def write_config(esp: Path, entries: Sequence[GrubEntry], *, bios: bool) -> Path:
    """grub/grub.cfg in the ESP, where BIOS grub's core image and kosi's EFI grub look."""
    cfg = esp / CONFIG
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(render_config(entries, bios=bios))
    return cfg


def stage_modules(
    esp: Path, root: Path, tools: Path | None, packages: dict[str, tuple[str, ...]] | None = None
) -> None:
    """Copy grub's i386-pc modules into the ESP tree (before repart copies the tree); `packages`
    (the distribution's bootloader_packages) are named when the modules are missing."""
    source, _ = modules_directory(root, tools, packages)
    target = esp / "grub/i386-pc"
    target.mkdir(parents=True, exist_ok=True)
    for module in source.iterdir():
        if module.suffix in (".mod", ".lst"):
            shutil.copy2(module, target / module.name)


def install_bios(image: Path, root: Path, tools: Path | None, workspace: Path, esp_partition: int) -> None:
    """Write core.img into the BIOS boot partition and boot.img into the MBR of the disk `image`."""
    source, tree = modules_directory(root, tools)
    core = workspace / "grub-core.img"
    sandbox = tools_command(tools, [root, workspace, image.parent])
    prefix = f"(hd0,gpt{esp_partition})/grub"
    # The tools tree's /usr is the sandbox's /usr: name its modules by that path.
    modules = Path("/") / GRUB_I386_PC if tools is not None and tree == tools else source
    run(
        [
            "grub-mkimage",
            "--directory",
            str(modules),
            "--format",
            "i386-pc",
            "--prefix",
            prefix,
            "--output",
            str(core),
            *CORE_MODULES,
        ],
        sandbox=sandbox,
    )
    # grub-bios-setup patches boot.img and core.img for the disk and writes both.
    staged = workspace / "grub-setup"
    staged.mkdir(exist_ok=True)
    shutil.copy2(source / "boot.img", staged / "boot.img")
    shutil.copy2(core, staged / "core.img")
    # The device map tells grub that the image file is the BIOS disk hd0. grub-bios-setup
    # also insists on opening the device the --directory lives on, which it looks up in
    # /proc/self/mountinfo; claiming that / lives on the image satisfies it without a loop
    # device (it only needs that device when it cannot embed into the BIOS boot partition).
    device_map = staged / "device.map"
    device_map.write_text(f"(hd0) {image}\n")
    mountinfo = staged / "mountinfo"
    mountinfo.write_text(f"1 0 1:1 / / - fat {image}\n")
    # Debian keeps grub-bios-setup with the platform's modules rather than in $PATH.
    bios_setup = str(modules / "grub-bios-setup") if (source / "grub-bios-setup").exists() else "grub-bios-setup"
    script = 'mount --bind "$0" /proc/$$/mountinfo && exec "$@"'
    setup_sandbox = sandbox or ["unshare", "--mount", "--propagation", "private"]
    run(
        [
            "sh",
            "-c",
            script,
            str(mountinfo),
            bios_setup,
            f"--directory={staged}",
            f"--device-map={device_map}",
            "--skip-fs-probe",
            str(image),
        ],
        sandbox=setup_sandbox,
    )
