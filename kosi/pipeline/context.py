"""What the build steps of one image share: its config, workspace and the directories in it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kosi.config.model import Config


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
    args: Any = None  # the parsed command line (kosi.config.cli_args.Args)
    #: free-form facts steps hand to later steps (e.g. "cached": True, "kernels": [...])
    state: dict[str, Any] = field(default_factory=dict)

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
