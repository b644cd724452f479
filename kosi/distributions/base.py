"""What kosi knows about a distribution: one class per distribution carries its facts.

To add a distribution, write one module in kosi/distributions/ holding one class:

    class Fedora(Distribution):
        name = "fedora"                  # the Distribution= word
        pretty_name = "Fedora Linux"
        default_release = "43"
        package_manager = "dnf"          # the distribution's own package manager
        installer = "dnf"                # the kosi installer (kosi/installers/) that builds it
        ...                              # the other facts below, where they differ

Defining the class registers it (`__init_subclass__`); every module of kosi/distributions/
is imported on the first look-up (kosi.distributions.get), so no list names them. A class
without an installer is known (summary and --json show it, as mkosi does) but building it
is refused in one line before anything is installed; one with an installer replaces such a
planned one of the same name (planned.py), so the new module is the only file to touch.
"""

from __future__ import annotations

from typing import Any, ClassVar

#: the registry, filled by subclassing; kosi.distributions reads it
REGISTRY: dict[str, type[Distribution]] = {}


class Distribution:
    name: ClassVar[str]
    pretty_name: ClassVar[str]
    default_release: ClassVar[str]
    #: Release= of an image when the host runs another distribution, where it is not
    #: default_release (which also names the default tools tree's release)
    image_default_release: ClassVar[str | None] = None
    #: file system of the root partition by default (the %F specifier)
    filesystem: ClassVar[str] = "ext4"
    #: "apt", "dnf", "pacman", "zypper", "apk" or None for custom
    package_manager: ClassVar[str | None] = None
    #: the kosi installer (a PackageManager's name in kosi/installers/) that builds it; None: not yet
    installer: ClassVar[str | None] = None
    #: default mirror per architecture (kosi names: x86-64, arm64, ...); "*" for any
    mirrors: ClassVar[dict[str, str]] = {}
    #: distribution used for the default tools tree when building this one on such a host
    tools_tree_distribution: ClassVar[str | None] = None
    #: packages of the default tools tree built from this distribution, per profile
    #: ("base" always; "package-manager", "runtime", "misc", "devel" per ToolsTreeProfiles=)
    tools_tree_packages: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: the release a default tools tree carrying other distributions' package managers and keys
    #: is built from unless ToolsTreeRelease= says otherwise (None: the default release)
    package_managers_release: ClassVar[str | None] = None
    #: what the default initrd needs to find, check and mount the root file system
    initrd_packages: ClassVar[tuple[str, ...]] = ()
    #: packages the default initrd removes again after installing (mkosi 27.1: dpkg on Debian)
    initrd_remove_packages: ClassVar[tuple[str, ...]] = ()
    #: InitrdProfiles= (network, lvm, raid, ...) -> extra packages
    initrd_profile_packages: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: the kernel package of a bootable image (named in hints)
    kernel_packages: ClassVar[tuple[str, ...]] = ()
    #: the packages that ship a boot loader's files, by what kosi installs: "systemd-boot",
    #: "systemd-boot-signed", "grub-bios", "grub-efi", "grub-efi-signed", "shim-signed",
    #: "shim-unsigned"; added to an image that lacks them, and named in hints
    bootloader_packages: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: os-release IDs that name this distribution (default: its name)
    os_release_ids: ClassVar[tuple[str, ...]] = ()
    #: the os-release field holding the host's release (Debian: the code name)
    os_release_release_field: ClassVar[str] = "VERSION_ID"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            return
        known = REGISTRY.get(cls.name)
        if known is not None and known is not cls and known.installer and cls.installer:
            raise TypeError(f"Distribution={cls.name} is built by both {known.__qualname__} and {cls.__qualname__}")
        if known is None or cls.installer or not known.installer:
            REGISTRY[cls.name] = cls

    @classmethod
    def kernel_hint(cls) -> str:
        """The kernel package to name in a hint."""
        return " ".join(cls.kernel_packages) or "the distribution's kernel package"

    @classmethod
    def package_manager_tools(cls, release: str) -> tuple[str, ...]:
        """What a tools tree of this distribution (and release) adds to build images of the
        distributions that other package managers install (kosi builds Debian's only)."""
        return ()

    @classmethod
    def default_mirror(cls, architecture: str) -> str | None:
        return cls.mirrors.get(architecture) or cls.mirrors.get("*")

    @classmethod
    def default_compression(cls, release: str) -> str:
        """CompressOutput='s default for the formats compressed by default."""
        return "zstd"

    @classmethod
    def default_initrd(cls, release: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The default initrd's packages and the packages it removes again, for `release`."""
        return cls.initrd_packages, cls.initrd_remove_packages


def package_hint(packages: dict[str, tuple[str, ...]] | None, role: str) -> str:
    """The packages that ship `role` (a key of bootloader_packages), for a hint."""
    return " ".join((packages or {}).get(role, ())) or "the package that ships it"
