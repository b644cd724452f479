"""Mageia and OpenMandriva: two repositories (release and updates) of their main medium."""

from __future__ import annotations

from typing import ClassVar

from kosi.config.model import Config
from kosi.distributions.rpm import RpmDistribution, RpmKey, RpmRepository, join


class Mageia(RpmDistribution):
    name = "mageia"
    initrd_packages: ClassVar[tuple[str, ...]] = ("bash", "gzip", "less", "systemd", "udev")
    pretty_name = "Mageia"
    default_release = "cauldron"
    mirrors = {"*": "https://www.mageia.org"}
    tools_tree_distribution = "mageia"
    bootstrap_packages = ("filesystem",)

    @classmethod
    def keys(cls, config: Config) -> tuple[RpmKey, ...]:
        return (
            RpmKey(
                "RPM-GPG-KEY-Mageia",
                "mageia",
                "https://mirrors.kernel.org/mageia/distrib/$releasever/$basearch/media/core/release/media_info/pubkey",
            ),
        )

    @classmethod
    def repositories(cls, config: Config, *, local: bool = True) -> list[RpmRepository]:
        keys = cls.keys(config)
        if local and config.local_mirror:
            return cls.local_mirror_repositories(config, keys)
        mirror = cls.mirror(config)
        repos = []
        for kind in ("release", "updates"):
            if mirror:
                url = f"baseurl={join(mirror, f'distrib/$releasever/$basearch/media/core/{kind}')}"
            else:
                url = (
                    f"mirrorlist=https://www.mageia.org/mirrorlist/?release=$releasever&arch=$basearch"
                    f"&section=core&repo={kind}"
                )
            repos.append(RpmRepository(f"core-{kind}", url, keys))
        return repos


class OpenMandriva(RpmDistribution):
    name = "openmandriva"
    initrd_packages: ClassVar[tuple[str, ...]] = ("bash", "gzip", "less", "systemd", "udev")
    pretty_name = "OpenMandriva"
    default_release = "cooker"
    mirrors = {"*": "http://mirrors.openmandriva.org"}
    tools_tree_distribution = "openmandriva"
    bootstrap_packages = ("filesystem",)
    #: where packages come from without Mirror= (the manual's table names the mirror list's host)
    repository_host = "http://mirror.openmandriva.org"

    @classmethod
    def keys(cls, config: Config) -> tuple[RpmKey, ...]:
        return (
            RpmKey(
                "RPM-GPG-KEY-OpenMandriva",
                "openmandriva",
                "https://raw.githubusercontent.com/OpenMandrivaAssociation/openmandriva-repos/master/RPM-GPG-KEY-OpenMandriva",
            ),
        )

    @classmethod
    def repositories(cls, config: Config, *, local: bool = True) -> list[RpmRepository]:
        keys = cls.keys(config)
        if local and config.local_mirror:
            return cls.local_mirror_repositories(config, keys)
        mirror = cls.mirror(config) or cls.repository_host
        return [
            RpmRepository(
                f"main-{kind}", f"baseurl={join(mirror, f'$releasever/repository/$basearch/main/{kind}')}", keys
            )
            for kind in ("release", "updates")
        ]
