"""dnf backend: Fedora, CentOS Stream, the RHEL family, Azure Linux, Mageia and OpenMandriva.

dnf5 when the tools tree (or the host) has it, dnf 4 otherwise; $MKOSI_DNF names another
executable. Layout while building:

    <workspace>/dnf/dnf.conf, repos/, vars/   dnf's configuration (--config, reposdir, varsdir):
                                              our .repo file, or the sandbox trees' yum.repos.d
    <workspace>/dnf/persist, log/             dnf's state and logs, never in the image
    <pkgmngr>/etc/rpm                         rpm macros (the image's %_dbpath), /etc/rpm in the sandbox
    <package cache>/<dist>~<release>~<arch>/  dnf's cachedir: repository metadata and packages,
                                              kept across builds (keepcache)
    <root>/<%_dbpath>                         the image's rpm database

Metadata: `dnf makecache` once per build (what has not expired is not downloaded again),
then every later command runs with metadata_expire=never, so a build downloads metadata at
most once and a warm build downloads nothing. CacheOnly=always/metadata never sync.
Package signatures are always checked (gpgcheck) unless RepositoryKeyCheck=no, on any host.
"""

from __future__ import annotations

import os
import platform
import re
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kosi import log
from kosi.architecture import ARCHITECTURES
from kosi.config.model import Config
from kosi.config.values import Feature
from kosi.distributions import get as get_distribution
from kosi.distributions.rpm import RpmDistribution, RpmRepository
from kosi.errors import KosiError
from kosi.installers import repository as local_repository
from kosi.installers import rpm
from kosi.installers.base import PackageManager, distribution_of
from kosi.installers.base import environment as common_environment
from kosi.sandbox import extra_search_paths, run

if TYPE_CHECKING:
    from kosi.pipeline.context import Context

#: what package scripts write with the wall clock in it (relative to the root)
UNREPRODUCIBLE = (
    "var/log/dnf.log",
    "var/log/dnf.librepo.log",
    "var/log/dnf.rpm.log",
    "var/log/hawkey.log",
    "var/log/dnf5.log",
    "var/lib/dnf/history.sqlite",
    "var/lib/dnf/history.sqlite-shm",
    "var/lib/dnf/history.sqlite-wal",
    "usr/lib/sysimage/libdnf5/transaction_history.sqlite",
    "usr/lib/sysimage/libdnf5/transaction_history.sqlite-shm",
    "usr/lib/sysimage/libdnf5/transaction_history.sqlite-wal",
)


#: directories of an image root that stay even when they are empty
FILE_SYSTEM_HIERARCHY = frozenset(
    {
        "var",
        "var/cache",
        "var/tmp",
        "var/lib",
        "var/log",
        "tmp",
        "usr",
        "etc",
        "home",
        "root",
        "srv",
        "opt",
        "mnt",
        "run",
    }
)


def distribution(config: Config) -> type[RpmDistribution]:
    return distribution_of(config, RpmDistribution, "dnf")


def expand(config: Config, url: str) -> str:
    """A repository URL with dnf's variables ($releasever, $basearch, $stream) filled in."""
    dist = distribution(config)
    values = {"releasever": dist.release(config), "basearch": dist.basearch(config), **dist.dnf_variables(config)}
    return re.sub(r"\$(\w+)", lambda m: values.get(m.group(1), m.group(0)), url)


def executable(tools: Path | None) -> str:
    """$MKOSI_DNF, else dnf5 when ExtraSearchPaths= or the sandbox's /usr has it (or its dnf is
    dnf5), else dnf."""
    chosen = os.environ.get("MKOSI_DNF")
    if chosen:
        return chosen
    for directory in extra_search_paths():  # first in the sandbox's $PATH, as in mkosi
        for name in ("dnf5", "dnf"):
            path = Path(directory) / name
            if path.is_file() and os.access(path, os.X_OK):
                return "dnf5" if Path(os.path.realpath(path)).name == "dnf5" else name
    base = Path(tools) if tools else Path("/")
    for name in ("dnf5", "dnf"):
        path = base / "usr/bin" / name
        if path.exists():
            return "dnf5" if Path(os.path.realpath(path)).name == "dnf5" else name
    return "dnf"


