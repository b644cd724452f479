"""apt backend: Debian, Ubuntu and Kali images, bootstrapped by apt and dpkg alone.

Layout while building (all absolute paths, so one configuration serves every root):

    <workspace>/apt.conf                      APT_CONFIG: where everything lives, speed options
    <pkgmngr>/etc/apt/                        Dir::Etc: sources.list.d (ours + the user's
                                              mkosi.sandbox ones), apt.conf.d, keyrings, preferences
    <package cache>/<dist>~<release>~<arch>/  archives/ (.deb files) and lists/ (metadata),
                                              kept across builds
    <root>/var/lib/dpkg, <root>/var/lib/apt   the image's own package database

Bootstrapping an empty root (no debootstrap): apt resolves and downloads the essential
set plus everything asked for in one go; the essential packages are extracted with
dpkg-deb so the root has a shell and libc, then dpkg registers and configures them in the
root (dpkg --root chroots for maintainer scripts), and one apt-get run installs the rest.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import time
import urllib.error
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from kosi import log
from kosi.config.model import Config
from kosi.distributions.debian import Debian, deb_architecture
from kosi.errors import KosiError
from kosi.installers import apt_keys, apt_release, apt_sources, apt_verify, essential_cache
from kosi.installers.apt_verify import deb_filename
from kosi.installers import repository as local_repository
from kosi.installers.apivfs import EATMYDATA, eatmydata_library, in_root
from kosi.installers.base import PackageManager, distribution_of
from kosi.installers.base import environment as common_environment
from kosi.config.values import Feature
from kosi.sandbox import Mount, last_error_line, run

if TYPE_CHECKING:
    from kosi.pipeline.context import Context

#: what WithDocs=no keeps out of the image (dpkg --path-exclude globs); copyright files stay
#: WithDocs=no: what dpkg leaves out (as mkosi 27.1: lintian's overrides stay)
DOC_EXCLUDES = (
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/groff/*",
    "/usr/share/gtk-doc/*",
    "/usr/share/info/*",
)
DOC_INCLUDES = ("/usr/share/doc/*/copyright",)

#: what package scripts write with the wall clock in it (relative to the root)
UNREPRODUCIBLE = (
    "var/log/dpkg.log",
    "var/log/alternatives.log",
    "var/log/bootstrap.log",
    "var/log/apt",
    "var/cache/ldconfig/aux-cache",
    "var/cache/apt/pkgcache.bin",
    "var/cache/apt/srcpkgcache.bin",
    "var/lib/dbus/machine-id",
    "var/lib/systemd/random-seed",
)


def distribution(config: Config) -> type[Debian]:
    return distribution_of(config, Debian, "apt")


class Apt(PackageManager):
    name = "apt"

    def sources(self, config: Config) -> list[str]:
        return [
            f"{r.name}: {r.uri} {r.suite} {' '.join(r.components)}" for r in distribution(config).repositories(config)
        ]

    def first_packages(self, config: Config) -> tuple[str, ...]:
        return ("?essential",)  # Debian's essential set, with everything else in one transaction

    # ---- paths -------------------------------------------------------------------------

    @classmethod
    def cache_architecture(cls, config: Config) -> str:
        return deb_architecture(config)

    @staticmethod
    def apt_config(context: "Context") -> Path:
        return context.workspace / "apt.conf"

    # ---- setup -------------------------------------------------------------------------

    def setup(self, context: "Context") -> None:
        config = context.config
        dist = distribution(config)
        etc = context.pkgmngr / "etc/apt"
        for sub in ("apt.conf.d", "sources.list.d", "preferences.d", "trusted.gpg.d", "keyrings"):
            (etc / sub).mkdir(parents=True, exist_ok=True)
        cache = self.cache_dir(context)
        for sub in ("archives/partial", "lists/partial"):
            (cache / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("cache", "log"):
            (context.workspace / "apt" / sub).mkdir(parents=True, exist_ok=True)

        # Our repositories; the user's sources.list.d files from mkosi.sandbox sit next to them.
        if config["RepositoryKeyFetch"]:
            self._fetch_missing_keyrings(context)
        stanzas = []
        for repo in dist.repositories(config):
            keyring = None if repo.trusted or not repo.keyring else sandbox_keyring(context, repo.keyring)
            stanzas.append(repo.deb822(keyring=keyring))
        (etc / "sources.list.d" / f"{dist.name}.sources").write_text("\n".join(stanzas))

        directories = [
            Path(p) for p in [*(config["PackageDirectories"] or ()), *(config["VolatilePackageDirectories"] or ())]
        ]
        if not directories and (Path(config.directory) / "mkosi.packages").is_dir():
            directories.append(config.directory / "mkosi.packages")
        local_repository.populate(context.repository, directories)
        self._write_local_source(context)

        self.apt_config(context).write_text(self._apt_conf(context))

    def _write_local_source(self, context: "Context") -> None:
        path = context.pkgmngr / "etc/apt/sources.list.d/kosi-local.sources"
        if local_repository.has_packages(context.repository):
            local_repository.index(context.repository, context.tools)
            context.state.installer.local_fingerprint = local_repository.fingerprint(context.repository)
            path.write_text(local_repository.sources_stanza(context.repository))

    @staticmethod
    def keyring_path(context: "Context", keyring: str) -> Path | None:
        """The distribution keyring: the tools tree's (or the host's without one), else the one
        RepositoryKeyFetch= left in the package cache; None when there is neither."""
        fetched = apt_keys.fetched_keyring(Apt.cache_dir(context), keyring)
        return apt_keys.local_keyring(context, keyring) or (fetched if fetched.exists() else None)

    def _fetch_missing_keyrings(self, context: "Context") -> None:
        """RepositoryKeyFetch=yes: download the keyrings neither the tools tree nor the host has."""
        dist = distribution(context.config)
        for repo in dist.repositories(context.config):
            if repo.trusted or not repo.keyring or self.keyring_path(context, repo.keyring) is not None:
                continue
            apt_keys.fetch_keyring(
                context,
                dist,
                repo,
                self.cache_dir(context),
                self.environment(context),
                deb_architecture(context.config),
            )

    def _apt_conf(self, context: "Context") -> str:
        config = context.config
        arch = deb_architecture(config)
        cache = self.cache_dir(context)
        etc = context.pkgmngr / "etc/apt"
        recommends = "true" if config["WithRecommends"] else "false"
        options = {
            "Dir": "/",
            "Dir::Etc": etc,
            "Dir::Etc::Trusted": etc / "trusted.gpg",
            "Dir::Etc::TrustedParts": etc / "trusted.gpg.d",
            "Dir::Cache": context.workspace / "apt/cache",
            "Dir::Cache::Archives": cache / "archives",
            # Built from the lists alone, so it stays valid across builds next to them (named
            # for the ForceEssential setting below: caches built with apt's default mark apt essential).
            "Dir::Cache::SrcPkgCache": cache / "srcpkgcache-essential.bin",
            "Dir::State::Lists": cache / "lists",
            "Dir::Log": context.workspace / "apt/log",
            "APT::Architecture": arch,
            "APT::Architectures": arch,
            "APT::Install-Recommends": recommends,
            "APT::Install-Suggests": "false",
            "APT::Get::Assume-Yes": "true",
            "APT::Keep-Downloaded-Packages": "true",
            "APT::Sandbox::User": "root",  # the cache belongs to root; no _apt user needed
            "APT::Color": "false",
            "Acquire::Languages": "none",
            "Acquire::Retries": "3",
            "Acquire::http::Pipeline-Depth": "32",
            "DPkg::Use-Pty": "false",
            "DPkg::Path": "/usr/sbin:/usr/bin:/sbin:/bin",
            "DPkg::Lock::Timeout": "300",  # another build sharing the cache: wait, don't fail
            # apt counts itself essential by default, so ?essential would install it; mkosi 27.1
            # clears this too: an image gets apt when Packages= asks for it.
            "pkgCacheGen::ForceEssential": "",
        }
        proxy = config["ProxyUrl"]
        if proxy:
            options["Acquire::http::Proxy"] = proxy
            options["Acquire::https::Proxy"] = proxy
            for host in config["ProxyExclude"] or []:
                options[f"Acquire::http::Proxy::{host}"] = "DIRECT"
                options[f"Acquire::https::Proxy::{host}"] = "DIRECT"
        lines = [f'{key} "{value}";' for key, value in options.items()]
        # Speed: no fsync per file (the image is written once and synced as a whole).
        # Without man-db's auto-update flag its trigger does nothing: rebuilding the man page index
        # for every package is the slowest trigger there is, and the index is a cache anyway.
        dpkg_options = [
            "--force-unsafe-io",
            "--force-confdef",
            "--force-confold",
            *doc_options(config),
            "--path-exclude=/var/lib/man-db/auto-update",
        ]
        lines.append("DPkg::Options { " + " ".join(f'"{o}";' for o in dpkg_options) + " };")
        return "\n".join(lines) + "\n"

    # ---- running apt and dpkg ----------------------------------------------------------

    def environment(self, context: "Context") -> dict[str, str]:
        env = common_environment(context)
        # the Environment= settings (last in the common ones) win over apt's own variables
        return {
            "APT_CONFIG": str(self.apt_config(context)),
            "DEBIAN_FRONTEND": "noninteractive",
            "DEBCONF_NONINTERACTIVE_SEEN": "true",
            "INITRD": "No",  # kernel packages: the initrd is built by kosi, not by package scripts
            **env,
        }

    def root_options(self, context: "Context", root: Path) -> list[str]:
        """apt options that point it at one image root's package database."""
        return [
            "-o",
            f"Dir::State={root}/var/lib/apt",
            "-o",
            f"Dir::State::Status={root}/var/lib/dpkg/status",
            "-o",
            f"DPkg::Options::=--root={root}",
            "-o",
            f"DPkg::Options::=--log={context.workspace}/apt/log/dpkg.log",
        ]

    def apt_get(
        self,
        context: "Context",
        args: Sequence[str],
        *,
        root: Path | None = None,
        apivfs: bool = False,
        what: str = "apt-get",
    ) -> str:
        root = Path(root or context.root)
        cmd = ["apt-get", *self.root_options(context, root), *args]
        # apt refuses to run while another apt holds the cache's locks; builds sharing a package
        # cache take turns instead of failing.
        with self.cache_lock(context):
            return self._run(context, cmd, root=root, apivfs=apivfs, what=what)

    def _run(
        self, context: "Context", cmd: Sequence[str], *, root: Path, apivfs: bool, what: str, quiet: bool = False
    ) -> str:
        """Run apt or dpkg in the package manager sandbox; its stdout (progress, "Inst" lines) is
        returned, its stderr shown live (kept quiet with `quiet` unless --debug), and a failure
        explained in one line."""
        quiet = quiet and not log.DEBUG
        start = time.monotonic()
        eatmydata = eatmydata_library(context, deb_architecture(context.config))
        if eatmydata:  # set inside the sandbox, where the library is
            cmd = ["env", f"LD_PRELOAD={EATMYDATA}", *cmd]
        result = run(
            cmd,
            sandbox=apt_sandbox(context, root, apivfs=apivfs, eatmydata=eatmydata),
            env=self.environment(context),
            stdout=-1,
            stderr=-1 if quiet else None,
            tee_stderr=not quiet,
            check=False,
            input="",
        )
        timings = context.state.installer.timings
        timings[what] = timings.get(what, 0.0) + time.monotonic() - start
        log.debug(f"{what}: {time.monotonic() - start:.1f}s")
        if log.DEBUG and result.stdout:
            log.debug(result.stdout.rstrip())
        if result.returncode != 0:
            raise KosiError(
                self.explain_failure(context, what, f"{result.stdout}\n{result.stderr}", returncode=result.returncode)
            )
        return result.stdout

    def explain_failure(self, context: "Context", what: str, output: str, *, returncode: int | None = None) -> str:
        """apt's output reduced to the one line a user needs."""
        config = context.config
        dist = distribution(config)
        where = f"{dist.name} {dist.release(config)} ({', '.join(dist.components(config))})"
        lines = output.splitlines()
        for line in lines:
            m = re.match(r"E: Unable to locate package (\S+)", line)
            if m:
                return f"package '{m.group(1)}' not found in {where}"
            m = re.match(r"E: Package '(\S+)' has no installation candidate", line)
            if m:
                return f"package '{m.group(1)}' has no installation candidate in {where}"
        for line in lines:
            repo = re.search(r"GPG error: (\S+ \S+)", line)
            key = re.search(r"(NO_PUBKEY|EXPKEYSIG|BADSIG|REVKEYSIG) (\S+)", line)
            if repo and key:
                problem = (
                    "is not in the configured keyring" if key.group(1) == "NO_PUBKEY" else f"fails ({key.group(1)})"
                )
                # RepositoryKeyCheck= covers only the distribution's repositories, not the user's own sources.
                ours = {r.uri.rstrip("/") for r in dist.repositories(config)}
                hint = (
                    "RepositoryKeyCheck=no skips the check"
                    if repo.group(1).split()[0].rstrip("/") in ours
                    else "Signed-By: in its sources file names the keyring apt checks against"
                )
                return f"signature check failed for repository {repo.group(1)}: key {key.group(2)} {problem} ({hint})"
        for line in lines:
            m = re.search(r"Release file for (\S+) is expired \(([^)]*)\)", line)
            if m:
                return (
                    f"repository metadata {m.group(1)} is expired ({m.group(2)}): the mirror is stale or the clock "
                    'is wrong (Acquire::Check-Valid-Until "false"; in mkosi.sandbox/etc/apt/apt.conf.d accepts it)'
                )
        for line in lines:
            m = re.match(r"E: The repository '([^']+)' is not signed", line)
            if m:
                return f"repository {m.group(1)} is not signed (RepositoryKeyCheck=no accepts it)"
        for line in lines:
            m = re.match(r"[EW]: Failed to fetch (\S+)\s+(.*)", line)
            if m:
                url, reason = m.groups()
                mirror = next((r.uri for r in dist.repositories(config) if url.startswith(r.uri)), url)
                return f"cannot fetch from mirror {mirror}: {reason.strip() or 'download failed'}"
        errors = [line for line in lines if line.startswith("E: ")]
        if errors:
            return f"{what}: {errors[0][3:]}"
        status = f" with exit status {returncode}" if returncode is not None else ""
        return f"{what} failed{status}: {last_error_line(output) or 'no output'}"

    # ---- metadata ----------------------------------------------------------------------

    def sync(self, context: "Context", force: bool = False) -> None:
        if context.state.installer.synced and not force:
            return
        lists = self.cache_dir(context) / "lists"
        have_lists = any(p.name.endswith("Packages") or "_Packages" in p.name for p in lists.glob("*"))
        mode = str(context.config["CacheOnly"])
        if mode in ("always", "metadata") or (mode == "auto" and context.state.cached):
            if not have_lists and mode in ("always", "metadata"):
                raise KosiError(
                    f"CacheOnly={mode}: no repository metadata in the package cache {lists.parent} "
                    "(build once with CacheOnly=auto first)"
                )
            if have_lists:
                self._update_local_repository(context)
                context.state.installer.synced = True
                return
        self._check_keyrings(context)
        # The lists are shared by every build of this distribution, release and architecture:
        # a build with fewer components must not delete the lists another one uses (copies
        # stay in the package cache; images get none, as with mkosi 27.1).
        # A Release file past its Valid-Until (a stale mirror) does not stop the build, as with
        # mkosi 27.1; warn_expired() says which mirror and how long ago.
        self.apt_get(
            context,
            ["update", "--error-on=any", "-o", "APT::Get::List-Cleanup=0", "-o", "Acquire::Check-Valid-Until=false"],
            what="apt-get update",
        )
        self.warn_expired(context, lists)
        context.state.installer.synced = True

    def warn_expired(self, context: "Context", lists: Path) -> None:
        exempt = {
            (r.uri.rstrip("/"), r.suite)
            for r in distribution(context.config).repositories(context.config)
            if not r.check_valid_until
        }
        output = self.apt_get(
            context, ["indextargets", "--format", apt_release.INDEXTARGETS_FORMAT], what="apt-get indextargets"
        )
        for stale in apt_release.expired(output, lists, time.time(), exempt):
            log.warn(stale.message())

    def _check_keyrings(self, context: "Context") -> None:
        dist = distribution(context.config)
        for repo in dist.repositories(context.config):
            if repo.trusted or not repo.keyring:
                continue
            if self.keyring_path(context, repo.keyring) is None:
                where = f"{repo.keyring} (in the tools tree {context.tools})" if context.tools else repo.keyring
                raise KosiError(
                    f"keyring {where} for repository {repo.uri} {repo.suite} is missing: install "
                    f"{dist.keyring_package}, or let kosi fetch it with RepositoryKeyFetch=yes "
                    "(or use ToolsTree=default, or RepositoryKeyCheck=no)"
                )

    def _update_local_repository(self, context: "Context") -> None:
        """Re-index $PACKAGEDIR when build scripts added packages, and refresh only that source."""
        if not local_repository.has_packages(context.repository):
            return
        fingerprint = local_repository.fingerprint(context.repository)
        source = context.pkgmngr / "etc/apt/sources.list.d/kosi-local.sources"
        if (
            fingerprint == context.state.installer.local_fingerprint
            and source.exists()
            and context.state.installer.local_synced
        ):
            return
        self._write_local_source(context)
        self.apt_get(
            context,
            [
                "update",
                "-o",
                f"Dir::Etc::SourceList={source}",
                "-o",
                "Dir::Etc::SourceParts=-",
                "-o",
                "APT::Get::List-Cleanup=0",
            ],
            what="apt-get update (local packages)",
        )
        context.state.installer.local_synced = True

    def latest_snapshot(self, config: Config) -> str:
        """The newest snapshot ID (YYYYMMDDTHHMMSSZ): the one the snapshot service (Mirror= when set)
        redirects the current time to, or the current time where every time is a snapshot (Ubuntu's)."""
        from kosi.scripts.environment import open_url

        dist = distribution(config)
        now = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        url = dist.snapshot_url(config, now) + "/"
        try:
            # GET, not HEAD: the redirect is all that is read, and every web server answers GET.
            with open_url(config, url, timeout=30) as response:
                final = response.geturl()
        except urllib.error.HTTPError as e:
            raise KosiError(
                f"snapshot service {dist.snapshot_service_url(config)} has no snapshot at {url}: "
                f"HTTP {e.code} {e.reason}"
            ) from None
        except OSError as e:
            raise KosiError(f"cannot reach snapshot service {dist.snapshot_service_url(config)}: {e}") from None
        return parse_snapshot_id(final) or now

    # ---- installing --------------------------------------------------------------------

    def install(
        self, context: "Context", packages: Sequence[str], *, root: Path | None = None, apivfs: bool = True
    ) -> None:
        root = Path(root or context.root)
        self.sync(context)
        self._update_local_repository(context)
        if not _bootstrapped(root):
            self.bootstrap(context, root, packages)
        elif packages:
            self._install_with_apt(context, root, ["install", *packages], apivfs=apivfs)
        if root == Path(context.root):
            # The pipeline's metadata step runs before the first install (manual: EXECUTION FLOW),
            # when a new image has no apt yet: the image gets its lists and sources once apt is in.
            self.copy_metadata_into_image(context)

    def _install_with_apt(
        self, context: "Context", root: Path, args: list[str], *, apivfs: bool, verify: bool = True
    ) -> None:
        extra = ["--no-download"] if str(context.config["CacheOnly"]) == "always" else []
        if verify:
            apt_verify.verify_cached_packages(self, context, root, args[1:])
        with _services_disabled(root):
            output = self.apt_get(context, [*args, *extra], root=root, apivfs=apivfs, what="apt-get install")
        context.state.installer.downloaded += output.count("\nGet:")

    def bootstrap(self, context: "Context", root: Path, packages: Sequence[str]) -> None:
        """Install the essential set and `packages` into an empty root."""
        log.step(
            f"Bootstrapping {distribution(context.config).pretty_name} {distribution(context.config).release(context.config)}"
        )
        prepare_root(context, root)
        # The essential set and what was asked for, as mkosi 27.1 installs (a minimal trixie
        # image: 59 packages, no apt); not Debian's whole priority-required set. A user who
        # wants apt, login, tzdata, ... lists them in Packages=.
        base = list(self.first_packages(context.config))

        # Which packages make up the essential set with its dependencies, as apt resolves it
        # for an empty database: these are extracted before dpkg can run in the root.
        simulation = self.apt_get(context, ["install", "-s", *base], root=root, what="apt-get (essential set)")
        essential = re.findall(r"^Inst (\S+) \((\S+) .*\[(\S+)\]\)", simulation, re.M)
        if not essential:
            raise KosiError("apt found no essential packages: the repository metadata is incomplete")

        # One resolution and one parallel download for everything this bootstrap installs.
        apt_verify.verify_cached_packages(self, context, root, [*base, *packages])
        extra = ["--no-download"] if str(context.config["CacheOnly"]) == "always" else []
        output = self.apt_get(
            context, ["install", "--download-only", *extra, *base, *packages], root=root, what="apt-get install"
        )
        context.state.installer.downloaded += output.count("\nGet:")

        archives = self.cache_dir(context) / "archives"
        debs = [archives / deb_filename(name, version, arch) for name, version, arch in essential]
        missing = [d.name for d in debs if not d.exists()]
        if missing:
            raise KosiError(f"apt did not download the essential package {missing[0]} into {archives}")
        # The environment without its per-build paths (APT_CONFIG is in the workspace).
        environment = {k: v for k, v in self.environment(context).items() if k not in ("APT_CONFIG", "PATH")}
        key = essential_cache.tree_key(root, debs, doc_options(context.config), environment)
        started = time.monotonic()
        reused = essential_cache.restore_or_build(
            context,
            self.cache_dir(context),
            root,
            key,
            lambda: self._install_essential(context, root, debs),
            sandbox=in_root(context, root, apivfs=False, network=False),
        )
        context.state.installer.essential_reused = reused
        context.state.installer.timings["essential set"] = time.monotonic() - started
        # Everything else in one apt run, from the archives already downloaded (and checked).
        self._install_with_apt(context, root, ["install", *base, *packages], apivfs=True, verify=False)

    def _install_essential(self, context: "Context", root: Path, debs: Sequence[Path]) -> None:
        started = time.monotonic()
        extract(context, debs, root)
        context.state.installer.timings["extract (essential set)"] = time.monotonic() - started
        # Register and configure the essential set: dpkg runs maintainer scripts chrooted into
        # the root, which now has a shell. Dependencies among them are resolved by ordering
        # within this one dpkg run, hence --force-depends.
        dpkg = [
            "dpkg",
            f"--root={root}",
            f"--log={context.workspace}/apt/log/dpkg.log",
            "--force-unsafe-io",
            *doc_options(context.config),
            "--force-depends",
            "--install",
            *map(str, debs),
        ]
        with _services_disabled(root):
            # quiet: --force-depends makes dpkg warn about every pre-dependency it orders itself
            self._run(context, dpkg, root=root, apivfs=True, what="dpkg (essential set)", quiet=True)

    def remove(self, context: "Context", packages: Sequence[str]) -> None:
        if not packages:
            return
        # Purging downloads nothing: a private archives directory keeps the shared cache unlocked.
        archives = context.workspace / "apt/archives"
        (archives / "partial").mkdir(parents=True, exist_ok=True)
        self._run(
            context,
            [
                "apt-get",
                *self.root_options(context, context.root),
                "-o",
                f"Dir::Cache::Archives={archives}",
                "purge",
                "--allow-remove-essential",
                *packages,
            ],
            root=context.root,
            apivfs=True,
            what="apt-get purge",
        )

    # ---- after installation ------------------------------------------------------------

    def copy_metadata_into_image(self, context: "Context") -> None:
        """An image with apt gets sources for its mirror, as <release>.sources (as mkosi 27.1),
        but not the repository metadata: like mkosi, kosi keeps apt's lists in the package
        cache only, so an image's apt starts with `apt-get update`."""
        root = context.root
        if not (root / "usr/bin/apt-get").exists():
            return
        if context.state.installer.lists_copied:
            return  # once per build
        context.state.installer.lists_copied = True
        sources = root / "etc/apt/sources.list.d"
        if not any((sources.glob("*.sources") if sources.is_dir() else [])) and not _has_content(
            root / "etc/apt/sources.list"
        ):
            sources.mkdir(parents=True, exist_ok=True)
            dist = distribution(context.config)
            stanzas = [r.deb822() for r in dist.repositories(context.config, local=False)]
            (sources / f"{dist.release(context.config)}.sources").write_text("\n".join(stanzas))

    def clean_metadata(self, context: "Context") -> None:
        mode = context.config["CleanPackageMetadata"]
        if mode == Feature.disabled:
            return
        root = context.root
        always = mode == Feature.enabled
        if always or not (root / "usr/bin/apt-get").exists():
            for sub in ("var/lib/apt", "var/cache/apt", "var/log/apt"):
                _remove(root / sub)
        if always or not (root / "usr/bin/dpkg").exists():
            for sub in ("var/lib/dpkg", "var/log/dpkg.log"):
                _remove(root / sub)

    def normalise_for_reproducibility(self, context: "Context") -> None:
        root = context.root
        for sub in UNREPRODUCIBLE:
            _remove(root / sub)
        for pattern in ("var/cache/debconf/*-old", "var/lib/dpkg/*-old", "etc/*-"):
            for path in root.glob(pattern):
                local_repository.remove_path(path)
        # /etc/machine-id is the MachineId step's (MachineId=, else "uninitialized"), as with
        # mkosi 27.1: a configured machine ID survives the reproducibility clean-up.
        # The apt lists' mtimes come from the mirror; apt's "extended_states" is content only.

    def wrappers(self, context: "Context") -> dict[str, list[str]]:
        env = self.env_command(context)
        root = context.root
        sandbox = [*env, *apt_sandbox(context, root)]
        query = [*env, *apt_sandbox(context, root, apivfs=False, network=False)]
        apt_get = [*sandbox, "apt-get", *self.root_options(context, root)]
        return {
            "apt": [*sandbox, "apt", *self.root_options(context, root)],
            "apt-get": apt_get,
            "apt-cache": [*query, "apt-cache", *self.root_options(context, root)],
            "dpkg": [*sandbox, "dpkg", f"--root={root}", "--force-unsafe-io", *doc_options(context.config)],
            "dpkg-query": [*query, "dpkg-query", f"--root={root}"],
            "mkosi-install": [*apt_get, "install"],
            "mkosi-reinstall": [*apt_get, "install", "--reinstall"],
            "mkosi-upgrade": [*apt_get, "upgrade"],
            "mkosi-remove": [*apt_get, "purge"],
        }


