"""Distributions kosi knows (summary and --json show them, as mkosi does) but cannot build yet.

Each is replaced by the class of the module that implements it, which names its installer
(see base.py); building one of these is refused before anything is installed.
"""

from __future__ import annotations

from kosi.distributions.base import Distribution


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
    """Not planned but complete: no package manager, the user's scripts and trees fill the
    image (check_buildable lets it through). It lives here for want of any behaviour."""

    name = "custom"
    pretty_name = "Custom"
    default_release = ""
    tools_tree_distribution = "debian"