def is_dnf5(command: str) -> bool:
    return Path(command).name.startswith("dnf5")


class Dnf(PackageManager):
    name = "dnf"
    unreproducible = UNREPRODUCIBLE

    def sources(self, config: Config) -> list[str]:
        dist = distribution(config)
        return [
            f"[{r.id}] {expand(config, r.location)}"
            for r in dist.repositories(config)
            if r.enabled or dist.wanted(config, r.id)
        ]

    def first_packages(self, config: Config) -> tuple[str, ...]:
        return distribution(config).bootstrap_packages

    @classmethod
    def check_available(cls, config: Config) -> None:
        dist = distribution(config)
        if config.snapshot and not dist.snapshot_service:
            raise KosiError(
                f"Snapshot={config.snapshot}: {dist.pretty_name} has no snapshots "
                "(only Fedora and CentOS Stream composes, as in mkosi 27.1)"
            )

    def latest_snapshot(self, config: Config) -> str:
        """The newest compose's id without its prefix (Fedora-42-20250101.0: 20250101.0), from
        the snapshot service (or the copy Mirror= names) as `kosi latest-snapshot` prints it."""
        import configparser

        dist = distribution(config)
        if not dist.snapshot_service:
            raise KosiError(f"{dist.pretty_name} has no snapshots")
        url = dist.latest_snapshot_url(config)
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                text = response.read().decode().strip()
        except (OSError, UnicodeDecodeError) as e:
            raise KosiError(f"cannot read the latest snapshot from {url}: {e}") from None
        compose = text
        if text.startswith("["):  # CentOS Stream's .composeinfo
            parser = configparser.ConfigParser()
            try:
                parser.read_string(text)
                compose = parser["compose"]["id"]
            except (configparser.Error, KeyError):
                raise KosiError(f"{url} names no compose ([compose] id=)") from None
        prefix = dist.compose_prefix(config)
        if not compose.startswith(prefix):
            raise KosiError(f"{url} names compose {compose}, not one of {prefix}*")
        return compose.removeprefix(prefix)

    @classmethod
    def cache_architecture(cls, config: Config) -> str:
        return str(config.architecture)

    # ---- setup -------------------------------------------------------------------------

    def setup(self, context: Context) -> None:
        config = context.config
        dist = distribution(config)
        state = self.state_dir(context)
        for sub in ("repos", "vars", "persist", "log", "local"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        self.cache_dir(context).mkdir(parents=True, exist_ok=True)
        rpm.write_macros(context, dist.rpm_dbpath)

        for name, value in dist.dnf_variables(config).items():
            (state / "vars" / name).write_text(value + "\n")
        user_conf = context.pkgmngr / "etc/dnf/dnf.conf"
        # dnf5 loads file lists only when told: without them a dependency on a file outside the
        # primary metadata's (/etc, */bin) cannot be resolved; dnf 4 always loads them
        ours = "[main]\noptional_metadata_types=filelists\n" if is_dnf5(executable(context.tools)) else "[main]\n"
        (state / "dnf.conf").write_text(user_conf.read_text() if user_conf.exists() else ours)

        # Repository files in the sandbox trees replace the distribution's (as in mkosi).
        user_repos = context.pkgmngr / "etc/yum.repos.d"
        if not (user_repos.is_dir() and any(user_repos.glob("*.repo"))):
            (state / "repos" / "kosi.repo").write_text(self._repo_file(context))

        local_repository.collect(context, rpm.is_rpm)
        self._index_local_repository(context)

        command = executable(context.tools)
        where = f"the tools tree {context.tools}" if context.tools else "the host"
        log.info(
            f"Using {command} ({'dnf5' if is_dnf5(command) else 'dnf 4'}) from {where}"
            + (" ($MKOSI_DNF)" if os.environ.get("MKOSI_DNF") else "")
        )

    def _repo_file(self, context: Context) -> str:
        config = context.config
        dist = distribution(config)
        check = bool(config["RepositoryKeyCheck"])
        stanzas = []
        for repo in dist.repositories(config):
            enabled = repo.enabled or dist.wanted(config, repo.id)
            keys = [key.locate(context) for key in repo.keys] if check else []
            if enabled and check and repo.keys and not all(keys):
                missing = next(key for key, url in zip(repo.keys, keys, strict=True) if url is None)
                raise KosiError(
                    f"GPG key {missing.name} for repository '{repo.id}' ({repo.location}) not found in "
                    f"{missing.where()}: install distribution-gpg-keys (ToolsTree=default has it), put it "
                    "in mkosi.sandbox/etc/pki/rpm-gpg/, or set RepositoryKeyFetch=yes or RepositoryKeyCheck=no"
                )
            stanzas.append(repo.stanza(enabled=enabled, gpgcheck=check, keys=[k for k in keys if k]))
        return "\n".join(stanzas)

    def _index_local_repository(self, context: Context) -> None:
        """(Re-)index $PACKAGEDIR when it has packages not indexed yet (build scripts add some)."""

        def index() -> None:
            rpm.index(context.repository, context.tools)
            (self.state_dir(context) / "local" / "kosi-local.repo").write_text(rpm.stanza(context.repository))

        local_repository.reindex(context, rpm.is_rpm, index)

    # ---- running dnf -------------------------------------------------------------------

    def environment(self, context: Context) -> dict[str, str]:
        return {**common_environment(context), "SYSTEMD_OFFLINE": "1"}

    def reposdirs(self, context: Context) -> list[Path]:
        state = self.state_dir(context)
        user_repos = context.pkgmngr / "etc/yum.repos.d"
        ours = user_repos if user_repos.is_dir() and any(user_repos.glob("*.repo")) else state / "repos"
        return [ours, state / "local"]

    def options(self, context: Context, root: Path, *, expire: bool = False) -> list[str]:
        """dnf's command line up to the subcommand, for one image root."""
        config = context.config
        dist = distribution(config)
        state = self.state_dir(context)
        command = executable(context.tools)
        options = [
            command,
            "--assumeyes",
            f"--installroot={root}",
            f"--config={state / 'dnf.conf'}",
            f"--releasever={dist.release(config)}",
            f"--setopt=reposdir={','.join(map(str, self.reposdirs(context)))}",
            f"--setopt=varsdir={state / 'vars'}",
            f"--setopt=cachedir={self.cache_dir(context)}",
            f"--setopt=persistdir={state / 'persist'}",
            "--setopt=keepcache=1",
            "--setopt=skip_if_unavailable=0",
            f"--setopt=install_weak_deps={int(bool(config['WithRecommends']))}",
        ]
        # dnf 4 writes dnf.log below the installroot (hawkey.log not): see _no_stray_paths
        options.append(f"--setopt=logdir={state / 'log'}")
        options += ["--setopt=check_config_file_age=0", "--best"]
        if is_dnf5(command):
            # dnf5 reads its configuration from the installroot unless told otherwise (as mkosi does)
            options += ["--use-host-config", f"--setopt=system_cachedir={self.cache_dir(context)}"]
        if not config["WithDocs"]:
            options.append("--setopt=tsflags=nodocs")
        if not expire:  # after the one sync of the build: never look at the mirror for metadata again
            options.append("--setopt=metadata_expire=never")
            if is_dnf5(command) and str(config["CacheOnly"]) != "always":
                options.append("--setopt=cacheonly=metadata")  # as mkosi 27.1 (dnf5 only)
        if str(config["CacheOnly"]) == "always":
            options.append("--cacheonly")
        basearch = dist.basearch(config)
        if ARCHITECTURES[config.architecture].kernel != platform.machine():
            options.append(f"--forcearch={basearch}")
        proxy = config["ProxyUrl"]
        if proxy:
            options.append(f"--setopt=proxy={proxy}")
        return options

    def dnf(
        self,
        context: Context,
        args: Sequence[str],
        *,
        root: Path | None = None,
        apivfs: bool = True,
        expire: bool = False,
        what: str = "dnf",
    ) -> str:
        root = Path(root or context.root)
        state = self.state_dir(context)
        cmd = [*self.options(context, root, expire=expire), *args]
        with self.cache_lock(context), _no_stray_paths(root, self.cache_dir(context), state):
            result = run(
                cmd,
                sandbox=rpm.sandbox(context, root, apivfs=apivfs),
                env=self.environment(context),
                stdout=-1,
                tee_stderr=True,
                check=False,
                input="",
            )
        if log.DEBUG and result.stdout:
            log.debug(result.stdout.rstrip())
        if result.returncode != 0:
            raise KosiError(self.explain_failure(context, what, f"{result.stdout}\n{result.stderr}", result.returncode))
        return result.stdout

    def explain_failure(self, context: Context, what: str, output: str, returncode: int | None = None) -> str:
        """dnf's output reduced to the one line a user needs."""
        config = context.config
        dist = distribution(config)
        where = f"{dist.name} {dist.release(config)}"
        lines = output.splitlines()
        for line in lines:
            m = re.search(r"(?:No match for argument|Unable to find a match):\s*(\S+)", line)
            if m:
                return f"package '{m.group(1)}' not found in the repositories of {where}"
        for line in lines:
            m = re.search(r"No package (\S+) available", line)
            if m:
                return f"package '{m.group(1)}' not found in the repositories of {where}"
        repos = {r.id: r for r in dist.repositories(config)}
        for line in lines:  # dnf5
            m = re.search(r'OpenPGP check for package "([^"]+)" .* from repo "([^"]+)" has failed: (.*)', line)
            if m and m.group(2) in repos:
                keys = " ".join((k.locate(context) or k.name).removeprefix("file://") for k in repos[m.group(2)].keys)
                keys = keys.replace(str(context.pkgmngr), "(sandbox tree) ")
                return (
                    f"signature check failed: package {m.group(1)} is not signed by the configured key {keys} "
                    f"({m.group(3).strip()}; RepositoryKeyCheck=no skips the check)"
                )
        for index, line in enumerate(lines):
            m = re.search(
                r"(?:Public key for|Package) (\S+?)(?:\.rpm)? (?:is not installed|is not signed)", line
            ) or re.search(r"(\S+?)\.rpm: (?:Signature|signature).*(?:BAD|NOKEY|not OK)", line)
            # dnf 4 when the repository's key is already in the image (a transaction before)
            m = m or re.search(r"Failing package is: (\S+)", line)
            if m:
                package = m.group(1)
                keys = next(
                    (re.sub(r".*configured as:\s*", "", l).strip() for l in lines[index:] if "configured as" in l), ""
                )
                keys = keys or next((l.split("file://", 1)[-1] for l in lines[index:] if "file://" in l), "")
                keys = keys.replace(f"file://{context.pkgmngr}", "(sandbox tree) ").replace("file://", "")
                signed = "is not signed" if "is not signed" in line else "is not signed by the configured key"
                return (
                    f"signature check failed: package {package} {signed} {keys.strip()}".rstrip()
                    + " (RepositoryKeyCheck=no skips the check)"
                )
        for line in lines:
            m = re.search(r"GPG key at (\S+) .*(?:failed|not correct|Couldn't)", line) or re.search(
                r"Couldn't open file (\S+)", line
            )
            if m:
                return f"cannot read GPG key {m.group(1).removeprefix('file://')}"
        for line in lines:
            # dnf 4: Failed to download metadata for repo 'x'; dnf5: ... (baseurl: "...") for repository "x"
            m = re.search(
                r"Failed to download metadata (?:\([^)]*\) )?for repo(?:sitory)? ['\"]([^'\"]+)['\"]", line
            ) or re.search(r"Errors during downloading metadata for repository ['\"]([^'\"]+)['\"]", line)
            if m:
                repo = repos.get(m.group(1))
                location = expand(config, repo.location) if repo else m.group(1)
                reason = next(
                    (re.sub(r"^\s*-\s*", "", l).strip() for l in lines if "Curl error" in l or "Status code" in l), ""
                )
                # dnf 4: "Curl error (7): ... for URL [...]", dnf5: ">>> Curl error (7): ... [...] - URL"
                reason = re.sub(r"^>>>\s*|\s+-\s+\S+$", "", reason)
                reason = re.sub(r" for \S+ \[", " [", reason) if reason else probe(location, repo)
                return f"cannot fetch repository '{m.group(1)}' from {location}: {reason}"
        for line in lines:
            m = re.search(r"(nothing provides .*|package \S+ (?:requires|conflicts) .*)", line)
            if m:
                return f"cannot resolve the packages of {where}: {m.group(1).strip()}"
        for index, line in enumerate(lines):
            if line.startswith(("Error:", "error:")):
                message = line.split(":", 1)[1].strip() or next(
                    (l.strip() for l in lines[index + 1 :] if l.strip()), ""
                )
                if message:
                    return f"{what}: {message}"
        return super().explain_failure(context, what, output, returncode=returncode)

    # ---- metadata ----------------------------------------------------------------------

    def sync(self, context: Context, force: bool = False) -> None:
        if context.state.installer.synced and not force:
            return
        if self.metadata_from_cache(context, self.has_metadata(context)):
            context.state.installer.synced = True
            return
        # dnf 4's makecache asks the mirror for repomd.xml even when the cached metadata has
        # not expired; loading the repositories for a query downloads only what expired.
        command = executable(context.tools)
        args = ["makecache"] if is_dnf5(command) else ["repoquery", "--quiet", "kosi-metadata-sync"]
        # an empty root of its own: the image's stays untouched until the bootstrap installs into it
        root = self.state_dir(context) / "sync-root"
        root.mkdir(exist_ok=True)
        self.dnf(context, args, root=root, expire=True, apivfs=False, what="dnf (repository metadata)")
        context.state.installer.synced = True

    def has_metadata(self, context: Context) -> bool:
        """Whether the package cache holds repository metadata (dnf 4 and dnf5 keep it in
        <cachedir>/<repository>-<hash>/repodata/)."""
        return any(self.cache_dir(context).glob("*/repodata/repomd.xml"))

    # ---- installing --------------------------------------------------------------------

    def install(
        self, context: Context, packages: Sequence[str], *, root: Path | None = None, apivfs: bool = True
    ) -> None:
        root = Path(root or context.root)
        self.sync(context)
        self._index_local_repository(context)
        dist = distribution(context.config)
        if not (root / dist.rpm_dbpath.lstrip("/")).exists() and not context.config.base_trees:
            log.step(f"Bootstrapping {dist.pretty_name} {dist.release(context.config)}")
            # the distribution's base packages in a transaction of their own, as mkosi 27.1
            self._install(context, self.first_packages(context.config), root=root, apivfs=apivfs)
        if packages:
            self._install(context, packages, root=root, apivfs=apivfs)

    def _install(self, context: Context, packages: Sequence[str], *, root: Path, apivfs: bool) -> None:
        output = self.dnf(context, ["install", *packages], root=root, apivfs=apivfs, what="dnf install")
        downloaded = len(re.findall(r"^\(\d+/\d+\): \S+\.rpm", output, re.MULTILINE))
        context.state.installer.downloaded += downloaded

    def remove(self, context: Context, packages: Sequence[str]) -> None:
        if packages:
            self.dnf(context, ["remove", *packages], what="dnf remove")

    # ---- after installation ------------------------------------------------------------

    def copy_metadata_into_image(self, context: Context) -> None:
        """Nothing to copy: rpm distributions configure their repositories in the image with
        their own release packages (fedora-repos, centos-stream-repos, ...), and dnf in the
        image fetches metadata itself."""

    def clean_metadata(self, context: Context) -> None:
        mode = context.config["CleanPackageMetadata"]
        if mode == Feature.disabled:
            return
        root = context.root
        always = mode == Feature.enabled
        context.state.installer.manifest = self.manifest_packages(context)  # before the database goes
        if always or not any((root / f"usr/bin/{n}").exists() for n in ("dnf", "dnf5", "dnf-3", "yum")):
            for sub in (
                "var/lib/dnf",
                "var/cache/dnf",
                "var/cache/libdnf5",
                "var/lib/libdnf5",
                "usr/lib/sysimage/libdnf5",
            ):
                local_repository.remove_path(root / sub)
        if always or not (root / "usr/bin/rpm").exists():
            dbpath = distribution(context.config).rpm_dbpath.lstrip("/")
            for sub in (dbpath, "var/lib/rpm", "usr/lib/sysimage/rpm"):
                local_repository.remove_path(root / sub)

    def manifest_packages(self, context: Context) -> list[dict]:
        return rpm.query(context, context.root, distribution(context.config).rpm_dbpath)

    def wrappers(self, context: Context) -> dict[str, list[str]]:
        env = self.env_command(context)
        root = context.root
        dnf = [*env, *rpm.sandbox(context, root), *self.options(context, root)]
        dbpath = distribution(context.config).rpm_dbpath
        return {
            "dnf": dnf,
            "rpm": [*env, *rpm.sandbox(context, root), "rpm", f"--root={root}", f"--dbpath={dbpath}"],
            "mkosi-install": [*dnf, "install"],
            "mkosi-reinstall": [*dnf, "reinstall"],
            "mkosi-upgrade": [*dnf, "upgrade"],
            "mkosi-remove": [*dnf, "remove"],
        }


def probe(location: str, repo: RpmRepository | None) -> str:
    """Why repomd.xml cannot be downloaded (dnf 4 says only "All mirrors were tried")."""
    if repo is None or not repo.url.startswith("baseurl=") or not location.startswith(("http://", "https://")):
        return "download failed"
    url = f"{location.rstrip('/')}/repodata/repomd.xml"
    try:
        with urllib.request.urlopen(url, timeout=15):
            return "download failed (the mirror answers now: a transient error?)"
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code} {e.reason} for {url}"
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        return f"{getattr(reason, 'strerror', None) or reason}"


def installed_packages(context: Context) -> list[dict]:
    """The image's packages according to its rpm database (empty for other distributions)."""
    dist = get_distribution(str(context.config["Distribution"]))
    if not issubclass(dist, RpmDistribution):
        return []
    return rpm.query(context, context.root, dist.rpm_dbpath)


class _no_stray_paths:
    """dnf 4 writes some of its files (dnf.log, expired_repos.json) below the installroot even for
    directories it is told are outside: those paths are removed from the root again, with the
    parent directories that only they created."""

    def __init__(self, root: Path, *paths: Path):
        self.paths = [root / path.relative_to("/") for path in paths]
        self.existed = {
            parent
            for path in self.paths
            for parent in path.parents
            if parent.is_relative_to(root) and os.path.lexists(parent)
        }
        self.root = root

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for path in self.paths:
            local_repository.remove_path(path)
            for parent in path.parents:
                if (
                    parent in self.existed
                    or parent == self.root
                    or str(parent.relative_to(self.root)) in FILE_SYSTEM_HIERARCHY
                ):
                    break
                try:
                    parent.rmdir()
                except OSError:
                    break