# ---- helpers -------------------------------------------------------------------------------


def apt_sandbox(context: "Context", root: Path, **options) -> list[str]:
    """The package manager sandbox with the configuration tree's etc/apt as its /etc/apt: sources
    from mkosi.sandbox/ name their keyrings by absolute path (Signed-By: /etc/apt/keyrings/...),
    as they would on the machine they were written for. Local repositories (file:/ URIs) and
    keyrings those sources name elsewhere on the host are there too, read-only."""
    etc_apt = context.pkgmngr / "etc/apt"
    visible = [Path(context.workspace), Path(context.package_cache), Path(root)]
    extra = [Mount(etc_apt, "/etc/apt", "ro-bind")]
    extra += [
        Mount(path, str(path), "ro-bind")
        for path in apt_sources.host_paths(etc_apt)
        if not any(path.is_relative_to(v) for v in visible)
    ]
    return in_root(context, root, extra=extra, **options)


def sandbox_keyring(context: "Context", keyring: str) -> str:
    """The keyring's path as apt sees it in its sandbox, whose /usr is the tools tree's or the
    host's and which has the package cache (where fetched keyrings are) and the workspace (with
    the sandbox trees' keyrings) at their own paths."""
    local = apt_keys.local_keyring(context, keyring)
    if local and local.is_relative_to(context.pkgmngr):
        return str(local)
    if keyring.startswith("/usr/") and local:
        return keyring
    path = Apt.keyring_path(context, keyring)
    return str(path) if path else keyring


