"""Registry of distributions, by their Distribution= name."""

from __future__ import annotations

from kosi.distributions.base import Distribution


def _make(name: str, pretty: str, release: str, *, pm: str | None, fs: str = "ext4",
          mirrors: dict[str, str] | None = None, tools: str | None = None) -> type[Distribution]:
    attrs = dict(name=name, pretty_name=pretty, default_release=release, package_manager=pm,
                 filesystem=fs, mirrors=mirrors or {}, tools_tree_distribution=tools or name)
    return type(pretty.replace(" ", ""), (Distribution,), attrs)


# Distributions whose behaviour kosi implements get their own module and class that
# replaces the plain data entry below (see debian.py).
_DISTRIBUTIONS: dict[str, type[Distribution]] = {
    d.name: d
    for d in (
        _make("debian", "Debian", "trixie", pm="apt", mirrors={"*": "http://deb.debian.org"}),
        _make("kali", "Kali Linux", "kali-rolling", pm="apt", mirrors={"*": "http://http.kali.org/kali"}),
        _make("ubuntu", "Ubuntu", "noble", pm="apt", tools="debian",
              mirrors={"x86-64": "http://archive.ubuntu.com", "x86": "http://archive.ubuntu.com", "*": "http://ports.ubuntu.com"}),
        _make("fedora", "Fedora Linux", "43", pm="dnf", fs="btrfs", mirrors={"*": "https://mirrors.fedoraproject.org"}),
        _make("centos", "CentOS", "10", pm="dnf", fs="xfs", tools="fedora", mirrors={"*": "https://mirrors.centos.org"}),
        _make("rhel", "RHEL", "10", pm="dnf", fs="xfs", tools="fedora"),
        _make("rhel-ubi", "RHEL UBI", "10", pm="dnf", fs="xfs", tools="fedora", mirrors={"*": "https://cdn-ubi.redhat.com"}),
        _make("alma", "AlmaLinux", "10", pm="dnf", fs="xfs", tools="fedora", mirrors={"*": "https://mirrors.almalinux.org"}),
        _make("rocky", "Rocky Linux", "10", pm="dnf", fs="xfs", tools="fedora", mirrors={"*": "https://mirrors.rockylinux.org"}),
        _make("mageia", "Mageia", "cauldron", pm="dnf", mirrors={"*": "https://www.mageia.org"}),
        _make("openmandriva", "OpenMandriva", "cooker", pm="dnf", mirrors={"*": "http://mirrors.openmandriva.org"}),
        _make("azure", "Azure Linux", "3.0", pm="dnf", tools="fedora", mirrors={"*": "https://packages.microsoft.com/"}),
        _make("arch", "Arch Linux", "rolling", pm="pacman",
              mirrors={"x86-64": "https://fastly.mirror.pkgbuild.com", "*": "http://mirror.archlinuxarm.org"}),
        _make("opensuse", "openSUSE", "tumbleweed", pm="zypper", fs="btrfs", mirrors={"*": "http://download.opensuse.org"}),
        _make("postmarketos", "postmarketOS", "edge", pm="apk"),
        _make("custom", "Custom", "", pm=None, tools="debian"),
    )
}


def register(cls: type[Distribution]) -> type[Distribution]:
    _DISTRIBUTIONS[cls.name] = cls
    return cls


def get(name: str) -> type[Distribution]:
    # Modules with behaviour register themselves on import.
    for module in ("debian", "arch"):
        try:
            __import__(f"kosi.distributions.{module}")
        except ModuleNotFoundError as e:
            if e.name != f"kosi.distributions.{module}":
                raise
    return _DISTRIBUTIONS[name]


def names() -> list[str]:
    return list(_DISTRIBUTIONS)
