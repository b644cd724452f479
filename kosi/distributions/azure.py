"""Azure Linux: Microsoft's repositories (production, and preview ones defined but disabled)."""

from __future__ import annotations

from kosi.config.model import Config
from kosi.distributions.rpm import RpmDistribution, RpmKey, RpmRepository, join

REPOSITORIES = ("base", "extended", "ms-oss", "ms-non-oss", "cloud-native", "nvidia")
#: the repositories with debug information and with source packages
DEBUGINFO = ("base", "cloud-native", "extended")
SOURCES = ("base", "cloud-native", "extended", "ms-oss")


class Azure(RpmDistribution):
    name = "azure"
    initrd_packages = (
        "bash", "btrfs-progs", "cryptsetup-libs", "dosfstools", "e2fsprogs", "gzip", "less", "libfdisk",
        "libseccomp", "procps-ng", "systemd", "tpm2-tss", "udev", "util-linux", "xfsprogs",
    )  # fmt: skip
    pretty_name = "Azure Linux"
    default_release = "3.0"
    mirrors = {"*": "https://packages.microsoft.com/"}
    tools_tree_distribution = "fedora"
    os_release_ids = ("azurelinux",)
    kernel_packages = ("kernel",)
    bootstrap_packages = ("filesystem", "azurelinux-release")

    @classmethod
    def keys(cls, config: Config) -> tuple[RpmKey, ...]:
        return (RpmKey("MICROSOFT-RPM-GPG-KEY", "azure-linux"),)

    @classmethod
    def repositories(cls, config: Config, *, local: bool = True) -> list[RpmRepository]:
        keys = cls.keys(config)
        if local and config.local_mirror:
            return cls.local_mirror_repositories(config, keys)
        # Mirror= is a copy of .../azurelinux; without it, Microsoft's own.
        mirror = cls.mirror(config) or join(cls.mirrors["*"], "azurelinux")
        release = cls.release(config)
        repos = []
        for name in REPOSITORIES:
            for channel, suffix in (("prod", ""), ("preview", "-preview")):
                # the preview channel spells NVIDIA in capitals
                directory = name.upper() if channel == "preview" and name == "nvidia" else name
                base = join(mirror, f"{release}/{channel}/{directory}")
                repo_id = f"{directory}{suffix}"
                repos.append(
                    RpmRepository(
                        repo_id, f"baseurl={base}/$basearch", keys, channel == "prod" or cls.wanted(config, repo_id)
                    )
                )
                if name in DEBUGINFO:
                    repos.append(
                        RpmRepository(
                            f"{repo_id}-debuginfo",
                            f"baseurl={base}/debuginfo/$basearch",
                            keys,
                            cls.wanted(config, f"{repo_id}-debuginfo"),
                        )
                    )
                if name in SOURCES and channel == "prod":
                    repos.append(
                        RpmRepository(
                            f"{name}-source", f"baseurl={base}/srpms", keys, cls.wanted(config, f"{name}-source")
                        )
                    )
        return repos
