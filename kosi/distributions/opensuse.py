"""openSUSE Tumbleweed and Leap: their rpm-md repositories.

Layouts below Mirror= (download.opensuse.org by default):

    tumbleweed/repo/oss, update/tumbleweed, debug/..., source/...     Tumbleweed (x86-64)
    ports/<arch>/tumbleweed/repo/oss, ports/<arch>/update/...         Tumbleweed, other architectures
    history/<YYYYMMDD>/tumbleweed/repo/{oss,non-oss}                  Tumbleweed at Snapshot=
    [ports/<arch>/][debug/|source/]distribution/leap/<release>/repo/{oss,non-oss}   Leap
    [ports/<arch>/]update/leap/<release>/{oss,non-oss}               Leap 15 updates
    (Release=leap is distribution/openSUSE-current; Leap 16's updates are in its repo tree)

The repositories are mkosi 27.1's (its generated .repo files, tests/installers/test_zypper.py):
oss and oss-update enabled; the debug, source and non-oss ones defined but disabled unless
Repositories= names them (ids or globs; "debug" and "source" are short for oss-debug and
oss-source). Installing is kosi/installers/zypper.py's job.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import ClassVar

from kosi.config.model import Config
from kosi.distributions.base import Distribution
from kosi.errors import KosiError

#: kosi's Architecture= names -> rpm's
RPM_ARCHITECTURES = {
    "x86-64": "x86_64",
    "arm64": "aarch64",
    "ppc64-le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "x86": "i586",
    "arm": "armv7hl",
}
SNAPSHOT_ID = re.compile(r"\d{8}")
#: the repositories as mkosi 27.1 defines them: id, path below the mirror, enabled by default.
#: Tumbleweed's paths are fixed; Leap's have {tree} (the release's tree) and {updates} (its
#: update tree) filled in.
REPOSITORIES = {
    "tumbleweed": (
        ("oss", "tumbleweed/repo/oss", True),
        ("oss-debug", "debug/tumbleweed/repo/oss", False),
        ("oss-source", "source/tumbleweed/repo/oss", False),
        ("non-oss", "tumbleweed/repo/non-oss", False),
        ("non-oss-source", "source/tumbleweed/repo/non-oss", False),
        ("oss-update", "update/tumbleweed", True),
        ("non-oss-update", "update/tumbleweed-non-oss", False),
    ),
    "leap": (
        ("oss", "{tree}/repo/oss", True),
        ("non-oss", "{tree}/repo/non-oss", False),
        ("oss-debug", "debug/{tree}/repo/oss", False),
        ("non-oss-debug", "debug/{tree}/repo/non-oss", False),
        ("oss-source", "source/{tree}/repo/oss", False),
        ("non-oss-source", "source/{tree}/repo/non-oss", False),
        ("oss-update", "{updates}/oss", True),
        ("non-oss-update", "{updates}/non-oss", False),
    ),
}
#: the ports/ directory of an architecture other than x86-64
PORTS = {"ppc64le": "ppc", "s390x": "zsystems"}
KEY_DIRECTORY = "/usr/share/distribution-gpg-keys"
#: Leap's keys: mkosi 27.1's set without openSUSE-Backports (expired in 2024, superseded by
#: openSUSE-Backports-2023); the SuSE-* ones are in distribution-gpg-keys' suse/ directory
LEAP_KEYS = ("openSUSE", "openSUSE-16-Backports", "openSUSE-2022", "openSUSE-Backports-2023", "SuSE-SLE-15",
             "SuSE-SLE-Main-2023", "SuSE-ALP-Main")  # fmt: skip


@dataclass(frozen=True)
class RpmRepository:
    """One section of a zypper .repo file."""

    id: str
    url: str
    gpgkeys: tuple[str, ...] = ()  # key files (absolute paths) the repository's metadata is signed with
    enabled: bool = True
    check: bool = True  # gpgcheck / repo_gpgcheck
    #: pkg_gpgcheck=1 (else zypper's default: package signatures are checked when the metadata
    #: is not signed; the packages' checksums are in the signed metadata)
    package_check: bool = True

    def section(self, *, priority: int | None = None) -> str:
        lines = [
            f"[{self.id}]",
            f"name={self.id}",
            f"baseurl={self.url}",
            f"enabled={int(self.enabled)}",
            "autorefresh=0",
            "keeppackages=1",
            f"gpgcheck={int(self.check)}",
            f"repo_gpgcheck={int(self.check)}",
            *([f"pkg_gpgcheck={int(self.check)}"] if self.package_check or not self.check else []),
        ]
        if self.check and self.gpgkeys:
            lines.append("gpgkey=" + " ".join(f"file://{key}" for key in self.gpgkeys))
        if priority is not None:
            lines.append(f"priority={priority}")
        return "\n".join(lines) + "\n"


def rpm_architecture(config: Config) -> str:
    try:
        return RPM_ARCHITECTURES[config.architecture]
    except KeyError:
        raise KosiError(
            f"Architecture={config.architecture} is not supported by openSUSE "
            f"(supported: {', '.join(RPM_ARCHITECTURES)})"
        ) from None


class OpenSUSE(Distribution):
    name = "opensuse"
    pretty_name = "openSUSE"
    default_release = "tumbleweed"
    package_manager = "zypper"
    installer = "zypper"
    filesystem = "btrfs"
    mirrors = {"*": "https://download.opensuse.org"}
    tools_tree_distribution = "opensuse"
    initrd_packages = (
        "bash", "btrfsprogs", "diffutils", "dosfstools", "e2fsprogs", "grep", "gzip", "less", "libcryptsetup12",
        "libfdisk1", "libfido2-1", "libseccomp2", "libtss2-esys0", "libtss2-mu0", "libtss2-rc0",
        "libtss2-tcti-device0", "patterns-base-minimal_base", "procps", "systemd", "udev", "util-linux", "xfsprogs",
        "xz",
    )  # fmt: skip
    #: packages pull in shadow to make users; the initrd makes none (mkosi 27.1's)
    initrd_remove_packages = ("shadow", "sysuser-shadow")
    initrd_profile_packages = {
        "lvm": ("lvm2",), "network": ("iproute2",), "raid": ("mdadm",), "nfs": ("nfs-client",),
        "pkcs11": ("opensc",), "plymouth": ("plymouth",),
    }  # fmt: skip
    os_release_ids = ("opensuse-tumbleweed", "opensuse-leap", "opensuse")
    kernel_packages: ClassVar[tuple[str, ...]] = ("kernel-default",)

    @classmethod
    def release(cls, config: Config) -> str:
        return config.release or cls.default_release

    @classmethod
    def release_packages(cls, config: Config) -> tuple[str, ...]:
        """What a new image gets with its filesystem package (as mkosi 27.1): the os-release."""
        release = cls.release(config)
        return ("openSUSE-release",) if release == "tumbleweed" or release.startswith("15.") else ("Leap-release",)

    @classmethod
    def tumbleweed(cls, config: Config) -> bool:
        return cls.release(config) == "tumbleweed"

    @classmethod
    def kind(cls, config: Config) -> str:
        return "tumbleweed" if cls.tumbleweed(config) else "leap"

    @classmethod
    def keys(cls, config: Config) -> tuple[str, ...]:
        """The key files (distribution-gpg-keys' paths) the release's repositories are signed with:
        mkosi 27.1's set without the superseded keys that distribution-gpg-keys has only in an
        expired copy (docs/compatibility.md, "openSUSE: repositories")."""
        if cls.tumbleweed(config):
            names: tuple[str, ...] = ("openSUSE-Tumbleweed",)
        else:
            names = LEAP_KEYS
            if not cls.release(config).startswith("15."):  # Leap 15's key, expired since 2024
                names = tuple(name for name in names if name != "openSUSE")
        return tuple(f"{KEY_DIRECTORY}/{'suse' if n.startswith('SuSE') else 'opensuse'}/RPM-GPG-KEY-{n}" for n in names)

    @classmethod
    def snapshot(cls, config: Config) -> str | None:
        snapshot = config.snapshot
        if snapshot and not SNAPSHOT_ID.fullmatch(snapshot):
            raise KosiError(
                f"Snapshot={snapshot}: openSUSE Tumbleweed snapshots are days, like 20250131 "
                "(`kosi latest-snapshot` prints the newest)"
            )
        if snapshot and not cls.tumbleweed(config):
            raise KosiError(f"Snapshot=: openSUSE Leap {cls.release(config)} has no snapshots (only Tumbleweed)")
        return snapshot or None

    @classmethod
    def extra(cls, config: Config) -> set[str]:
        wanted = {word for entry in config.repositories for word in entry.replace(",", " ").split()}
        known = {"debug", "source", "non-oss", "oss", "update"}
        known |= {repo_id for repo_id, _, _ in REPOSITORIES[cls.kind(config)]}
        unknown = sorted(w for w in wanted if not any(fnmatch.fnmatchcase(k, w) for k in known))
        if unknown:
            raise KosiError(
                f"Repositories={unknown[0]}: not an openSUSE repository (known: {', '.join(sorted(known))})"
            )
        return wanted

    @classmethod
    def repositories(cls, config: Config, *, local: bool = True) -> list[RpmRepository]:
        """The repositories to build from (local=True: LocalMirror= wins) or to put in the image."""
        check = config.repository_key_check
        keys = cls.keys(config)
        snapshot = cls.snapshot(config)
        if local and config.local_mirror:
            return [RpmRepository("local-mirror", config.local_mirror.rstrip("/"), keys, check=check)]
        mirror = (config.mirror or cls.default_mirror(config.architecture) or "").rstrip("/")
        release, arch = cls.release(config), rpm_architecture(config)
        extra = cls.extra(config)
        ports = "" if arch == "x86_64" else f"/ports/{PORTS.get(arch, arch)}"
        if cls.tumbleweed(config):
            base = f"{mirror}/history/{snapshot}" if snapshot else f"{mirror}{ports}"
            aliases = {"debug": "oss-debug", "source": "oss-source"}
            wanted = {aliases.get(w, w) for w in extra}
            repos = []
            for repo_id, path, default in REPOSITORIES["tumbleweed"]:
                if snapshot and repo_id not in ("oss", "non-oss"):
                    continue  # the history has no updates, debug or source trees
                enabled = default or any(fnmatch.fnmatchcase(repo_id, w) for w in wanted)
                repos.append(RpmRepository(repo_id, f"{base}/{path}", keys, enabled, check=check))
            return repos
        if release == "leap":
            tree = "distribution/openSUSE-current"
        elif re.fullmatch(r"\d+\.\d+", release):
            tree = f"distribution/leap/{release}"
        else:
            raise KosiError(f"Release={release}: openSUSE releases are tumbleweed, leap or a Leap version like 15.6")
        # Leap 15 has an update tree of its own; 16 (and openSUSE-current) publish updates in the release's tree
        updates = f"update/leap/{release}" if release.startswith("15.") else f"{tree}/repo"
        aliases = {"debug": "oss-debug", "source": "oss-source"}
        wanted = {aliases.get(w, w) for w in extra}
        return [
            RpmRepository(
                repo_id,
                f"{mirror}{ports}/" + path.format(tree=tree, updates=updates),
                keys,
                default or any(fnmatch.fnmatchcase(repo_id, w) for w in wanted),
                check=check,
            )
            for repo_id, path, default in REPOSITORIES["leap"]
        ]
