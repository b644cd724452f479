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
from kosi.distributions.host import host_distribution, read_os_release
from kosi.outputs import format as formats

if TYPE_CHECKING:
    from kosi.config.model import Config


def text(value: Any) -> str:
    """A setting's value as the word it was configured with."""
    return "" if value is None else str(getattr(value, "value", value))


# ---- [Distribution] -----------------------------------------------------------------------


def distribution(config: "Config") -> str:
    return host_distribution()[0]


def release(config: "Config") -> str:
    # As mkosi 27.1: the host's release when the host runs the image's distribution, else a
    # recent release of the distribution (Debian: testing).
    name = text(config["Distribution"])
    host, host_release = host_distribution()
    if host == name and host_release:
        return host_release
    try:
        distribution = distributions.get(name)
    except KeyError:
        return ""
    return distribution.image_default_release or distribution.default_release


def architecture(config: "Config") -> str:
    return architectures.host()


def mirror(config: "Config") -> str | None:
    try:
        mirrors = distributions.get(text(config["Distribution"])).mirrors
    except KeyError:
        return None
    return mirrors.get(text(config["Architecture"])) or mirrors.get("*")


def repository_key_fetch(config: "Config") -> bool:
    # As mkosi 27.1: Ubuntu does not package the other distributions' keys, so they are fetched
    # when the tools come from Ubuntu (the host's, a default tools tree's or a given tree's
    # os-release) and the image is neither of the apt family nor custom.
    if text(config["Distribution"]) in ("debian", "ubuntu", "kali", "custom"):
        return False
    tree = config["ToolsTree"]
    if tree is None:
        tools = host_distribution()[0]
    elif text(tree) in ("default", "yes"):
        tools = text(config["ToolsTreeDistribution"])
    else:
        tools = read_os_release(Path(tree)).get("ID", "")
    return tools == "ubuntu"


# ---- [Output] -----------------------------------------------------------------------------


def output(config: "Config") -> str:
    name = config.image if config.image not in ("main", "tools") else (config["ImageId"] or "image")
    version = config["ImageVersion"]
    return f"{name}_{version}" if version else str(name)


def output_extension(config: "Config") -> str:
    # mkosi prints an empty extension for formats without one (directory, oci, none)
    try:
        return formats.get(text(config["Format"])).extension or ""
    except KeyError:
        return ""


def compress_output(config: "Config") -> str:
    try:
        fmt = formats.get(text(config["Format"]))
    except KeyError:
        return "none"
    if not fmt.compressed:
        return "none"
    if fmt.compressor:
        return fmt.compressor
    try:
        distribution = distributions.get(text(config["Distribution"]))
    except KeyError:
        return "zstd"
    return distribution.default_compression(text(config["Release"]))


def seed(config: "Config") -> str:
    return random_seed()


@functools.lru_cache(maxsize=1)
def random_seed() -> str:
    """One random seed per run, shared by every image (as mkosi, which draws it once)."""
    import uuid

    return str(uuid.uuid4())


# ---- [Validation] -------------------------------------------------------------------------


def checksum(config: "Config") -> bool:
    return bool(config["Sign"])  # signing SHA256SUMS needs SHA256SUMS


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


def build_sources(config: "Config") -> list:
    from kosi.config.values import Tree

    return [Tree(Path(config.directory), None)]


#: Where hosts keep their bundle of CA certificates, the first that exists is the default.
CA_BUNDLES = (
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
)


def proxy_peer_certificate(config: "Config") -> Path | None:
    return next((Path(p) for p in CA_BUNDLES if Path(p).exists()), None)


# ---- [Runtime] ----------------------------------------------------------------------------


def machine(config: "Config") -> str:
    return Path(config.directory).name
