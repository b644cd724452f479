"""Distributions kosi knows (summary and --json show them, as mkosi does) but cannot build yet.

Each is replaced by the class of the module that implements it, which names its installer
(see base.py); building one of these is refused before anything is installed.
"""

from __future__ import annotations

from kosi.distributions.base import Distribution


class RHELFamily(Distribution):
    """CentOS and its derivatives: xz compression up to release 8 (the manual)."""

    package_manager = "dnf"
    filesystem = "xfs"
    tools_tree_distribution = "fedora"

    @classmethod
    def default_compression(cls, release: str) -> str:
        major = release.split(".")[0]
        return "xz" if major.isdigit() and int(major) <= 8 else "zstd"


class Fedora(Distribution):
    name = "fedora"
    pretty_name = "Fedora Linux"
    default_release = "rawhide"
    package_manager = "dnf"
    filesystem = "btrfs"
    mirrors = {"*": "https://mirrors.fedoraproject.org"}
    tools_tree_distribution = "fedora"


class CentOS(RHELFamily):
    name = "centos"
    pretty_name = "CentOS"
    default_release = "10"
    mirrors = {"*": "https://mirrors.centos.org"}


class RHEL(RHELFamily):
    name = "rhel"
    pretty_name = "RHEL"
    default_release = "10"


class RHELUBI(RHELFamily):
    name = "rhel-ubi"
    pretty_name = "RHEL UBI"
    default_release = "10"
    mirrors = {"*": "https://cdn-ubi.redhat.com"}


class Alma(RHELFamily):
    name = "alma"
    pretty_name = "AlmaLinux"
    default_release = "10"
    mirrors = {"*": "https://mirrors.almalinux.org"}
    os_release_ids = ("almalinux",)


class Rocky(RHELFamily):
    name = "rocky"
    pretty_name = "Rocky Linux"
    default_release = "10"
    mirrors = {"*": "https://mirrors.rockylinux.org"}


class Mageia(Distribution):
    name = "mageia"
    pretty_name = "Mageia"
    default_release = "cauldron"
    package_manager = "dnf"
    mirrors = {"*": "https://www.mageia.org"}
    tools_tree_distribution = "mageia"


class OpenMandriva(Distribution):
    name = "openmandriva"
    pretty_name = "OpenMandriva"
    default_release = "cooker"
    package_manager = "dnf"
    mirrors = {"*": "http://mirrors.openmandriva.org"}
    tools_tree_distribution = "openmandriva"


class Azure(Distribution):
    name = "azure"
    pretty_name = "Azure Linux"
    default_release = "3.0"
    package_manager = "dnf"
    mirrors = {"*": "https://packages.microsoft.com/"}
    tools_tree_distribution = "fedora"
    os_release_ids = ("azurelinux",)


class OpenSUSE(Distribution):
    name = "opensuse"
    pretty_name = "openSUSE"
    default_release = "tumbleweed"
    package_manager = "zypper"
    filesystem = "btrfs"
    mirrors = {"*": "http://download.opensuse.org"}
    tools_tree_distribution = "opensuse"
    foreign_tools_packages = ("zypper", "rpm", "createrepo-c")
    initrd_packages = ("systemd", "udev", "util-linux", "kmod", "e2fsprogs", "dosfstools", "btrfsprogs", "xfsprogs",
                       "cryptsetup", "device-mapper")  # fmt: skip
    initrd_profile_packages = {
        "lvm": ("lvm2",), "network": ("iproute2",), "raid": ("mdadm",), "nfs": ("nfs-client",),
        "pkcs11": ("opensc",), "plymouth": ("plymouth",),
    }  # fmt: skip
    os_release_ids = ("opensuse-tumbleweed", "opensuse-leap", "opensuse")


class PostmarketOS(Distribution):
    name = "postmarketos"
    pretty_name = "postmarketOS"
    default_release = "edge"
    package_manager = "apk"
    tools_tree_distribution = "postmarketos"


class Custom(Distribution):
    name = "custom"
    pretty_name = "Custom"
    default_release = ""
    tools_tree_distribution = "debian"