def parse_snapshot_id(url: str) -> str | None:
    m = re.search(r"/(\d{8}T\d{6}Z)/?", url)
    return m.group(1) if m else None


def _bootstrapped(root: Path) -> bool:
    status = root / "var/lib/dpkg/status"
    return status.exists() and status.stat().st_size > 0


def prepare_root(context: "Context", root: Path) -> None:
    """An empty dpkg database, merged /usr, and the dpkg configuration that must hold from the start."""
    for sub in (
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
        "var/lib/apt/lists/partial",
        "etc/apt/apt.conf.d",
        "etc/dpkg/dpkg.cfg.d",
        "usr/bin",
        "usr/sbin",
        "usr/lib",
    ):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name in ("status", "available"):
        (root / "var/lib/dpkg" / name).touch()
    # Merged /usr: every supported release expects it, and trixie's packages ship only /usr paths.
    links = ["bin", "sbin", "lib"]
    if deb_architecture(context.config) in ("amd64", "ppc64el", "s390x", "loong64", "mips64el"):
        links.append("lib64")
        (root / "usr/lib64").mkdir(exist_ok=True)
    if deb_architecture(context.config) == "amd64":  # the multilib directories, as mkosi 27.1 (and debootstrap)
        for name in ("lib32", "libx32"):
            links.append(name)
            (root / "usr" / name).mkdir(exist_ok=True)
    for name in links:
        if not os.path.lexists(root / name):
            os.symlink(f"usr/{name}", root / name)


