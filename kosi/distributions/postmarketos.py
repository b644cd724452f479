"""postmarketOS: its apk repositories, on top of Alpine Linux's (as mkosi 27.1 writes them).

    <Alpine mirror>/<alpine branch>/main        Alpine's main and community repositories (and
    <Alpine mirror>/<alpine branch>/community   testing, on edge) from the Alpine release the
    <Alpine mirror>/edge/testing                postmarketOS release is built on
    <postmarketOS mirror>/extra-repos/systemd/<branch>   postmarketOS's systemd builds
    <postmarketOS mirror>/<branch>              postmarketOS (main for edge, vYY.MM for a release)

Mirror= replaces the postmarketOS mirror (the Alpine one stays the CDN); LocalMirror= is one
repository holding everything. Installing is kosi/installers/apk.py's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from kosi.config.model import Config
from kosi.distributions.base import Distribution
from kosi.errors import KosiError

#: kosi's Architecture= names -> apk's
APK_ARCHITECTURES = {"x86-64": "x86_64", "arm64": "aarch64", "arm": "armv7", "x86": "x86", "riscv64": "riscv64"}
#: postmarketOS releases and the Alpine release each is built on
ALPINE_BRANCHES = {"edge": "edge", "v24.06": "v3.20", "v24.12": "v3.21", "v25.06": "v3.22", "v25.12": "v3.23"}
ALPINE_MIRROR = "https://dl-cdn.alpinelinux.org/alpine"


@dataclass(frozen=True)
class ApkRepository:
    name: str
    url: str


def apk_architecture(config: Config) -> str:
    try:
        return APK_ARCHITECTURES[config.architecture]
    except KeyError:
        raise KosiError(
            f"Architecture={config.architecture} is not supported by postmarketOS "
            f"(supported: {', '.join(APK_ARCHITECTURES)})"
        ) from None


class PostmarketOS(Distribution):
    name = "postmarketos"
    pretty_name = "postmarketOS"
    default_release = "edge"
    package_manager = "apk"
    installer = "apk"
    tools_tree_distribution = "postmarketos"
    mirrors = {"*": "https://mirror.postmarketos.org/postmarketos"}
    #: where apk-tools' keys are looked for (alpine-keys and postmarketos-keys install them there)
    keys_directory: ClassVar[str] = "/etc/apk/keys"
    initrd_packages = ("bash", "cryptsetup-libs", "device-mapper", "gzip", "kbd", "less", "libfdisk", "libseccomp",
                       "systemd", "udev", "util-linux", "util-linux-login")  # fmt: skip

    @classmethod
    def release(cls, config: Config) -> str:
        return config.release or cls.default_release

    @classmethod
    def branches(cls, config: Config) -> tuple[str, str]:
        release = cls.release(config)
        if release not in ALPINE_BRANCHES:
            known = ", ".join(ALPINE_BRANCHES)
            if not re.fullmatch(r"v\d\d\.\d\d", release):
                raise KosiError(f"Release={release}: postmarketOS releases are edge or vYY.MM ({known})")
            raise KosiError(f"Release={release}: kosi does not know which Alpine release it is built on ({known})")
        return ("main" if release == "edge" else release), ALPINE_BRANCHES[release]  # pmaports' branch

    @classmethod
    def repositories(cls, config: Config, *, local: bool = True) -> list[ApkRepository]:
        if config.snapshot:
            raise KosiError("Snapshot=: postmarketOS has no snapshots")
        if local and config.local_mirror:
            return [ApkRepository("local-mirror", config.local_mirror.rstrip("/"))]
        pmos, alpine = cls.branches(config)
        mirror = (config.mirror or cls.default_mirror(config.architecture) or "").rstrip("/")
        names = ("main", "community", "testing") if alpine == "edge" else ("main", "community")
        repos = [ApkRepository(f"alpine-{name}", f"{ALPINE_MIRROR}/{alpine}/{name}") for name in names]
        repos += [
            ApkRepository("postmarketos-systemd", f"{mirror}/extra-repos/systemd/{pmos}"),
            ApkRepository("postmarketos", f"{mirror}/{pmos}"),
        ]
        return repos
