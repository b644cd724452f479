"""A bootable Arch Linux mirror made of Debian trixie's binaries (debian_payload.py), as
pacman packages in core:

    arch-userland   the userland with systemd-boot's EFI binaries (Arch's systemd ships them),
                    provides = every package name a bootable Arch image and kosi's default
                    Arch initrd ask for (mkosi 27.1's lists, by hand)
    linux           /usr/lib/modules/<kver>/{vmlinuz,pkgbase,...} as Arch's kernel package

Packages are uncompressed tarballs (.pkg.tar) with a .PKGINFO, signed with detached .sig
files by a throwaway key; `keyrings` holds the key as Debian's archlinux-keyring installs
Arch's (for a project's mkosi.sandbox/usr/share/keyrings/). Cached as the payload is.

    mirror = arch_mirror()       # .root (serve it), .keyrings, .kver, .packages
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import debian_payload
import pacman_repo

ARCH = pacman_repo.ARCH

#: mkosi 27.1's: the packages of a bootable Arch image (mkosi-vm's, those of the Vagrant
#: how-to) and of its default initrd for Arch, plus what pacman assumes (filesystem first)
ARCH_PROVIDES = (
    "filesystem", "base", "glibc", "coreutils", "bash", "sh", "systemd", "systemd-libs", "systemd-sysvcompat",
    "udev", "kmod", "util-linux", "util-linux-libs", "btrfs-progs", "dosfstools", "e2fsprogs", "gzip", "less",
    "libfido2", "libseccomp", "procps-ng", "tpm2-tss", "xfsprogs", "dbus-broker-units", "iproute2", "iputils",
    "polkit",
)  # fmt: skip


def tree_package(
    out: Path, name: str, version: str, tree: Path, *, provides: tuple[str, ...] = (), depends: tuple[str, ...] = ()
) -> Path:
    """An uncompressed .pkg.tar of everything in `tree`, owned by root, with its .PKGINFO."""
    size = sum(p.lstat().st_size for p in tree.rglob("*") if p.is_file() and not p.is_symlink())
    description = f"{name} (kosi test package: Debian trixie repackaged)"
    pacman_repo.write_pkginfo(tree, name, version, ARCH, size, description, depends=depends, provides=provides)
    package = out / f"{name}-{version}-{ARCH}.pkg.tar"
    top = sorted(entry.name for entry in tree.iterdir() if entry.name != ".PKGINFO")
    subprocess.run(
        ["bsdtar", "--uid", "0", "--gid", "0", "--numeric-owner", "-cf", str(package), ".PKGINFO", *top],
        cwd=tree,
        check=True,
    )
    (tree / ".PKGINFO").unlink()
    return package


@dataclass(frozen=True)
class ArchMirror:
    root: Path  # serve this: core/os/x86_64/..., extra/os/x86_64/...
    keyrings: Path  # archlinux.gpg, archlinux-trusted, archlinux-revoked
    kver: str
    packages: tuple[str, ...]


def build_arch_packages(work: Path, payload: debian_payload.Payload) -> list[Path]:
    userland = debian_payload.overlay(
        work / "userland",
        payload.userland,
        {"usr/lib/os-release": debian_payload.os_release("Arch Linux", "arch", None) + "BUILD_ID=rolling\n"},
    )
    subprocess.run(
        ["cp", "-al", f"{payload.boot_efi}/usr/lib/systemd/boot", str(userland / "usr/lib/systemd/")], check=True
    )
    kernel = work / "linux"
    subprocess.run(["cp", "-al", str(payload.kernel), str(kernel)], check=True)
    (kernel / "usr/lib/modules" / payload.kver / "pkgbase").write_text("linux\n")
    version = payload.kver.split("+")[0].split("-")[0] + "-1"
    return [
        tree_package(work, "arch-userland", "2025.01-1", userland, provides=ARCH_PROVIDES),
        tree_package(work, "linux", version, kernel, depends=("kmod",)),
    ]


def arch_mirror() -> ArchMirror:
    """The signed mirror (core with the packages, extra empty), cached."""
    payload = debian_payload.payload()

    def make(directory: Path) -> None:
        home, keyrings = directory / "signer", directory / "keyrings"
        keyrings.mkdir()
        fingerprint = pacman_repo.new_key(home, "kosi Arch boot key <arch-boot@kosi.invalid>")
        try:
            pacman_repo.gpg(home, "--export", "--output", str(keyrings / "archlinux.gpg"), fingerprint)
            (keyrings / "archlinux-trusted").write_text(f"{fingerprint}:4:\n")
            (keyrings / "archlinux-revoked").write_text("")
            work = directory / "work"
            work.mkdir()
            packages = build_arch_packages(work, payload)
            for repo, published in (("core", packages), ("extra", [])):
                target = directory / "mirror" / repo / "os" / ARCH
                target.mkdir(parents=True)
                for package in published:
                    os.rename(package, target / package.name)
                    pacman_repo.sign(home, target / package.name)
                subprocess.run(
                    [
                        "repo-add",
                        "--quiet",
                        str(target / f"{repo}.db.tar.gz"),
                        *(str(target / p.name) for p in published),
                    ],
                    check=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
        finally:
            pacman_repo.kill_gpg_agent(home)
        shutil.rmtree(directory / "work")

    fixtures = Path(__file__).read_text() + Path(pacman_repo.__file__).read_text()
    key = debian_payload.digest(payload.kver, str(payload.userland), fixtures)
    base = debian_payload.cached("arch-mirror", key, make)
    return ArchMirror(base / "mirror", base / "keyrings", payload.kver, ("arch-userland", "linux"))