def doc_options(config: Config) -> list[str]:
    """dpkg options for WithDocs=no, given on every dpkg run of the build; as in mkosi 27.1's
    images, no dpkg.cfg.d file keeps later installs inside the image doc-free."""
    if config["WithDocs"]:
        return []
    return [f"--path-exclude={p}" for p in DOC_EXCLUDES] + [f"--path-include={p}" for p in DOC_INCLUDES]


def extract(context: "Context", debs: Sequence[Path], root: Path) -> None:
    """Unpack the packages' files (not their scripts) into root, several at a time, in one sandbox."""
    excludes = [] if context.config["WithDocs"] else [f"--exclude=.{p}" for p in DOC_EXCLUDES]
    # xargs passes each .deb as $0 of the one-line extractor; a failing pipe makes xargs exit 123.
    extractor = (
        'set -o pipefail; dpkg-deb --fsys-tarfile "$0" | tar -x --keep-directory-symlink '
        f"-C {shlex.quote(str(root))} --wildcards {shlex.join(excludes)}"
    )
    jobs = str(max(2, (os.cpu_count() or 2) * 2))
    result = run(
        ["xargs", "-0", "-n", "1", "-P", jobs, "bash", "-c", extractor],
        sandbox=in_root(context, root, apivfs=False, network=False),
        input=b"".join(os.fsencode(d) + b"\0" for d in debs),
        stdout=-3,
        stderr=-1,
        check=False,
    )
    if result.returncode != 0:
        raise KosiError(
            f"cannot extract the essential packages into {root}: "
            f"{last_error_line(result.stderr) or f'exit status {result.returncode}'}"
        )


class _services_disabled:
    """policy-rc.d that stops maintainer scripts from starting services, only while installing."""

    def __init__(self, root: Path):
        self.path = root / "usr/sbin/policy-rc.d"
        self.created = False

    def __enter__(self):
        if not os.path.lexists(self.path) and self.path.parent.is_dir():
            self.path.write_text("#!/bin/sh\nexit 101\n")
            self.path.chmod(0o755)
            self.created = True
        return self

    def __exit__(self, *exc):
        if self.created:
            self.path.unlink(missing_ok=True)


def _has_content(path: Path) -> bool:
    return path.is_file() and any(
        line.strip() and not line.lstrip().startswith("#") for line in path.read_text().splitlines()
    )


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
