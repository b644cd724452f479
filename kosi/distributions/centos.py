"""CentOS Stream and the RHEL family (RHEL, RHEL UBI, AlmaLinux, Rocky Linux).

CentOS Stream: BaseOS, AppStream, CRB and the Extras SIG are enabled; EPEL and the
HyperScale SIG are defined but disabled unless Repositories= names them, and the keys of
disabled repositories are never required. EPEL lives next to the mirror's directory
(Mirror=https://mirror.net/centos-stream: https://mirror.net/fedora/epel) unless
$EPEL_MIRROR says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from kosi.config.model import Config
from kosi.distributions.rpm import (
    RpmDistribution,
    RpmKey,
    RpmRepository,
    environment_mirror,
    join,
    variants,
)
from kosi.errors import KosiError

FEDORA_METALINK = "https://mirrors.fedoraproject.org/metalink"
HYPERSCALE = ("main", "experimental", "facebook", "hotfixes", "spin", "intel", "kernel")


def _three(urls: Iterable[str]) -> tuple[str, str, str]:
    """The URLs of a repository and its -debug and -source companions, as variants() takes them."""
    url, debug, source = urls
    return url, debug, source


def epel_metalinks(name: str, major: int) -> list[tuple[str, str]]:
    """The metalink repo= names (and arch=) of an EPEL repository and its debug and source companions:
    EPEL 10 names its testing repositories like the others and asks for arch=source."""
    source_arch = "source" if major >= 10 else "$basearch"
    if name == "epel-testing" and major < 10:
        return [
            (f"testing-epel{major}", "$basearch"),
            (f"testing-debug-epel{major}", "$basearch"),
            (f"testing-source-epel{major}", source_arch),
        ]
    base = {"epel-next-testing": "epel-testing-next"}.get(name, name)
    return [
        (f"{base}-{major}", "$basearch"),
        (f"{base}-debug-{major}", "$basearch"),
        (f"{base}-source-{major}", source_arch),
    ]


class RhelFamily(RpmDistribution):
    filesystem = "xfs"
    default_release = "10"
    tools_tree_distribution = "fedora"
    #: the enabled repositories, by their directory name on the mirror
    components: ClassVar[tuple[str, ...]] = ("BaseOS", "AppStream", "CRB")

    @classmethod
    def major(cls, config: Config) -> int:
        release = cls.release(config)
        try:
            return int(release.split(".")[0])
        except ValueError:
            raise KosiError(f"Release={release}: {cls.pretty_name} releases are numbers (9, 10)") from None

    @classmethod
    def keys(cls, config: Config) -> tuple[RpmKey, ...]:
        raise NotImplementedError

    @classmethod
    def epel(cls, config: Config) -> list[RpmRepository]:
        """EPEL (and EPEL Next for 9), disabled unless Repositories= names them."""
        major = cls.major(config)
        keys = (RpmKey(f"RPM-GPG-KEY-EPEL-{major}", "epel"),)
        names = ["epel", "epel-testing"] + (["epel-next", "epel-next-testing"] if major < 10 else [])
        mirror = environment_mirror("EPEL_MIRROR")
        if mirror is None and config.mirror:
            mirror = join(config.mirror.rstrip("/").rpartition("/")[0], "fedora")
        repos = []
        for name in names:
            path = {"epel": "", "epel-testing": "testing/", "epel-next": "next/", "epel-next-testing": "testing/next/"}[
                name
            ]
            if mirror:
                base = join(mirror, f"epel/{path}{major}/Everything")
                urls = (f"baseurl={base}/$basearch", f"baseurl={base}/$basearch/debug", f"baseurl={base}/source/tree")
            else:
                urls = _three(
                    f"metalink={FEDORA_METALINK}?arch={arch}&repo={link}" for link, arch in epel_metalinks(name, major)
                )
            repos += variants(name, *urls, keys, enabled=cls.wanted(config, name))
        return repos


class CentOS(RhelFamily):
    name = "centos"
    pretty_name = "CentOS"
    mirrors = {"*": "https://mirrors.centos.org"}
    snapshot_service = "https://composes.stream.centos.org"

    @classmethod
    def dnf_variables(cls, config: Config) -> dict[str, str]:
        return {"stream": f"{cls.release(config)}-stream"}

    @classmethod
    def keys(cls, config: Config) -> tuple[RpmKey, ...]:
        name = "RPM-GPG-KEY-CentOS-Official-SHA256" if cls.major(config) >= 10 else "RPM-GPG-KEY-CentOS-Official"
        return (RpmKey(name, "centos"),)

    @classmethod
    def repositories(cls, config: Config, *, local: bool = True) -> list[RpmRepository]:
        keys = cls.keys(config)
        extras_keys = (*keys, RpmKey("RPM-GPG-KEY-CentOS-SIG-Extras", "centos"))
        hyperscale_keys = (RpmKey("RPM-GPG-KEY-CentOS-SIG-HyperScale", "centos"),)
        if local and config.local_mirror:
            return cls.local_mirror_repositories(config, keys)
        repos: list[RpmRepository] = []
        if config.snapshot:
            base = join(
                config.mirror or cls.snapshot_service,
                f"stream-{cls.major(config)}/production/{config.snapshot}/compose",
            )
            for component in cls.components:
                repos += variants(
                    component.lower(),
                    f"baseurl={base}/{component}/$basearch/os",
                    f"baseurl={base}/{component}/$basearch/debug/tree",
                    f"baseurl={base}/{component}/source/tree",
                    keys,
                )
            return repos + cls.epel(config)
        mirror = cls.mirror(config)
        for component in cls.components:
            repo_id = component.lower()
            if mirror:
                urls = (
                    f"baseurl={join(mirror, f'$stream/{component}/$basearch/os')}",
                    f"baseurl={join(mirror, f'$stream/{component}/$basearch/debug/tree')}",
                    f"baseurl={join(mirror, f'$stream/{component}/source/tree')}",
                )
            else:
                urls = _three(
                    f"metalink=https://mirrors.centos.org/metalink?arch={arch}&repo=centos-{repo_id}{s}-$stream"
                    for s, arch in (("", "$basearch"), ("-debug", "$basearch"), ("-source", "source"))
                )
            repos += variants(repo_id, *urls, keys)
        if mirror:
            extras = f"baseurl={join(mirror, 'SIGs/$stream/extras/$basearch/extras-common')}"
            extras_source = f"baseurl={join(mirror, 'SIGs/$stream/extras/source/extras-common')}"
        else:
            extras = "metalink=https://mirrors.centos.org/metalink?arch=$basearch&repo=centos-extras-sig-extras-common-$stream"
            extras_source = (
                "metalink=https://mirrors.centos.org/metalink?arch=source"
                "&repo=centos-extras-sig-extras-common-source-$stream"
            )
        repos += [
            RpmRepository("extras", extras, extras_keys),
            RpmRepository("extras-source", extras_source, extras_keys, enabled=False),
        ]
        repos += cls.epel(config)
        for variant in HYPERSCALE:
            repo_id = f"hyperscale-packages-{variant}"
            if mirror:
                url = f"baseurl={join(mirror, f'SIGs/$stream/hyperscale/$basearch/packages-{variant}')}"
            else:
                url = (
                    "metalink=https://mirrors.centos.org/metalink?arch=$basearch"
                    f"&repo=centos-hyperscale-sig-packages-{variant}-$stream"
                )
            repos.append(RpmRepository(repo_id, url, hyperscale_keys, cls.wanted(config, repo_id), priority=50))
        return repos


class _Clone(RhelFamily):
    """AlmaLinux and Rocky Linux: the RHEL layout under $releasever on their mirrors."""

    key_name: ClassVar[str]
    key_directory: ClassVar[str]
    components = ("BaseOS", "AppStream", "CRB", "extras")

    @classmethod
    def keys(cls, config: Config) -> tuple[RpmKey, ...]:
        return (RpmKey(cls.key_name.format(major=cls.major(config)), cls.key_directory),)

    @classmethod
    def mirrorlist(cls, component: str) -> str:
        raise NotImplementedError

    @classmethod
    def repositories(cls, config: Config, *, local: bool = True) -> list[RpmRepository]:
        keys = cls.keys(config)
        if local and config.local_mirror:
            return cls.local_mirror_repositories(config, keys)
        mirror = cls.mirror(config)
        repos: list[RpmRepository] = []
        for component in cls.components:
            url = (
                f"baseurl={join(mirror, f'$releasever/{component}/$basearch/os')}"
                if mirror
                else cls.mirrorlist(component)
            )
            repos.append(RpmRepository(component, url, keys))
        return repos + cls.epel(config)


class Alma(_Clone):
    name = "alma"
    pretty_name = "AlmaLinux"
    mirrors = {"*": "https://mirrors.almalinux.org"}
    os_release_ids = ("almalinux",)
    key_name = "RPM-GPG-KEY-AlmaLinux-{major}"
    key_directory = "alma"

    @classmethod
    def mirrorlist(cls, component: str) -> str:
        return f"mirrorlist=https://mirrors.almalinux.org/mirrorlist/$releasever/{component.lower()}"


class Rocky(_Clone):
    name = "rocky"
    pretty_name = "Rocky Linux"
    mirrors = {"*": "https://mirrors.rockylinux.org"}
    key_name = "RPM-GPG-KEY-Rocky-{major}"
    key_directory = "rocky"

    @classmethod
    def mirrorlist(cls, component: str) -> str:
        return f"mirrorlist=https://mirrors.rockylinux.org/mirrorlist?arch=$basearch&repo={component}-$releasever"


class RhelUbi(RhelFamily):
    name = "rhel-ubi"
    pretty_name = "RHEL UBI"
    mirrors = {"*": "https://cdn-ubi.redhat.com"}

    @classmethod
    def keys(cls, config: Config) -> tuple[RpmKey, ...]:
        return (RpmKey(f"RPM-GPG-KEY-redhat{cls.major(config)}-release", "redhat"),)

    @classmethod
    def repositories(cls, config: Config, *, local: bool = True) -> list[RpmRepository]:
        keys = cls.keys(config)
        if local and config.local_mirror:
            return cls.local_mirror_repositories(config, keys)
        major = cls.major(config)
        mirror = cls.mirror(config) or join(cls.mirrors["*"], "content/public/ubi/dist")
        repos: list[RpmRepository] = []
        for component in ("baseos", "appstream", "codeready-builder"):
            base = join(mirror, f"ubi{major}/{major}")
            repos += [
                RpmRepository(f"ubi-{major}-{component}-rpms", f"baseurl={base}/$basearch/{component}/os", keys),
                RpmRepository(
                    f"ubi-{major}-{component}-debug-rpms",
                    f"baseurl={base}/$basearch/{component}/debug",
                    keys,
                    enabled=False,
                ),
                RpmRepository(
                    f"ubi-{major}-{component}-source",
                    f"baseurl={base}/$basearch/{component}/source",
                    keys,
                    enabled=False,
                ),
            ]
        return repos + cls.epel(config)


class Rhel(RhelUbi):
    """RHEL proper: the subscription CDN, with the host's entitlement certificate."""

    name = "rhel"
    pretty_name = "RHEL"
    mirrors = {}

    @classmethod
    def repositories(cls, config: Config, *, local: bool = True) -> list[RpmRepository]:
        if (local and config.local_mirror) or config.mirror:
            return super().repositories(config, local=local)
        raise KosiError(
            "Distribution=rhel: the RHEL CDN needs a subscription, which kosi does not handle: "
            "set Mirror= (or LocalMirror=) to a mirror of the RHEL repositories, or use rhel-ubi"
        )
