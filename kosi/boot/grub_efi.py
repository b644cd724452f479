"""Bootloader=grub and Bootloader=grub-signed: grub as the UEFI boot loader.

Bootloader=grub builds a grub image with grub-mkimage (x86_64-efi modules from the image
when it ships them, else from the tools tree) whose prefix is /grub on the partition it
was started from, so it reads grub/grub.cfg in the ESP: the same file BIOS grub reads,
which makes one image bootable both ways. Bootloader=grub-signed takes the distribution's
signed grub instead (Debian: grub-efi-amd64-signed), a monolithic image whose prefix is
built in (/EFI/debian): a short grub.cfg there hands over to grub/grub.cfg. That
redirection is written for Bootloader=grub too, as mkosi does.

Either binary goes to EFI/BOOT/BOOTX64.EFI, the path firmware starts without NVRAM
entries; with ShimBootloader= shim takes that place and moves grub to
EFI/BOOT/grubx64.efi, the name shim chains to (kosi/boot/shim.py). efi_binary() says
where grub ends up.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from kosi.boot.grub import CONFIG
from kosi.distributions.base import package_hint
from kosi.errors import KosiError
from kosi.pipeline.tools import find_tool
from kosi.sandbox import Mount, run

EFI_MODULES = "usr/lib/grub/x86_64-efi"
SIGNED = "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"
#: Debian's distribution-built grub image; its .sbat data describes our build from the same modules
MONOLITHIC = "usr/lib/grub/x86_64-efi/monolithic/grubx64.efi"
#: where firmware looks for a boot loader on removable media and disks without NVRAM entries
FALLBACK = "EFI/BOOT/BOOTX64.EFI"
#: the name shim starts from its own directory (shim.CHAINED)
BEHIND_SHIM = "EFI/BOOT/grubx64.efi"
#: built into our image: a prefix without a device means "the partition grub was started from"
PREFIX = "/grub"
#: what the image needs before it can load modules from the ESP, and what grub.cfg uses;
#: bli sets LoaderDevicePartUUID so that systemd finds the root partition by itself;
#: peimage is Debian's PE loader that chainloads through shim (absent upstream)
IMAGE_MODULES = ("part_gpt", "fat", "ext2", "normal", "configfile", "search", "search_fs_uuid", "search_fs_file",
                 "echo", "test", "linux", "chain", "boot", "all_video", "efi_gop", "serial", "terminal", "bli",
                 "peimage")  # fmt: skip


def modules_directory(root: Path, tools: Path | None) -> Path | None:
    """The image's x86_64-efi modules (they match what the image would install itself), else the tools tree's."""
    for base in (root, tools):
        if base is not None and (base / EFI_MODULES / "kernel.img").exists():
            return base / EFI_MODULES
    return None


def found(root: Path, tools: Path | None, *, signed: bool) -> bool:
    """Whether install() finds what it needs: the signed grub can only come from the image."""
    return (root / SIGNED).is_file() if signed else modules_directory(root, tools) is not None


def missing_packages(
    root: Path, tools: Path | None, packages: dict[str, tuple[str, ...]], *, signed: bool
) -> tuple[str, ...]:
    """Packages the image needs for install() (`packages`: the distribution's bootloader_packages)."""
    if found(root, tools, signed=signed):
        return ()
    return packages.get("grub-efi-signed" if signed else "grub-efi", ())


def efi_binary(esp: Path, shim_bootloader: str) -> Path:
    """Where grub's EFI binary is in the ESP once the boot steps are done."""
    return esp / (FALLBACK if shim_bootloader == "none" else BEHIND_SHIM)


def embedded_prefix(binary: Path) -> str | None:
    """The fixed prefix of a distribution's monolithic grub image ("/EFI/debian"): a NUL-terminated
    string grub-mkimage stores after the embedded modules, which `strings` shows too."""
    match = re.search(rb"\x00(/EFI/[A-Za-z0-9._-]+)\x00", binary.read_bytes())
    return match.group(1).decode() if match else None


def sbat_data(root: Path, tools: Path | None) -> str | None:
    """The distribution's SBAT lines for grub (shim refuses a second stage without them)."""
    for base in (root, tools):
        image = base / MONOLITHIC if base is not None else None
        if image is not None and image.is_file():
            match = re.search(rb"sbat,1,SBAT Version[^\x00]*", image.read_bytes())
            if match:
                return match.group(0).decode(errors="replace").rstrip("\n") + "\n"
    return None


def build_image(
    output: Path, root: Path, tools: Path | None, workspace: Path, packages: dict[str, tuple[str, ...]] | None = None
) -> Path:
    """grub-mkimage -O x86_64-efi with the modules grub.cfg needs built in; returns the modules directory used."""
    modules = modules_directory(root, tools)
    if modules is None:
        raise KosiError(
            "Bootloader=grub: grub's x86_64-efi modules are neither in the image nor in the tools tree",
            hint=f"add {package_hint(packages, 'grub-efi')} to Packages=, or use ToolsTree=default",
        )
    tool = find_tool("grub-mkimage", tools)
    if tool is None:
        raise KosiError(
            "Bootloader=grub: grub-mkimage is neither on the host nor in the tools tree",
            hint="use ToolsTree=default, or install grub-common",
        )
    # The tools tree's /usr is the sandbox's /usr: name its modules by that path.
    inside = Path("/") / EFI_MODULES if tools is not None and modules == tools / EFI_MODULES else modules
    cmd = [tool.path, "--directory", str(inside), "--format", "x86_64-efi", "--prefix", PREFIX, "--output", str(output)]
    sbat = sbat_data(root, tools)
    if sbat is not None:
        (workspace / "grub-sbat.csv").write_text(sbat)
        cmd += ["--sbat", str(workspace / "grub-sbat.csv")]
    cmd += [m for m in IMAGE_MODULES if (modules / f"{m}.mod").exists()]
    visible = {workspace, output.parent} | ({modules} if inside == modules else set())
    run(cmd, sandbox=tool.sandbox([Mount(d, str(d)) for d in sorted(visible)]))
    return modules


def stage_modules(esp: Path, modules: Path) -> None:
    """All x86_64-efi modules into grub/x86_64-efi, so that grub.cfg (or a user at the prompt) can load more."""
    target = esp / "grub/x86_64-efi"
    target.mkdir(parents=True, exist_ok=True)
    for module in modules.iterdir():
        if module.suffix in (".mod", ".lst"):
            shutil.copy2(module, target / module.name)


def install(
    esp: Path,
    root: Path,
    tools: Path | None,
    workspace: Path,
    *,
    signed: bool,
    vendor: str,
    packages: dict[str, tuple[str, ...]] | None = None,
) -> Path:
    """grub into the ESP tree at EFI/BOOT/BOOTX64.EFI, plus the redirection for fixed-prefix
    images in EFI/<vendor>/ (`vendor`: the distribution, used when the binary names none)."""
    target = esp / FALLBACK
    target.parent.mkdir(parents=True, exist_ok=True)
    if signed:
        binary = root / SIGNED
        if not binary.is_file():
            raise KosiError(
                f"Bootloader=grub-signed: /{SIGNED} is not in the image",
                hint=f"add {package_hint(packages, 'grub-efi-signed')} to Packages=, or use Bootloader=grub",
            )
        shutil.copyfile(binary, target)
        prefix = embedded_prefix(binary) or f"/EFI/{vendor}"
    else:
        workspace.mkdir(parents=True, exist_ok=True)
        stage_modules(esp, build_image(target, root, tools, workspace, packages))
        prefix = f"/EFI/{vendor}"
    write_redirect(esp, prefix)
    return target


def write_redirect(esp: Path, prefix: str) -> Path:
    """<prefix>/grub.cfg: hands a grub with a built-in prefix (a distribution's signed one)
    over to grub/grub.cfg on the same partition."""
    cfg = esp / prefix.strip("/") / "grub.cfg"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(
        f"# grub images with a fixed prefix start here; the menu is /{CONFIG}\n"
        f"set prefix=($root)/{Path(CONFIG).parent}\n"
        f"configfile ($root)/{CONFIG}\n"
    )
    return cfg
