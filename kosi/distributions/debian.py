"""Debian and the distributions derived from it (Ubuntu, Kali): their apt repositories.

A distribution class only knows *where* packages come from (mirrors, suites,
components, keyrings); installing them is the apt backend's job (kosi/installers/apt.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar

from kosi.architecture import ARCHITECTURES
from kosi.config.model import Config
from kosi.distributions.base import Distribution
from kosi.errors import KosiError

#: how snapshot services name a snapshot: the UTC time it was taken
SNAPSHOT_ID = re.compile(r"\d{8}T\d{6}Z")


@dataclass(frozen=True)
class AptRepository:
    """One deb822 stanza of sources.list.d."""

    name: str  # a short label used in error messages and file names ("main", "security", ...)
    uri: str
    suite: str
    components: tuple[str, ...] = ("main",)
    keyring: str | None = None  # Signed-By= file; None: apt's trusted.gpg.d
    trusted: bool = False  # skip signature checks (RepositoryKeyCheck=no, local repositories)
    check_valid_until: bool = True  # snapshots carry Release files that expired long ago
    options: dict[str, str] = field(default_factory=dict)

    def deb822(self, *, keyring: str | None = None) -> str:
        lines = ["Types: deb", f"URIs: {self.uri}", f"Suites: {self.suite}"]
        if self.components:
            lines.append(f"Components: {' '.join(self.components)}")
        if self.trusted:
            lines.append("Trusted: yes")
        elif keyring or self.keyring:
            lines.append(f"Signed-By: {keyring or self.keyring}")
        if not self.check_valid_until:
            lines.append("Check-Valid-Until: no")
        lines += [f"{k}: {v}" for k, v in self.options.items()]
        return "\n".join(lines) + "\n"


def deb_architecture(config: Config) -> str:
    """dpkg's name of Architecture= (amd64 for x86-64)."""
    return ARCHITECTURES[config.architecture].debian


#: mkosi 27.1's default initrd packages for releases without systemd-tpm
OLDER_INITRD = (
    "^libtss2-esys-[0-9.]+-0(t64)?$", "^libtss2-mu[0-9.-]+(t64)?$", "^libtss2-rc0(t64)?$",
    "^libtss2-tcti-device0(t64)?$", "bash", "btrfs-progs", "dmsetup", "dosfstools", "e2fsprogs", "gzip", "kmod",
    "less", "libcryptsetup12", "libfdisk1", "libfido2-1", "libseccomp2", "mount", "procps", "systemd", "udev",
    "util-linux",
)  # fmt: skip


