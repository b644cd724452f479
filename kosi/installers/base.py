"""The interface between the build pipeline and a distribution's package manager.

The pipeline calls, in this order (manual: EXECUTION FLOW):

    pm = package_manager(context)             # the installer the distribution names
    pm.setup(context)                       # configuration into context.pkgmngr
    pm.sync(context)                        # repository metadata, once per build
    pm.install(context, packages)           # the first call on an empty root bootstraps it
    pm.install(context, build_packages, root=overlay)   # BuildPackages= into another root
    pm.copy_metadata_into_image(context)
    pm.remove(context, remove_packages)
    pm.clean_metadata(context)
    pm.normalise_for_reproducibility(context)

`wrappers(context)` gives the commands scripts find in $PATH (apt, dpkg, mkosi-install, ...):
each is an argv the pipeline writes into a small shell script that appends "$@".
"""

from __future__ import annotations

import fcntl
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Sequence, TypeVar

from kosi import log
from kosi.discovery import import_modules
from kosi.errors import KosiError
from kosi.installers.repository import remove_path
from kosi.sandbox import last_error_line, run

if TYPE_CHECKING:
    from kosi.pipeline.context import Context

_INSTALLERS: dict[str, type[PackageManager]] = {}

#: what every distribution's package scripts stamp with the wall clock (relative to the root)
UNREPRODUCIBLE = ("var/cache/ldconfig/aux-cache", "var/lib/systemd/random-seed")

_Family = TypeVar("_Family")


def distribution_of(config: Any, family: type[_Family], tool: str) -> type[_Family]:
    """The class of Distribution=, which must belong to `family` (the distributions `tool`
    installs); a step of one installer reached with another's distribution is a bug we name."""
    from kosi.distributions import get

    cls = get(str(config["Distribution"]))
    if not issubclass(cls, family):
        raise KosiError(f"Distribution={cls.name} does not use {tool}")
    return cls


