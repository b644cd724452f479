"""What kosi knows about a distribution. One small subclass per distribution."""

from __future__ import annotations

from typing import ClassVar


class Distribution:
    name: ClassVar[str]
    pretty_name: ClassVar[str]
    default_release: ClassVar[str]
    #: file system of the root partition by default (the %F specifier)
    filesystem: ClassVar[str] = "ext4"
    #: "apt", "dnf", "pacman", "zypper", "apk" or None for custom
    package_manager: ClassVar[str | None] = None
    #: default mirror per architecture (kosi names: x86-64, arm64, ...); "*" for any
    mirrors: ClassVar[dict[str, str]] = {}
    #: distribution used for the default tools tree when building this one on such a host
    tools_tree_distribution: ClassVar[str | None] = None

    @classmethod
    def default_mirror(cls, architecture: str) -> str | None:
        return cls.mirrors.get(architecture) or cls.mirrors.get("*")
