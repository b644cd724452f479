"""Fedora Linux: releases and rawhide, from a mirror, a compose snapshot or the metalink service."""

from __future__ import annotations

from typing import Any

from kosi.config.model import Config
from kosi.distributions.rpm import (
    RpmDistribution,
    RpmKey,
    RpmRepository,
    join,
    variants,
)

METALINK = "https://mirrors.fedoraproject.org/metalink?arch=$basearch&repo="


class Fedora(RpmDistribution):
    name = "fedora"
    pretty_name = "Fedora Linux"
    default_release = "rawhide"
    filesystem = "btrfs"
    mirrors = {"*": "https://mirrors.fedoraproject.org"}
    tools_tree_distribution = "fedora"
    #: where Snapshot= composes come from unless Mirror= names another copy
    snapshot_service = "https://kojipkgs.fedoraproject.org"
    kernel_packages = ("kernel",)
    initrd_packages = (
        "bash", "btrfs-progs", "cryptsetup-libs", "dosfstools", "e2fsprogs", "gzip", "less", "libfdisk", "libfido2",
        "libseccomp", "procps-ng", "systemd", "tpm2-tss", "udev", "util-linux-core", "xfsprogs",
    )  # fmt: skip

    @classmethod
    def default_initrd(cls, release: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Packages pull in shadow-utils to make users, which the initrd does not: mkosi 27.1
        removes it again on Fedora 40 to 42 only (not 43, 44 nor rawhide)."""
        return cls.initrd_packages, ("shadow-utils",) if (release or cls.default_release) in ("40", "41", "42") else ()

    @classmethod
    def keys(cls, config: Config) -> tuple[RpmKey, ...]:
        return (RpmKey(f"RPM-GPG-KEY-fedora-{cls.release(config)}-primary", "fedora"),)

    @classmethod
    def compose_prefix(cls, config: Config) -> str:
        """Composes are Fedora-42-20250101.0, Fedora-Rawhide-20250101.n.0; Snapshot= is the date part."""
        return f"Fedora-{cls.release(config).capitalize()}-"

    @classmethod
    def latest_snapshot_url(cls, config: Config) -> str:
        release = cls.release(config)
        prefix = cls.compose_prefix(config).rstrip("-")
        return join(config.mirror or str(cls.snapshot_service), f"compose/{release}/latest-{prefix}/COMPOSE_ID")

    @classmethod
    def repositories(cls, config: Config, *, local: bool = True) -> list[RpmRepository]:
        keys = cls.keys(config)
        release = cls.release(config)
        rawhide = release == "rawhide"
        expire: dict[str, Any] = {"metadata_expire": "6h"} if rawhide else {}
        if local and config.local_mirror:
            return cls.local_mirror_repositories(config, keys)
        if config.snapshot:
            name = cls.compose_prefix(config) + config.snapshot
            compose = join(config.mirror or str(cls.snapshot_service), f"compose/{release}/{name}/compose/Everything")
            return variants(
                "fedora",
                f"baseurl={compose}/$basearch/os",
                f"baseurl={compose}/$basearch/debug/tree",
                f"baseurl={compose}/source/tree",
                keys,
                **expire,
            )
        mirror = cls.mirror(config)
        if mirror:
            directory = "development" if rawhide else "releases"
            base = join(mirror, f"linux/{directory}/$releasever/Everything")
            repos = variants(
                "fedora",
                f"baseurl={base}/$basearch/os",
                f"baseurl={base}/$basearch/debug/tree",
                f"baseurl={base}/source/tree",
                keys,
                **expire,
            )
            if not rawhide:
                for repo_id, path in (("updates", "updates"), ("updates-testing", "updates/testing")):
                    base = join(mirror, f"linux/{path}/$releasever/Everything")
                    repos += variants(
                        repo_id,
                        f"baseurl={base}/$basearch",
                        f"baseurl={base}/$basearch/debug",
                        f"baseurl={base}/source/tree",
                        keys,
                        enabled=repo_id == "updates",
                    )
            return repos
        repos = variants(
            "fedora",
            f"metalink={METALINK}fedora-$releasever",
            f"metalink={METALINK}fedora-debug-$releasever",
            f"metalink={METALINK}fedora-source-$releasever",
            keys,
            **expire,
        )
        if rawhide:
            return repos
        for repo_id, name in (("updates", "updates-released"), ("updates-testing", "updates-testing")):
            repos += variants(
                repo_id,
                f"metalink={METALINK}{name}-f$releasever",
                f"metalink={METALINK}{name}-debug-f$releasever",
                f"metalink={METALINK}{name}-source-f$releasever",
                keys,
                enabled=repo_id == "updates",
            )
        return repos
