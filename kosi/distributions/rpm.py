"""What the rpm distributions share: repositories as dnf sees them, and their signing keys.

A distribution class only says *where* packages come from (repository URLs derived from
Mirror=, LocalMirror=, Snapshot= or the distribution's metalink/mirrorlist service) and
which key signs them; installing is the dnf backend's job (kosi/installers/dnf.py).

Keys are looked for where the package manager sandbox sees them, in this order: the
sandbox trees' /etc/pki/rpm-gpg (mkosi.sandbox/), distribution-gpg-keys in the tools tree
(or on the host without one), the tools tree's (or host's) /etc/pki/rpm-gpg. With
RepositoryKeyFetch=yes a key found nowhere is given to dnf as the distribution-gpg-keys
project's URL, and dnf downloads it.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from kosi.architecture import ARCHITECTURES
from kosi.config.model import Config
from kosi.distributions.base import Distribution

if TYPE_CHECKING:
    from kosi.pipeline.context import Context

#: where distribution-gpg-keys installs the keys (one directory per distribution)
GPG_KEYS = "/usr/share/distribution-gpg-keys"
#: where rpm distributions install their own keys
PKI = "/etc/pki/rpm-gpg"
#: the distribution-gpg-keys project, for RepositoryKeyFetch=yes
GPG_KEYS_URL = "https://raw.githubusercontent.com/rpm-software-management/distribution-gpg-keys/main/keys"

#: rpm's $basearch per architecture (the kernel's name where the two agree)
BASEARCH = {"x86": "i386", "arm": "armhfp", "ppc64-le": "ppc64le"}


@dataclass(frozen=True)
class RpmKey:
    """One signing key: its file name, the distribution-gpg-keys directory it is in, and where
    RepositoryKeyFetch=yes downloads it (the distribution's own URL, as mkosi 27.1 uses it;
    by default the distribution-gpg-keys project's copy)."""

    name: str
    directory: str
    fetch: str | None = None

    def candidates(self, context: Context) -> list[tuple[Path, str]]:
        """(host path, the URL dnf reads it from in the sandbox) in search order."""
        base = Path(context.tools) if context.tools else Path("/")
        sandbox_tree = context.pkgmngr / PKI.lstrip("/") / self.name
        # the sandbox trees' distribution-gpg-keys too, as mkosi 27.1 sees them over the host's
        sandbox_keys = context.pkgmngr / GPG_KEYS.lstrip("/") / self.directory / self.name
        return [
            (sandbox_tree, f"file://{sandbox_tree}"),
            (sandbox_keys, f"file://{sandbox_keys}"),
            (
                base / GPG_KEYS.lstrip("/") / self.directory / self.name,
                f"file://{GPG_KEYS}/{self.directory}/{self.name}",
            ),
            (base / PKI.lstrip("/") / self.name, f"file://{PKI}/{self.name}"),
        ]

    def locate(self, context: Context) -> str | None:
        """The key as a URL dnf can read in its sandbox, None when it is nowhere."""
        for path, url in self.candidates(context):
            if path.exists():
                return url
        if context.config["RepositoryKeyFetch"]:
            return self.fetch or f"{GPG_KEYS_URL}/{self.directory}/{self.name}"
        return None

    def where(self) -> str:
        return f"{GPG_KEYS}/{self.directory}/{self.name} (or {PKI}/{self.name})"


@dataclass(frozen=True)
class RpmRepository:
    """One [section] of a .repo file. `url` is "baseurl=...", "metalink=..." or "mirrorlist=..."."""

    id: str
    url: str
    keys: tuple[RpmKey, ...] = ()
    enabled: bool = True
    priority: int | None = None
    metadata_expire: str | None = None

    @property
    def location(self) -> str:
        return self.url.partition("=")[2]

    def stanza(self, *, enabled: bool, gpgcheck: bool, keys: list[str]) -> str:
        lines = [
            f"[{self.id}]",
            f"name={self.id}",
            self.url,
            f"enabled={int(enabled)}",
            f"gpgcheck={int(gpgcheck and bool(self.keys))}",
            "repo_gpgcheck=0",
        ]
        if self.priority is not None:
            lines.append(f"priority={self.priority}")
        if self.metadata_expire:
            lines.append(f"metadata_expire={self.metadata_expire}")
        if gpgcheck and keys:
            lines.append("gpgkey=" + " ".join(keys))
        return "\n".join(lines) + "\n"


def join(mirror: str, path: str) -> str:
    return f"{mirror.rstrip('/')}/{path.lstrip('/')}"


def variants(
    repo_id: str, url: str, debug: str, source: str, keys: tuple[RpmKey, ...], *, enabled: bool = True, **extra
) -> list[RpmRepository]:
    """A repository with its (disabled) -debuginfo and -source companions."""
    return [
        RpmRepository(repo_id, url, keys, enabled, **extra),
        RpmRepository(f"{repo_id}-debuginfo", debug, keys, False, **extra),
        RpmRepository(f"{repo_id}-source", source, keys, False, **extra),
    ]


class RpmDistribution(Distribution):
    package_manager = "dnf"
    installer = "dnf"
    #: where the image's rpm keeps its database (rpm's %_dbpath)
    rpm_dbpath: ClassVar[str] = "/usr/lib/sysimage/rpm"
    #: the distribution's kernel, and what a bootable image gets with it
    kernel_packages: ClassVar[tuple[str, ...]] = ("kernel",)
    #: what an empty root gets first, on its own (mkosi 27.1's: the RHEL family and Fedora)
    bootstrap_packages: ClassVar[tuple[str, ...]] = ("basesystem",)
    #: packages of the default initrd (besides the kernel modules kosi copies in): mkosi 27.1's
    #: for the RHEL family (tests/distributions data); the others override it
    initrd_packages: ClassVar[tuple[str, ...]] = (
        "bash", "cryptsetup-libs", "dosfstools", "e2fsprogs", "gzip", "less", "libfdisk", "libfido2",
        "libseccomp", "procps-ng", "systemd", "tpm2-tss", "udev", "util-linux", "xfsprogs",
    )  # fmt: skip
    initrd_profile_packages: ClassVar[dict[str, tuple[str, ...]]] = {
        "lvm": ("lvm2",), "network": ("systemd-networkd",), "raid": ("mdadm",), "nfs": ("nfs-utils",),
        "pkcs11": ("opensc",), "plymouth": ("plymouth",),
    }  # fmt: skip

    #: where Snapshot= composes come from unless Mirror= names a copy; None: no snapshots
    snapshot_service: ClassVar[str | None] = None

    @classmethod
    def release(cls, config: Config) -> str:
        return str(config.release or cls.default_release)

    @classmethod
    def latest_snapshot_url(cls, config: Config) -> str:
        """The file naming the newest compose (its id, or an INI file with [compose] id=)."""
        raise NotImplementedError

    @classmethod
    def compose_prefix(cls, config: Config) -> str:
        """What a compose id starts with, before the Snapshot= value (Fedora-42-)."""
        raise NotImplementedError

    @classmethod
    def basearch(cls, config: Config) -> str:
        return BASEARCH.get(config.architecture, ARCHITECTURES[config.architecture].kernel)

    @classmethod
    def mirror(cls, config: Config) -> str | None:
        """Mirror= as given (no default: without it the metalink/mirrorlist service is used)."""
        return config.mirror.rstrip("/") if config.mirror else None

    @classmethod
    def dnf_variables(cls, config: Config) -> dict[str, str]:
        """Variables for the repository URLs ($stream, ...) beyond $releasever and $basearch."""
        return {}

    @classmethod
    def repositories(cls, config: Config, *, local: bool = True) -> list[RpmRepository]:
        raise NotImplementedError

    @classmethod
    def local_mirror_repositories(cls, config: Config, keys: tuple[RpmKey, ...]) -> list[RpmRepository]:
        """LocalMirror=: one plain repository holding everything, used only while building."""
        return [RpmRepository(cls.name, f"baseurl={config.local_mirror}", keys)]

    @classmethod
    def enabled_by_user(cls, config: Config) -> set[str]:
        """Repository ids (or globs: hyperscale-*) named in Repositories=, enabled although disabled
        by default, as dnf's --enablerepo takes them."""
        return {word for entry in config.repositories for word in entry.replace(",", " ").split()}

    @classmethod
    def wanted(cls, config: Config, repo_id: str) -> bool:
        return any(fnmatch.fnmatchcase(repo_id, pattern) for pattern in cls.enabled_by_user(config))


def environment_mirror(name: str) -> str | None:
    value = os.environ.get(name)
    return value.rstrip("/") if value else None
