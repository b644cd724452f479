"""Arch Linux (and Arch Linux ARM): its pacman repositories.

Where packages come from: the mirror's `$repo/os/$arch` trees (Arch Linux ARM lays its
mirror out as `$arch/$repo`), archive.archlinux.org's `repos/YYYY/MM/DD/` trees for
Snapshot=, or one plain repository for LocalMirror=. Installing is kosi/installers/pacman.py's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from kosi.config.model import Config
from kosi.distributions.base import Distribution
from kosi.errors import KosiError

#: kosi's Architecture= names -> pacman's
PACMAN_ARCHITECTURES = {"x86-64": "x86_64", "arm64": "aarch64", "arm": "armv7h"}
#: how Arch's archive names a snapshot: the day it was taken
SNAPSHOT_ID = re.compile(r"\d{4}/\d{2}/\d{2}")
#: repositories Repositories= can add, in the order pacman should prefer them (testing first)
OPTIONAL_REPOSITORIES = (
    "core-testing",
    "core-testing-debug",
    "extra-testing",
    "extra-testing-debug",
    "core-debug",
    "extra-debug",
    "multilib-testing",
    "multilib-testing-debug",
    "multilib",
    "multilib-debug",
)


@dataclass(frozen=True)
class PacmanRepository:
    """One [section] of pacman.conf."""

    name: str
    url: str  # the Server= line, with pacman's $repo and $arch left for pacman to fill in

    def section(self, siglevel: str | None = None) -> str:
        lines = [f"[{self.name}]", f"Server = {self.url}"]
        if siglevel:
            lines.append(f"SigLevel = {siglevel}")
        return "\n".join(lines) + "\n"


def pacman_architecture(config: Config) -> str:
    try:
        return PACMAN_ARCHITECTURES[config.architecture]
    except KeyError:
        raise KosiError(
            f"Architecture={config.architecture} is not supported by Arch Linux "
            f"(supported: {', '.join(PACMAN_ARCHITECTURES)})"
        ) from None


class Arch(Distribution):
    name = "arch"
    pretty_name = "Arch Linux"
    default_release = "rolling"
    package_manager = "pacman"
    installer = "pacman"
    initrd_packages = ("bash", "btrfs-progs", "dosfstools", "e2fsprogs", "gzip", "less", "libfido2", "libseccomp",
                       "procps-ng", "systemd", "tpm2-tss", "udev", "util-linux", "util-linux-libs", "xfsprogs")  # fmt: skip
    initrd_profile_packages = {
        "lvm": ("lvm2",), "network": ("iproute2",), "raid": ("mdadm",), "nfs": ("nfs-utils",),
        "pkcs11": ("opensc",), "plymouth": ("plymouth",),
    }  # fmt: skip
    filesystem = "ext4"
    mirrors = {"x86-64": "https://fastly.mirror.pkgbuild.com", "*": "http://mirror.archlinuxarm.org"}
    tools_tree_distribution = "arch"
    snapshot_service: ClassVar[str] = "https://archive.archlinux.org"
    #: the keyring pacman-key --populate reads (Debian's archlinux-keyring puts it here)
    keyring: ClassVar[str] = "/usr/share/keyrings/archlinux.gpg"
    keyring_package: ClassVar[str] = "archlinux-keyring"
    kernel_packages = ("linux",)

    @classmethod
    def release(cls, config: Config) -> str:
        return config.release or cls.default_release

    @classmethod
    def arm(cls, config: Config) -> bool:
        return config.architecture != "x86-64"

    @classmethod
    def snapshot(cls, config: Config) -> str | None:
        snapshot = config.snapshot
        if snapshot and not SNAPSHOT_ID.fullmatch(snapshot):
            raise KosiError(
                f"Snapshot={snapshot}: Arch Linux snapshots are days, like 2025/01/31 "
                "(`kosi latest-snapshot` prints the newest)"
            )
        return snapshot or None

    @classmethod
    def server(cls, config: Config, *, local: bool = True) -> str:
        """The Server= URL pattern of the distribution's repositories."""
        snapshot = cls.snapshot(config)
        if snapshot and cls.arm(config):
            raise KosiError("Snapshot=: Arch Linux ARM has no snapshot archive")
        if snapshot:
            service = (config.mirror or cls.snapshot_service).rstrip("/")
            return f"{service}/repos/{snapshot}/$repo/os/$arch"
        mirror = (config.mirror or cls.default_mirror(config.architecture) or "").rstrip("/")
        if cls.arm(config):
            return f"{mirror}/$arch/$repo"
        return f"{mirror}/$repo/os/$arch"

    @classmethod
    def repository_names(cls, config: Config) -> list[str]:
        wanted = {word for entry in config.repositories for word in entry.replace(",", " ").split()}
        unknown = sorted(wanted - set(OPTIONAL_REPOSITORIES) - {"core", "extra", "alarm"})
        if unknown:
            raise KosiError(
                f"Repositories={unknown[0]}: not an Arch Linux repository (known: {', '.join(OPTIONAL_REPOSITORIES)})"
            )
        names = [name for name in OPTIONAL_REPOSITORIES if name in wanted]
        names += ["core", "extra"]
        if cls.arm(config):
            names.append("alarm")
        return names

    @classmethod
    def repositories(cls, config: Config, *, local: bool = True) -> list[PacmanRepository]:
        """The repositories to build from (local=True: LocalMirror= wins) or to put in the image."""
        if local and config.local_mirror:
            return [PacmanRepository("core", config.local_mirror.rstrip("/"))]
        server = cls.server(config, local=local)
        return [PacmanRepository(name, server) for name in cls.repository_names(config)]

    @classmethod
    def mirrorlist(cls, config: Config) -> str:
        """/etc/pacman.d/mirrorlist for the image: the mirror the build used (not LocalMirror=)."""
        return f"Server = {cls.server(config, local=False)}\n"