class PackageManager:
    """One package manager (apt, dnf, ...) driven for one image. Stateless: state lives in the context.

    Subclasses register by their `name`, which a distribution's `installer` names
    (kosi/distributions/base.py): a new installer is one module in kosi/installers/.
    """

    name: ClassVar[str]
    #: the directory below the workspace holding the package manager's configuration and state
    state_name: ClassVar[str] = ""
    #: what this package manager and its scripts stamp with the wall clock (relative to the
    #: root), removed after the build with UNREPRODUCIBLE
    unreproducible: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            _INSTALLERS[cls.name] = cls

    # ---- paths and the shared package cache -------------------------------------------------

    @classmethod
    def cache_architecture(cls, config: Any) -> str:
        """The architecture as the package manager names it: the package cache is kept per
        distribution, release and this."""
        raise NotImplementedError

    @classmethod
    def cache_dir(cls, context: "Context") -> Path:
        """<package cache>/<distribution>~<release>~<architecture>: metadata and packages, kept
        across builds."""
        from kosi.distributions import get

        config = context.config
        dist: Any = get(str(config["Distribution"]))  # every family has release()
        return context.package_cache / f"{dist.name}~{dist.release(config)}~{cls.cache_architecture(config)}"

    @classmethod
    def state_dir(cls, context: "Context") -> Path:
        """The package manager's configuration and state for this build, never in the image."""
        return context.workspace / (cls.state_name or cls.name)

    @contextmanager
    def cache_lock(self, context: "Context") -> Iterator[None]:
        """Builds sharing the package cache take turns rather than corrupt each other's downloads."""
        with open(self.cache_dir(context) / "kosi.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def metadata_from_cache(self, context: "Context", present: bool) -> bool:
        """True when CacheOnly=always/metadata forbids syncing: the cache must then hold
        repository metadata (`present`), or the build stops in one line saying so."""
        mode = str(context.config["CacheOnly"])
        if mode not in ("always", "metadata"):
            return False
        if not present:
            raise KosiError(
                f"CacheOnly={mode}: no repository metadata in the package cache "
                f"{self.cache_dir(context)} (build once with CacheOnly=auto first)"
            )
        return True

    def environment(self, context: "Context") -> dict[str, str]:
        return environment(context)

    def run_locked(
        self,
        context: "Context",
        cmd: Sequence[str],
        *,
        sandbox: list[str],
        what: str,
        downloads: str,
        ok: Sequence[int] = (0,),
        failed: str | None = None,
    ) -> str:
        """Run the package manager under the package cache's lock; its output (stdout and
        stderr), or one line (explain_failure) when it exits with a status not in `ok` or says
        `failed`. Counts the packages it downloaded by the lines matching `downloads`."""
        start = time.monotonic()
        with self.cache_lock(context):
            result = run(
                cmd, sandbox=sandbox, env=self.environment(context), stdout=-1, stderr=-1, check=False, input=""
            )
        log.debug(f"{what}: {time.monotonic() - start:.1f}s")
        output = f"{result.stdout or ''}\n{result.stderr or ''}"
        if log.DEBUG:
            log.debug(output.rstrip())
        if result.returncode not in ok or (failed and failed in output):
            raise KosiError(self.explain_failure(context, what, output, returncode=result.returncode))
        context.state.installer.downloaded += len(re.findall(downloads, output, re.MULTILINE))
        return output

    def explain_failure(self, context: "Context", what: str, output: str, *, returncode: int | None = None) -> str:
        """The package manager's output reduced to the one line a user needs."""
        status = f" with exit status {returncode}" if returncode is not None else ""
        return f"{what} failed{status}: {last_error_line(output) or 'no output'}"

    def env_command(self, context: "Context") -> list[str]:
        """`env` with the package manager's environment, for the wrappers scripts call."""
        return ["env", *(f"{k}={v}" for k, v in self.environment(context).items())]

    # ---- the steps ---------------------------------------------------------------------------

    def setup(self, context: "Context") -> None:
        """Write the package manager's configuration into context.pkgmngr."""
        raise NotImplementedError

    def sync(self, context: "Context", force: bool = False) -> None:
        """Update repository metadata (at most once per build unless force)."""
        raise NotImplementedError

    def install(
        self, context: "Context", packages: Sequence[str], *, root: Path | None = None, apivfs: bool = True
    ) -> None:
        """Install packages into root (default: context.root), bootstrapping an empty root first."""
        raise NotImplementedError

    def remove(self, context: "Context", packages: Sequence[str]) -> None:
        raise NotImplementedError

    def copy_metadata_into_image(self, context: "Context") -> None:
        """Leave a snapshot of the repository metadata in the image, so it can install packages itself."""
        raise NotImplementedError

    def clean_metadata(self, context: "Context") -> None:
        """CleanPackageMetadata=: remove package databases and repository metadata from the image."""
        raise NotImplementedError

    def normalise_for_reproducibility(self, context: "Context") -> None:
        """Remove or normalise what package scripts stamped with the wall clock."""
        for sub in (*UNREPRODUCIBLE, *self.unreproducible):
            remove_path(context.root / sub)

    def wrappers(self, context: "Context") -> dict[str, list[str]]:
        """Commands acting on the image, by the name scripts call them with."""
        raise NotImplementedError

    @classmethod
    def check_available(cls, config) -> None:
        """Refuse in one line, before the build starts, when the package manager cannot run at all."""

    def sources(self, config) -> list[str]:
        """Where packages come from, one line per repository (for `kosi plan`)."""
        return []

    def first_packages(self, config) -> tuple[str, ...]:
        """What an empty root gets first, as mkosi 27.1 installs it: the distribution's base
        layout and release package (Debian: its essential set). Also shown by `kosi plan`."""
        return ()

    def latest_snapshot(self, context_or_config) -> str:
        raise KosiError(f"{self.name} has no snapshot support")


def environment(context: "Context") -> dict[str, str]:
    """What every package manager runs with: the locale, the build's SOURCE_DATE_EPOCH and
    proxy, no kernel-install from package scripts, and Environment= on top."""
    import os

    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "LC_ALL": "C.UTF-8",
        "HOME": "/",  # the caller's home is not in the sandbox
        "KERNEL_INSTALL_BYPASS": "1",
    }
    config = context.config
    epoch = config["SourceDateEpoch"] or os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None:
        env["SOURCE_DATE_EPOCH"] = str(epoch)
    from kosi.scripts.environment import proxy_environment

    env.update(proxy_environment(config))
    for assignments in config["Environment"] or ():
        env.update({str(k): str(v) for k, v in assignments.items()})
    return env


def package_manager(context: "Context") -> PackageManager | None:
    """The installer of this image's distribution (None for Distribution=custom), once per build."""
    if not context.state.package_manager_known:
        custom = str(context.config["Distribution"]) == "custom"
        context.state.package_manager = None if custom else package_manager_for(context.config)
        context.state.package_manager_known = True
    return context.state.package_manager


def required_package_manager(context: "Context") -> PackageManager:
    """The installer of a step that runs only with one (its skip() said "no package manager"
    otherwise)."""
    manager = package_manager(context)
    if manager is None:
        raise KosiError(f"Distribution={context.config['Distribution']} has no package manager")
    return manager


def package_manager_for(config) -> PackageManager:
    """The installer the configuration's distribution names; one line if kosi cannot build it yet."""
    from kosi import distributions

    distribution = distributions.require_installer(str(config["Distribution"]))
    assert distribution.installer is not None
    return installer(distribution.installer)()


def installer(name: str) -> type[PackageManager]:
    """The installer called `name`: importing each module of kosi/installers/ registers them."""
    import_modules("kosi.installers")
    try:
        return _INSTALLERS[name]
    except KeyError:
        raise KosiError(f"kosi has no installer called {name}") from None
