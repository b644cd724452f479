"""What the build steps of one image share: its config, workspace, the directories in it, and
the facts earlier steps hand to later ones (`BuildState`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kosi.config.cli_args import Args
from kosi.config.model import Config


@dataclass
class InstallerState:
    """What the package manager backend (apt, dnf, ...) remembers between its calls in one build."""

    synced: bool = False  # repository metadata is up to date (synced at most once per build)
    local_fingerprint: str | None = None  # contents of the local repository when it was indexed
    local_synced: bool = False  # the local repository's metadata was synced
    lists_copied: bool = False  # the synced metadata was copied into the image
    downloaded: int = 0  # packages fetched from the network in this build
    essential_reused: bool | None = None  # the cached essential set was reused (None: not bootstrapped)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase, for --debug and benchmarks
    keyring_ready: bool = False  # the private keyring (pacman's GPGDir) is set up
    rpm_backend: str | None = None  # the rpm database backend the image gets (zypper: ndb or sqlite)
    #: the installed packages, recorded before CleanPackageMetadata= removed the database (for the manifest)
    manifest: list[dict[str, Any]] | None = None


@dataclass
class BuildState:
    """Facts a step hands to later steps of the same build. Every field has one writer
    (named in its comment); readers treat the default as "that step did not run"."""

    #: the Incremental= cached image is used for this build (runner; $CACHED for scripts)
    cached: bool = False
    #: key of the Incremental= cache this build reads or writes (runner), None without Incremental=
    cache_key: str | None = None
    #: build scripts run now, so $BUILDROOT is the build overlay (scripts.PrepareBuild/BuildScripts)
    build_phase: bool = False
    #: the throwaway copy of the root holding BuildPackages= (packages.InstallBuildPackages)
    build_root: Path | None = None
    #: the package manager backend, once looked up (installers.base.package_manager); a
    #: kosi.installers.base.PackageManager, typed Any so this module imports no installer
    package_manager: Any = None
    package_manager_known: bool = False
    installer: InstallerState = field(default_factory=InstallerState)
    #: kernel versions installed in the image (boot.InstallBootloader / KernelModules)
    kernels: list[str] = field(default_factory=list)
    #: the UKIs built for the image (boot.GenerateUKIs)
    ukis: list[Path] = field(default_factory=list)
    #: split artifacts of a Type 1 / split-UKI build (boot.GenerateUKIs)
    split_kernel: Path | None = None
    split_initrd: Path | None = None
    split_modules_initrd: Path | None = None
    #: the repart.d directories systemd-repart used (outputs.disk.run_repart)
    repart_definitions: list[Path] = field(default_factory=list)
    #: systemd-repart's JSON partition table of the written image (outputs.disk.run_repart)
    partitions: list[dict[str, Any]] = field(default_factory=list)
    #: the disk image file systemd-repart wrote (split partitions are named after it)
    repart_image: Path | None = None
    #: roothash=/usrhash= of a disk whose root or /usr has verity (outputs.disk.write_disk)
    verity_hash: str | None = None


@dataclass
class Context:
    """State of building one image.

    Everything under `workspace` is temporary and removed when the build ends
    (kept with --debug-workspace); outputs are written to `staging` and moved into the
    output directory only when every step succeeded.
    """

    config: Config
    workspace: Path
    package_cache: Path  # the package manager's download cache (PackageCacheDirectory=)
    tools: Path | None = None  # root of the tools tree, None to use the host's /usr
    args: Args = field(default_factory=Args)  # the parsed command line
    state: BuildState = field(default_factory=BuildState)
    #: builds a helper image (the default initrd) as a directory tree: (config, destination, args).
    #: The build verb passes kosi.verbs.build.build_tree, so the steps need not import the verb
    #: that runs them; None where nothing is built (plan).
    build_tree: Callable[..., None] | None = None

    @property
    def root(self) -> Path:
        """The image's root directory while it is built."""
        return self.workspace / "root"

    @property
    def staging(self) -> Path:
        """Outputs before they are moved into OutputDirectory=."""
        return self.workspace / "staging"

    @property
    def pkgmngr(self) -> Path:
        """Sandbox trees and package manager configuration (etc/apt, keyrings, ...)."""
        return self.workspace / "pkgmngr"

    @property
    def repository(self) -> Path:
        """The local package repository ($PACKAGEDIR): PackageDirectories= and build script output."""
        return self.workspace / "packages"

    @property
    def artifacts(self) -> Path:
        """$ARTIFACTDIR: build artifacts handed between steps and images."""
        return self.workspace / "artifacts"
