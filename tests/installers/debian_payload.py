"""Bootable packages for distributions whose mirrors are out of reach here: Debian trixie's
binaries (the only archive this machine reaches) repackaged under another distribution's
package names, so that kosi's bootable pipeline for rpm and pacman images runs for real.

    payload = debian_payload.payload()       # the split trees, built once and cached on disk
    payload.userland, payload.kernel, payload.kver, payload.boot_efi

The tree comes from a kosi build of a small Debian trixie directory image (systemd, udev,
kmod, Debian's cloud kernel, systemd-boot's EFI binaries), and is split into:

- `userland`: everything but the kernel and the boot loader, without docs, locales, the
  hardware database and dpkg's and apt's state; one big package of it Provides every name
  the image and kosi's default initrd ask for;
- `kernel`: /usr/lib/modules/<kver>/ laid out as Fedora's kernel-core and Arch's linux ship
  it (vmlinuz inside the modules directory, no modules.dep: kosi runs depmod as mkosi does);
- `boot_efi`: /usr/lib/systemd/boot/efi (systemd-boot and the UKI stub).

Everything made here is cached below $KOSI_TEST_FOREIGN_CACHE (/var/tmp/kosi-test-foreign by
default) under a key of its inputs (these modules' source and the package list), so a test
session pays for it once and later sessions not at all.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from image_build import REPO

CACHE = Path(os.environ.get("KOSI_TEST_FOREIGN_CACHE", "/var/tmp/kosi-test-foreign"))

#: the Debian packages the tree is built from (their dependencies come along)
DEBIAN_PACKAGES = ("systemd", "udev", "kmod", "linux-image-cloud-amd64", "systemd-boot-efi")

#: what the repackaged userland leaves out: documentation, translations, the hardware
#: database, the Debian package managers' state, the initramfs generators Debian's kernel
#: pulled in (kosi makes the initrd), and what the other packages carry
DROPPED = (
    "usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian",
    "usr/lib/udev/hwdb.bin", "usr/lib/udev/hwdb.d", "var/lib/dpkg", "var/lib/apt", "var/cache",
    "var/log", "usr/lib/dracut", "usr/lib/klibc", "boot", "usr/lib/modules", "usr/lib/systemd/boot",
    "etc/kernel", "etc/initramfs-tools", "usr/share/initramfs-tools",
)  # fmt: skip

#: the kernel's files depmod makes (Fedora's kernel-core has them as %ghost, Arch's linux
#: lets its hook make them): kosi must run depmod itself, as mkosi 27.1 does
DEPMOD_OUTPUT = (
    "modules.dep", "modules.dep.bin", "modules.alias", "modules.alias.bin", "modules.symbols",
    "modules.symbols.bin", "modules.builtin.bin", "modules.builtin.alias.bin", "modules.devname",
    "modules.softdep", "modules.weakdep",
)  # fmt: skip

OS_RELEASE = (
    'NAME="{name}"\nID={id}\n{version}PRETTY_NAME="{name} (kosi test: Debian trixie repackaged)"\n'
    "HOME_URL=https://example.invalid/\n"
)


def digest(*parts: str) -> str:
    sources = [Path(__file__)]
    text = "\n".join([*(p.read_text() for p in sources), *parts])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached(name: str, key: str, make: Callable[[Path], None]) -> Path:
    """CACHE/<name>-<key>, made by `make(directory)` in a scratch directory renamed into place
    when complete (a failed or interrupted make leaves nothing behind)."""
    target = CACHE / f"{name}-{key}"
    if target.exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=CACHE))
    try:
        make(scratch)
        scratch.chmod(0o755)
        scratch.rename(target)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        if not target.exists():
            raise
    return target


@dataclass(frozen=True)
class Payload:
    userland: Path
    kernel: Path  # holds usr/lib/modules/<kver>/ with vmlinuz
    kver: str
    boot_efi: Path  # holds usr/lib/systemd/boot/efi/

    @property
    def vmlinuz(self) -> Path:
        return self.kernel / "usr/lib/modules" / self.kver / "vmlinuz"


def build_debian_tree(work: Path) -> Path:
    """A Debian trixie directory image of DEBIAN_PACKAGES, by kosi (its default tools tree and
    package cache)."""
    project = work / "project"
    project.mkdir(parents=True)
    packages = "\n".join(f"         {p}" for p in DEBIAN_PACKAGES).lstrip()
    (project / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=debian\nRelease=trixie\n\n[Output]\nFormat=directory\nOutput=tree\n\n"
        f"[Content]\nBootable=no\nWithDocs=no\nPackages={packages}\n"
    )
    result = subprocess.run(
        [sys.executable, str(REPO / "bin/kosi"), "-C", str(project), "-f", "build"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert result.returncode == 0, f"building the Debian tree failed:\n{result.stdout[-4000:]}"
    return project / "tree"


def split(tree: Path, out: Path) -> None:
    """out/userland, out/kernel, out/boot-efi from the Debian tree, and out/kver."""
    modules = tree / "usr/lib/modules"
    (kver,) = [d.name for d in modules.iterdir() if d.is_dir()]
    kernel = out / "kernel/usr/lib/modules"
    kernel.mkdir(parents=True)
    shutil.move(modules / kver, kernel / kver)
    shutil.move(tree / f"boot/vmlinuz-{kver}", kernel / kver / "vmlinuz")
    shutil.move(tree / f"boot/System.map-{kver}", kernel / kver / "System.map")
    shutil.move(tree / f"boot/config-{kver}", kernel / kver / "config")
    for name in DEPMOD_OUTPUT:
        (kernel / kver / name).unlink(missing_ok=True)
    efi = out / "boot-efi/usr/lib/systemd/boot"
    efi.parent.mkdir(parents=True)
    shutil.move(tree / "usr/lib/systemd/boot", efi)
    for relative in DROPPED:
        path = tree / relative
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    for relative in ("etc/os-release", "usr/lib/os-release"):
        (tree / relative).unlink(missing_ok=True)
    # what the image's own release package ships in the real distributions (os-release below)
    (tree / "etc/os-release").symlink_to("../usr/lib/os-release")
    (tree / "etc/machine-id").unlink(missing_ok=True)
    # as the package managers find them while installing (the API file systems are mounted
    # there then, and chmod on them fails), and as Fedora's and Arch's filesystem ship them
    for relative, mode in (("proc", 0o555), ("sys", 0o555), ("dev", 0o755), ("run", 0o755), ("tmp", 0o1777)):
        (tree / relative).mkdir(exist_ok=True)
        (tree / relative).chmod(mode)
    shutil.move(tree, out / "userland")
    (out / "kver").write_text(kver)


def payload() -> Payload:
    """The split Debian trixie tree, from the cache or built now."""

    def make(directory: Path) -> None:
        split(build_debian_tree(directory / "work"), directory)
        shutil.rmtree(directory / "work")

    base = cached("debian-trixie", digest(*DEBIAN_PACKAGES), make)
    return Payload(base / "userland", base / "kernel", (base / "kver").read_text(), base / "boot-efi")


def os_release(name: str, id: str, version_id: str | None) -> str:
    return OS_RELEASE.format(name=name, id=id, version=f"VERSION_ID={version_id}\n" if version_id else "")


def overlay(work: Path, tree: Path, files: dict[str, str]) -> Path:
    """A copy of `tree` (hard links: nothing is copied) with `files` written on top."""
    work.mkdir(parents=True, exist_ok=True)
    copy = work / "tree"
    subprocess.run(["cp", "-al", str(tree), str(copy)], check=True)
    for relative, text in files.items():
        target = copy / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        target.write_text(text)
    return copy
