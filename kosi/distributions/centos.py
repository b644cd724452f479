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
CENTOS_METALINK = "https://mirrors.centos.org/metalink"


def centos_key(name: str) -> RpmKey:
    return RpmKey(name, "centos", f"https://www.centos.org/keys/{name}")


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
    #: packages pull in shadow-utils to make users; the initrd makes none (mkosi 27.1's)
    initrd_remove_packages: ClassVar[tuple[str, ...]] = ("shadow-utils",)
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
        keys = (
            RpmKey(
                f"RPM-GPG-KEY-EPEL-{major}", "epel", f"https://dl.fedoraproject.org/pub/epel/RPM-GPG-KEY-EPEL-{major}"
            ),
        )
        names = ["epel", "epel-next", "epel-testing", "epel-next-testing"] if major < 10 else ["epel", "epel-testing"]
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
                # EPEL 10's metalinks name the repository first, as mkosi 27.1 writes them
                urls = _three(
                    f"metalink={FEDORA_METALINK}?repo={link}&arch={arch}"
                    if major >= 10
                    else f"metalink={FEDORA_METALINK}?arch={arch}&repo={link}"
                    for link, arch in epel_metalinks(name, major)
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
    def compose_prefix(cls, config: Config) -> str:
        return f"CentOS-Stream-{cls.major(config)}-"

    @classmethod
    def latest_snapshot_url(cls, config: Config) -> str:
        return join(
            config.mirror or str(cls.snapshot_service),
            f"stream-{cls.major(config)}/production/latest-CentOS-Stream/compose/.composeinfo",
        )

    @classmethod
    def keys(cls, config: Config) -> tuple[RpmKey, ...]:
        name = "RPM-GPG-KEY-CentOS-Official-SHA256" if cls.major(config) >= 10 else "RPM-GPG-KEY-CentOS-Official"
        return (centos_key(name),)

    @classmethod
    def repositories(cls, config: Config, *, local: bool = True) -> list[RpmRepository]:
        # mkosi 27.1 trusts the Extras SIG's key next to the official one for every CentOS repository
        keys = (*cls.keys(config), centos_key("RPM-GPG-KEY-CentOS-SIG-Extras"))
        if local and config.local_mirror:
            return cls.local_mirror_repositories(config, cls.keys(config))
        mirror = cls.mirror(config)
        if config.snapshot:
            # a compose of the snapshot service (or of Mirror=, which then holds such composes)
            major = cls.major(config)
            mirror = None
            compose = join(
                config.mirror or str(cls.snapshot_service),
                f"stream-{major}/production/{cls.compose_prefix(config)}{config.snapshot}/compose",
            )
        repos: list[RpmRepository] = []
        for component in cls.components:
            if config.snapshot:
                urls = tuple(
                    f"baseurl={compose}/{path}"
                    for path in (
                        f"{component}/$basearch/os",
                        f"{component}/$basearch/debug/tree",
                        f"{component}/source/tree",
                    )
                )
            elif mirror:
                urls = tuple(
                    f"baseurl={join(mirror, f'$stream/{path}')}"
                    for path in (
                        f"{component}/$basearch/os",
                        f"{component}/$basearch/debug/tree",
                        f"{component}/source/tree",
                    )
                )
            else:
                urls = tuple(
                    f"metalink={CENTOS_METALINK}?arch={arch}&repo=centos-{component.lower()}{s}-$stream"
                    for s, arch in (("", "$basearch"), ("-debug", "$basearch"), ("-source", "source"))
                )
            repos += variants(component.lower(), *_three(urls), keys)
        if not config.snapshot:
            if mirror:
                extras = f"baseurl={join(mirror, 'SIGs/$stream/extras/$basearch/extras-common')}"
                extras_source = f"baseurl={join(mirror, 'SIGs/$stream/extras/source/extras-common')}"
            else:
                extras = f"metalink={CENTOS_METALINK}?arch=$basearch&repo=centos-extras-sig-extras-common-$stream"
                extras_source = (
                    f"metalink={CENTOS_METALINK}?arch=source&repo=centos-extras-sig-extras-common-source-$stream"
                )
            repos += [
                RpmRepository("extras", extras, keys),
                RpmRepository("extras-source", extras_source, keys, enabled=False),
            ]
        return repos + cls.epel(config) + cls.hyperscale(config, mirror)

    @classmethod
    def hyperscale(cls, config: Config, mirror: str | None) -> list[RpmRepository]:
        """The HyperScale SIG's repositories, disabled unless Repositories= names them: from
        Mirror=, or from the metalink service with the SIG's testing trees on buildlogs."""
        keys = (centos_key("RPM-GPG-KEY-CentOS-SIG-HyperScale"),)
        repos = []
        for variant in HYPERSCALE:
            repo_id = f"hyperscale-packages-{variant}"
            if mirror:
                base = join(mirror, "SIGs/$stream/hyperscale")
                urls = [
                    ("", f"baseurl={base}/$basearch/packages-{variant}"),
                    ("-debuginfo", f"baseurl={base}/$basearch/packages-{variant}/debug"),
                    ("-source", f"baseurl={base}/source/packages-{variant}"),
                ]
            else:
                link = f"centos-hyperscale-sig-packages-{variant}"
                testing = f"baseurl=https://buildlogs.centos.org/centos/$stream/hyperscale/$basearch/packages-{variant}"
                urls = [
                    ("", f"metalink={CENTOS_METALINK}?arch=$basearch&repo={link}-$stream"),
                    ("-debuginfo", f"metalink={CENTOS_METALINK}?arch=$basearch&repo={link}-debug-$stream"),
                    ("-source", f"metalink={CENTOS_METALINK}?arch=source&repo={link}-source-$stream"),
                    ("-testing", testing),
                    ("-testing-debuginfo", testing),
                ]
            for suffix, url in urls:
                name = repo_id + suffix
                repos.append(RpmRepository(name, url, keys, cls.wanted(config, name), priority=50))
        return repos


class _Clone(RhelFamily):
    """AlmaLinux and Rocky Linux: the RHEL layout under $releasever on their mirrors."""

    key_name: ClassVar[str]
    key_directory: ClassVar[str]
    #: where RepositoryKeyFetch=yes downloads the key from
    key_url: ClassVar[str]
    components = ("BaseOS", "AppStream", "CRB", "extras")

    @classmethod
    def keys(cls, config: Config) -> tuple[RpmKey, ...]:
        name = cls.key_name.format(major=cls.major(config))
        return (RpmKey(name, cls.key_directory, f"{cls.key_url}/{name}"),)

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
    key_url = "https://repo.almalinux.org/almalinux"

    @classmethod
    def mirrorlist(cls, component: str) -> str:
        return f"mirrorlist=https://mirrors.almalinux.org/mirrorlist/$releasever/{component.lower()}"


class Rocky(_Clone):
    name = "rocky"
    pretty_name = "Rocky Linux"
    mirrors = {"*": "https://mirrors.rockylinux.org"}
    key_name = "RPM-GPG-KEY-Rocky-{major}"
    key_directory = "rocky"
    key_url = "https://download.rockylinux.org/pub/rocky"

    @classmethod
    def mirrorlist(cls, component: str) -> str:
        return f"mirrorlist=https://mirrors.rockylinux.org/mirrorlist?arch=$basearch&repo={component}-$releasever"


class RhelUbi(RhelFamily):
    name = "rhel-ubi"
    pretty_name = "RHEL UBI"
    mirrors = {"*": "https://cdn-ubi.redhat.com"}
    initrd_packages: ClassVar[tuple[str, ...]] = ("bash", "gzip", "less", "systemd", "udev")
    initrd_remove_packages: ClassVar[tuple[str, ...]] = ()  # mkosi 27.1 removes nothing from UBI's
    #: the prefix of the repository ids and of the release's directory on the mirror
    prefix: ClassVar[str] = "ubi"

    @classmethod
    def keys(cls, config: Config) -> tuple[RpmKey, ...]:
        return (
            RpmKey(
                f"RPM-GPG-KEY-redhat{cls.major(config)}-release",
                "redhat",
                "https://access.redhat.com/security/data/fd431d51.txt",
            ),
        )

    @classmethod
    def repositories(cls, config: Config, *, local: bool = True) -> list[RpmRepository]:
        keys = cls.keys(config)
        if local and config.local_mirror:
            return cls.local_mirror_repositories(config, keys)
        major = cls.major(config)
        mirror = cls.mirror(config) or join(cls.mirrors["*"], "content/public/ubi/dist")
        repos: list[RpmRepository] = []
        for component in ("baseos", "appstream", "codeready-builder"):
            base = join(mirror, f"{cls.prefix}{major}/{major}")
            repos += [
                RpmRepository(
                    f"{cls.prefix}-{major}-{component}-rpms", f"baseurl={base}/$basearch/{component}/os", keys
                ),
                RpmRepository(
                    f"{cls.prefix}-{major}-{component}-debug-rpms",
                    f"baseurl={base}/$basearch/{component}/debug",
                    keys,
                    enabled=False,
                ),
                RpmRepository(
                    f"{cls.prefix}-{major}-{component}-source",
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
    prefix = "rhel"
    initrd_packages = CentOS.initrd_packages
    initrd_remove_packages = CentOS.initrd_remove_packages

    @classmethod
    def repositories(cls, config: Config, *, local: bool = True) -> list[RpmRepository]:
        if (local and config.local_mirror) or config.mirror:
            return super().repositories(config, local=local)
        raise KosiError(
            "Distribution=rhel: the RHEL CDN needs a subscription, which kosi does not handle: "
            "set Mirror= (or LocalMirror=) to a mirror of the RHEL repositories, or use rhel-ubi"
        )
