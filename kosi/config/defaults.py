"""Defaults that depend on the host or on other settings.

Each function takes the Config being resolved and is named by a setting's default_factory
in settings.py. A Config resolves an unset setting by calling its factory, so factories read
other settings through the Config (config["Distribution"]) and see their defaults too.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kosi import architecture as architectures
from kosi import distributions

if TYPE_CHECKING:
    from kosi.config.model import Config

#: os-release IDs (and ID_LIKE words) that name a distribution kosi knows by another name.
OS_RELEASE_IDS = {
    "almalinux": "alma", "rocky": "rocky", "centos": "centos", "rhel": "rhel", "fedora": "fedora",
    "debian": "debian", "ubuntu": "ubuntu", "kali": "kali", "arch": "arch", "mageia": "mageia",
    "openmandriva": "openmandriva", "azurelinux": "azure", "postmarketos": "postmarketos",
    "opensuse-tumbleweed": "opensuse", "opensuse-leap": "opensuse", "opensuse": "opensuse",
}  # fmt: skip

#: Distributions whose releases up to 8 compress with xz by default (the manual: "CentOS and
#: derivatives up to version 8").
CENTOS_FAMILY = ("centos", "alma", "rocky", "rhel", "rhel-ubi")

#: Formats whose output is compressed unless CompressOutput= says otherwise.
COMPRESSED_FORMATS = ("tar", "cpio", "uki", "esp", "oci", "addon")

#: The file extension of each format's main output; formats without one produce a directory or nothing.
OUTPUT_EXTENSIONS = {
    "disk": "raw", "esp": "raw", "sysext": "raw", "confext": "raw", "portable": "raw",
    "tar": "tar", "cpio": "cpio", "uki": "efi", "addon": "efi",
}  # fmt: skip


def read_os_release(root: Path = Path("/")) -> dict[str, str]:
    for candidate in ("etc/os-release", "usr/lib/os-release"):
        try:
            text = (root / candidate).read_text()
        except OSError:
            continue
        fields = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                fields[key.strip()] = value.strip().strip("\"'")
        return fields
    return {}


@functools.lru_cache(maxsize=1)
def host_distribution() -> tuple[str, str]:
    """(Distribution=, Release=) of the host; ("custom", "") when kosi does not support it."""
    fields = read_os_release()
    # Only ID counts: ID_LIKE alone does not make a derivative supported, its repositories differ.
    name = OS_RELEASE_IDS.get(fields.get("ID", ""))
    if name is None:
        return "custom", ""
    release = fields.get("VERSION_CODENAME") if name in ("debian", "ubuntu", "kali") else fields.get("VERSION_ID")
    if not release:
        release = distributions.get(name).default_release
    return name, release


def text(value: Any) -> str:
    """A setting's value as the word it was configured with."""
    return "" if value is None else str(getattr(value, "value", value))


# ---- [Distribution] -----------------------------------------------------------------------


def distribution(config: "Config") -> str:
    return host_distribution()[0]


def release(config: "Config") -> str:
    # Always a recent release of the distribution (Debian: the current stable), not the
    # host's: an image built on an old host should not silently become an old image.
    # [Match] Release= still compares against the host's release while unset (match.py).
    name = text(config["Distribution"])
    try:
        return distributions.get(name).default_release
    except KeyError:
        return ""


def architecture(config: "Config") -> str:
    return architectures.host()


def mirror(config: "Config") -> str | None:
    try:
        mirrors = distributions.get(text(config["Distribution"])).mirrors
    except KeyError:
        return None
    return mirrors.get(text(config["Architecture"])) or mirrors.get("*")


def repository_key_fetch(config: "Config") -> bool:
    # Ubuntu hosts rarely carry other distributions' keys, so they are fetched there.
    return host_distribution()[0] == "ubuntu" and not config["ToolsTree"]


# ---- [Output] -----------------------------------------------------------------------------


def output(config: "Config") -> str:
    name = config.image if config.image not in ("main", "tools") else (config["ImageId"] or "image")
    version = config["ImageVersion"]
    return f"{name}_{version}" if version else str(name)


def output_extension(config: "Config") -> str | None:
    return OUTPUT_EXTENSIONS.get(text(config["Format"]))


def compress_output(config: "Config") -> str:
    fmt = text(config["Format"])
    if fmt == "oci":
        return "gzip"
    if fmt not in COMPRESSED_FORMATS:
        return "none"
    if text(config["Distribution"]) in CENTOS_FAMILY:
        major = text(config["Release"]).split(".")[0]
        if major.isdigit() and int(major) <= 8:
            return "xz"
    return "zstd"


# ---- [Build] ------------------------------------------------------------------------------


def tools_tree_distribution(config: "Config") -> str:
    # The host's distribution (manual; mkosi 27.1 agrees), not the image's, except where another
    # one builds it better: Ubuntu's tools come from Debian, the RHEL family's from Fedora.
    name = host_distribution()[0]
    try:
        return distributions.get(name).tools_tree_distribution or name
    except KeyError:
        return "custom"


def tools_tree_release(config: "Config") -> str:
    try:
        return distributions.get(text(config["ToolsTreeDistribution"])).default_release
    except KeyError:
        return ""


# ---- [Runtime] ----------------------------------------------------------------------------


def max_mem(config: "Config") -> int | None:
    return config["RAM"]