class Debian(Distribution):
    name = "debian"
    pretty_name = "Debian"
    default_release = "trixie"
    image_default_release: ClassVar[str | None] = "testing"  # as mkosi 27.1; its tools tree: trixie
    package_manager = "apt"
    installer = "apt"
    mirrors = {"*": "http://deb.debian.org"}
    tools_tree_distribution = "debian"
    tools_tree_packages = {
        "base": (
            "systemd", "systemd-repart", "systemd-ukify", "python3-pefile", "systemd-boot-efi", "systemd-boot",
            "udev", "dosfstools", "mtools", "e2fsprogs", "xfsprogs", "btrfs-progs", "squashfs-tools", "erofs-utils",
            "cryptsetup-bin", "openssl", "sbsigntool", "kmod", "cpio", "zstd", "xz-utils", "fdisk", "tar",
            "ca-certificates", "grub-pc-bin", "grub-efi-amd64-bin", "efitools",
            "tpm2-tools",  # libtss2, which systemd-measure needs to sign PCR policies (SignExpectedPcr=)
        ),
        "package-manager": ("apt", "dpkg", "debian-archive-keyring", "gpgv"),
        "runtime": ("qemu-system-x86", "ovmf", "swtpm", "systemd-container", "socat", "openssh-client", "virtiofsd",
                    "systemd-journal-remote", "python3-virt-firmware"),
        "misc": ("git-core", "less", "nano", "strace", "rsync"),
        "devel": ("make", "gcc", "pkg-config"),
    }  # fmt: skip
    #: what the package-manager profile adds for an image of a distribution that is not built
    #: with apt: every other package manager kosi drives and their keys, as mkosi 27.1's Debian
    #: tools tree has them (rpm for the manifest's queries, bsdtar for pacman's packages)
    other_package_managers: ClassVar[tuple[str, ...]] = (
        "archlinux-keyring", "createrepo-c", "distribution-gpg-keys", "libarchive-tools", "makepkg",
        "pacman-package-manager", "rpm", "zypper",
    )  # fmt: skip
    #: the tree with other package managers is sid's: distribution-gpg-keys and archlinux-keyring
    #: must be the newest (trixie's distribution-gpg-keys 1.119 has openSUSE keys that expired)
    package_managers_release: ClassVar[str | None] = "sid"
    #: the releases whose archive has dnf5 (trixie has dnf 4 only; forky and sid have dnf5)
    dnf5_releases: ClassVar[frozenset[str]] = frozenset({"forky", "duke", "testing", "sid", "unstable"})
    # The default initrd as mkosi 27.1's (its --json summary per release): the newest releases
    # here, older ones in initrd_by_release (the regexes pick the TPM libraries whatever their
    # soname, where there is no systemd-tpm yet).
    initrd_packages = (
        "bash", "btrfs-progs", "dmsetup", "dosfstools", "e2fsprogs", "gzip", "kmod", "less", "libcryptsetup12",
        "libfdisk1", "libfido2-1", "libseccomp2", "mount", "procps", "systemd", "systemd-cryptsetup",
        "systemd-repart", "systemd-tpm", "udev", "util-linux",
    )  # fmt: skip
    initrd_remove_packages = ("dpkg",)
    initrd_by_release: ClassVar[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
        "bullseye": (OLDER_INITRD, ()),
        "bookworm": (OLDER_INITRD, ()),
        "trixie": ((*OLDER_INITRD, "systemd-cryptsetup", "systemd-repart"), ("dpkg",)),
    }
    initrd_profile_packages = {
        "lvm": ("lvm2",), "network": ("systemd-resolved", "iproute2"), "raid": ("mdadm",),
        "nfs": ("nfs-common",), "pkcs11": ("opensc",), "plymouth": ("plymouth",),
    }  # fmt: skip
    kernel_packages = ("linux-image-amd64",)
    bootloader_packages = {
        # systemd-boot alone does not pull systemd-boot-efi when Recommends are off
        "systemd-boot": ("systemd-boot", "systemd-boot-efi"),
        "systemd-boot-signed": ("systemd-boot-efi-amd64-signed",),  # signed with Debian's key
        "grub-bios": ("grub-pc-bin",),  # the i386-pc modules and grub-mkimage / grub-bios-setup
        "grub-efi": ("grub-efi-amd64-bin",),
        "grub-efi-signed": ("grub-efi-amd64-signed",),
        # shim-signed pulls shim-helpers-amd64-signed for MokManager
        "shim-signed": ("shim-signed",),
        "shim-unsigned": ("shim-unsigned",),
    }
    os_release_release_field = "VERSION_CODENAME"
    #: path below the mirror where the archive lives
    archive_path: ClassVar[str] = "debian"
    keyring: ClassVar[str] = "/usr/share/keyrings/debian-archive-keyring.gpg"
    keyring_package: ClassVar[str] = "debian-archive-keyring"
    default_components: ClassVar[tuple[str, ...]] = ("main",)
    #: releases that get no -updates / -security suites
    rolling_releases: ClassVar[frozenset[str]] = frozenset({"sid", "unstable", "experimental", "rc-buggy"})
    #: where Snapshot= downloads from unless Mirror= names another copy of the service
    snapshot_service: ClassVar[str | None] = "https://snapshot.debian.org"

    @classmethod
    def release(cls, config: Config) -> str:
        return config.release or cls.default_release

    @classmethod
    def package_manager_tools(cls, release: str) -> tuple[str, ...]:
        """other_package_managers with the release's dnf: dnf5 where it has it, else dnf 4."""
        return (*cls.other_package_managers, "dnf5" if release in cls.dnf5_releases else "dnf")

    @classmethod
    def default_initrd(cls, release: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return cls.initrd_by_release.get(
            release or cls.default_release, (cls.initrd_packages, cls.initrd_remove_packages)
        )

    @classmethod
    def components(cls, config: Config) -> tuple[str, ...]:
        """main plus whatever Repositories= enables (contrib, non-free-firmware, universe, ...)."""
        extra = config.repositories
        seen: list[str] = []
        for component in (*cls.default_components, *extra):
            for word in component.replace(",", " ").split():
                if word not in seen:
                    seen.append(word)
        return tuple(seen)

    @classmethod
    def mirror(cls, config: Config) -> str:
        mirror = config.mirror or cls.default_mirror(config.architecture) or ""
        return mirror.rstrip("/")

    @classmethod
    def archive_url(cls, mirror: str, path: str) -> str:
        # Mirror= is the host ("http://deb.debian.org") as in mkosi; accept the archive URL too.
        mirror = mirror.rstrip("/")
        for known in (cls.archive_path, "debian-security", "ubuntu", "ubuntu-ports"):
            if mirror.endswith("/" + known):
                mirror = mirror[: -len(known) - 1]
                break
        return f"{mirror}/{path}" if path else mirror

    @classmethod
    def snapshot_service_url(cls, config: Config) -> str:
        """With Snapshot=, Mirror= names the snapshot service (the manual's table of snapshot mirrors)."""
        if not cls.snapshot_service:
            raise KosiError(f"Snapshot=: {cls.pretty_name} has no snapshot service")
        return (config.mirror or cls.snapshot_service).rstrip("/")

    @classmethod
    def snapshot_url(cls, config: Config, snapshot: str, archive: str | None = None) -> str:
        """One archive (default: the distribution's) as it was at `snapshot`."""
        return f"{cls.snapshot_service_url(config)}/archive/{archive or cls.archive_path}/{snapshot}"

    @classmethod
    def snapshot(cls, config: Config) -> str | None:
        snapshot = config.snapshot
        if snapshot and not SNAPSHOT_ID.fullmatch(snapshot):
            raise KosiError(
                f"Snapshot={snapshot}: expected a snapshot ID like 20250102T030405Z "
                "(`kosi latest-snapshot` prints the newest)"
            )
        return snapshot or None

    @classmethod
    def local_mirror_repositories(cls, config: Config) -> list[AptRepository]:
        """LocalMirror=: one plain repository holding everything, used only while building."""
        return [
            AptRepository(
                "local-mirror",
                config.local_mirror,
                cls.release(config),
                cls.components(config),
                cls.keyring,
                not _key_check(config),
            )
        ]

    @classmethod
    def repositories(cls, config: Config, *, local: bool = True) -> list[AptRepository]:
        """The repositories to build from (local=True: LocalMirror= wins) or to put in the image."""
        release, components, trusted = cls.release(config), cls.components(config), not _key_check(config)
        if local and config.local_mirror:
            return cls.local_mirror_repositories(config)

        snapshot = cls.snapshot(config)
        if snapshot:
            base = cls.snapshot_url(config, snapshot)
            security = cls.snapshot_url(config, snapshot, "debian-security")
            # A snapshot keeps the Release files of its day, whose Valid-Until passed long ago.
            valid_until = False
        else:
            mirror = cls.mirror(config)
            base = cls.archive_url(mirror, cls.archive_path)
            security = cls.archive_url(mirror, "debian-security")
            valid_until = True

        repos = [AptRepository("main", base, release, components, cls.keyring, trusted, valid_until)]
        if release not in cls.rolling_releases:
            repos.append(
                AptRepository("updates", base, f"{release}-updates", components, cls.keyring, trusted, valid_until)
            )
            repos.append(
                AptRepository(
                    "security", security, f"{release}-security", components, cls.keyring, trusted, valid_until
                )
            )
        return repos


class Kali(Debian):
    name = "kali"
    pretty_name = "Kali Linux"
    default_release = "kali-rolling"
    image_default_release = None
    mirrors = {"*": "http://http.kali.org"}
    archive_path = "kali"
    keyring = "/usr/share/keyrings/kali-archive-keyring.gpg"
    keyring_package = "kali-archive-keyring"
    rolling_releases = frozenset({"kali-rolling", "kali-dev", "kali-experimental", "kali-last-snapshot"})
    snapshot_service = None  # kali-last-snapshot is a suite, not a service for points in time

    @classmethod
    def repositories(cls, config: Config, *, local: bool = True) -> list[AptRepository]:
        # Kali is rolling: one suite on one mirror, no separate security archive.
        repos = super().repositories(config, local=local)
        return [r for r in repos if r.name in ("main", "local-mirror")]


class Ubuntu(Debian):
    name = "ubuntu"
    pretty_name = "Ubuntu"
    # As mkosi 27.1 off an Ubuntu host: the development release, whatever its codename is now.
    default_release = "devel"
    image_default_release = None
    mirrors = {
        "x86-64": "http://archive.ubuntu.com",
        "x86": "http://archive.ubuntu.com",
        "*": "http://ports.ubuntu.com",
    }
    archive_path = "ubuntu"
    keyring = "/usr/share/keyrings/ubuntu-archive-keyring.gpg"
    keyring_package = "ubuntu-keyring"
    # main only, as Debian: universe (most of Ubuntu) takes Repositories=universe, as in mkosi
    rolling_releases = frozenset({"devel"})
    snapshot_service = "https://snapshot.ubuntu.com"
    initrd_by_release = {
        "jammy": ((*OLDER_INITRD, "systemd-repart"), ()),
        "noble": ((*OLDER_INITRD, "systemd-repart"), ()),
    }

    @classmethod
    def ports(cls, config: Config) -> bool:
        return config.architecture not in ("x86-64", "x86")

    @classmethod
    def archive(cls, config: Config) -> str:
        """Architectures other than x86 live in a separate archive, on ports.ubuntu.com and in snapshots."""
        return "ubuntu-ports" if cls.ports(config) else "ubuntu"

    @classmethod
    def snapshot_url(cls, config: Config, snapshot: str, archive: str | None = None) -> str:
        return f"{cls.snapshot_service_url(config)}/{archive or cls.archive(config)}/{snapshot}"

    @classmethod
    def repositories(cls, config: Config, *, local: bool = True) -> list[AptRepository]:
        release, components, trusted = cls.release(config), cls.components(config), not _key_check(config)
        if local and config.local_mirror:
            return cls.local_mirror_repositories(config)
        snapshot = cls.snapshot(config)
        if snapshot:
            base = security = cls.snapshot_url(config, snapshot)
        else:
            base = cls.archive_url(cls.mirror(config), cls.archive(config))
            # Security updates come from security.ubuntu.com unless the user picked a mirror.
            if config.mirror or cls.ports(config):
                security = base
            else:
                security = "http://security.ubuntu.com/ubuntu"
        suites = [("main", base, release)]
        if release not in cls.rolling_releases:
            suites += [("updates", base, f"{release}-updates"), ("security", security, f"{release}-security")]
        return [
            AptRepository(name, uri, suite, components, cls.keyring, trusted, check_valid_until=not snapshot)
            for name, uri, suite in suites
        ]


def _key_check(config: Config) -> bool:
    return config.repository_key_check
