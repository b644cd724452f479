"""zypper backend: openSUSE Tumbleweed and Leap images.

Layout while building:

    <workspace>/zypp/repos.d/                 --reposd-dir: the distribution's repositories, the local
                                              [mkosi] one and the sandbox trees' etc/zypp/repos.d
    <workspace>/zypp/zypp.conf                ZYPP_CONF: WithDocs= (rpm.install.excludedocs) and
                                              WithRecommends= (solver.onlyRequires)
    <pkgmngr>/etc/rpm/macros.kosi-dbpath      rpm's database location and backend (/etc/rpm in the sandbox)
    <workspace>/zypp/keys/                    the repositories' key files, as gpgkey= names them
    <workspace>/zypp/sync-root/               an rpm database holding only those keys: zypper
                                              refreshes against it, so repository metadata is
                                              checked against exactly the configured keys
    <package cache>/opensuse~<release>~<arch>/   --cache-dir, seen as /var/cache/zypp in the sandbox:
                                              raw metadata, solv files and packages (keeppackages)

The rpm database backend: openSUSE's rpm uses ndb, which Debian 12's rpm (4.18) lacks. kosi asks
the rpm it runs (the tools tree's or the host's) which backends it has, uses ndb when it can and
sqlite otherwise (openSUSE's rpm reads either), and logs which.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kosi import log
from kosi.config.model import Config
from kosi.config.values import Feature
from kosi.distributions.opensuse import OpenSUSE, RpmRepository, rpm_architecture
from kosi.errors import KosiError
from kosi.installers import apt_keys
from kosi.installers import repository as local_repository
from kosi.installers import rpm
from kosi.installers.apivfs import in_root
from kosi.installers.base import PackageManager, distribution_of
from kosi.installers.base import environment as common_environment
from kosi.sandbox import Mount, run

if TYPE_CHECKING:
    from kosi.pipeline.context import Context

CACHE = "/var/cache/zypp"  # where the package cache appears in the sandbox
DBPATH = "/usr/lib/sysimage/rpm"
LOCAL_REPOSITORY = "mkosi"
#: rpm-sequoia's warning for a key past its expiry (rpm imports it, but it verifies nothing)
EXPIRED = re.compile(r"Certificate (\w+):\s+The certificate is expired(?:[^\n]*?Expired on (\S+))?")
UNREPRODUCIBLE = (
    "var/log/zypp",
    "var/log/zypper.log",
    "run/zypp.pid",
    "var/cache/zypp/solv/@System",
)


def distribution(config: Config) -> type[OpenSUSE]:
    return distribution_of(config, OpenSUSE, "zypper")


class Zypper(PackageManager):
    name = "zypper"
    state_name = "zypp"
    unreproducible = UNREPRODUCIBLE

    def sources(self, config: Config) -> list[str]:
        return [f"[{r.id}] {r.url}" for r in distribution(config).repositories(config) if r.enabled]

    def first_packages(self, config: Config) -> tuple[str, ...]:
        return ("filesystem", *distribution(config).release_packages(config))

    @classmethod
    def cache_architecture(cls, config: Config) -> str:
        return rpm_architecture(config)

    # ---- setup -------------------------------------------------------------------------

    def setup(self, context: Context) -> None:
        config = context.config
        state = self.state_dir(context)
        for sub in ("repos.d", "keys", "sync-root"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        self.cache_dir(context).mkdir(parents=True, exist_ok=True)
        local_repository.collect(context, rpm.is_rpm)
        self._write_repositories(context)
        (state / "zypp.conf").write_text(
            "[main]\n"
            f"rpm.install.excludedocs = {'no' if config['WithDocs'] else 'yes'}\n"
            f"solver.onlyRequires = {'false' if config['WithRecommends'] else 'true'}\n"
            "download.use_deltarpm = false\n"
        )
        rpm.write_macros(context, DBPATH, self.db_backend(context))

    def keys(self, context: Context) -> list[Path]:
        """The repositories' key files, copied into the workspace; missing ones are an error naming the file."""
        if not context.config.repository_key_check:
            return []
        if context.config["RepositoryKeyFetch"]:
            return self.fetch_keys(context)
        found = []
        for key in distribution(context.config).keys(context.config):
            path = apt_keys.local_keyring(context, key)
            if path is None:
                continue
            target = self.state_dir(context) / "keys" / Path(key).name
            shutil.copyfile(path, target)
            found.append(target)
        return found

    def fetch_keys(self, context: Context) -> list[Path]:
        """RepositoryKeyFetch=yes: the key each enabled repository publishes next to its metadata
        (repodata/repomd.xml.key), downloaded once per build: the keys mkosi 27.1 lets zypper
        import itself (--gpg-auto-import-keys). Only these are trusted, for this build."""
        from kosi.scripts.environment import open_url

        found = []
        for repo in distribution(context.config).repositories(context.config):
            target = self.state_dir(context) / "keys" / f"{repo.id}.key"
            if repo.enabled and not target.exists():
                url = f"{repo.url}/repodata/repomd.xml.key"
                try:
                    with open_url(context.config, url, timeout=30) as response:
                        target.write_bytes(response.read())
                except (OSError, ValueError) as e:
                    reason = getattr(e, "reason", None) or e
                    raise KosiError(f"RepositoryKeyFetch=yes: cannot fetch the key {url}: {reason}") from None
            if target.exists():
                found.append(target)
        return found

    def check_keys(self, context: Context) -> None:
        if not context.config.repository_key_check or self.keys(context):
            return
        dist = distribution(context.config)
        key = dist.keys(context.config)[0]
        where = f"{key} (in the tools tree {context.tools})" if context.tools else key
        url = dist.repositories(context.config)[0].url
        raise KosiError(
            f"key file {where} for repository {url} is missing: install distribution-gpg-keys, put "
            "it in mkosi.sandbox/, or use ToolsTree=default (or RepositoryKeyCheck=no)"
        )

    def _write_repositories(self, context: Context) -> None:
        config = context.config
        reposd = self.state_dir(context) / "repos.d"
        for old in reposd.glob("*.repo"):
            old.unlink()
        keys = tuple(str(k) for k in self.keys(context))
        package_check = self.reads_package_signatures(context)
        repos = [
            RpmRepository(r.id, r.url, keys, r.enabled, r.check, package_check)
            for r in distribution(config).repositories(config)
        ]
        (reposd / f"{distribution(config).name}.repo").write_text("\n".join(r.section() for r in repos))
        for user in sorted((context.pkgmngr / "etc/zypp/repos.d").glob("*.repo")):
            shutil.copyfile(user, reposd / user.name)
        if local_repository.has_packages(context.repository, rpm.is_rpm):
            local = RpmRepository(LOCAL_REPOSITORY, f"file://{context.repository}", check=False)
            (reposd / f"{LOCAL_REPOSITORY}.repo").write_text(local.section(priority=50))

    def _rpm_output(self, context: Context, option: str) -> str:
        """What the rpm kosi runs (the tools tree's or the host's) prints for `option`."""
        result = run(
            ["rpm", option],
            sandbox=in_root(context, context.workspace, apivfs=False, network=False),
            stdout=-1,
            stderr=-1,
            check=False,
        )
        return result.stdout.decode(errors="replace") if result.stdout else ""

    def reads_package_signatures(self, context: Context) -> bool:
        """Whether zypper can read rpm's signature checks: libzypp (1.14.101 in Debian sid too)
        matches rpm 4's "Signature, key ID" lines, and takes rpm 6's "signature, key fingerprint"
        for an unsigned package. With rpm 6 kosi leaves pkg_gpgcheck= to zypper's default, as
        mkosi 27.1 does: packages are checked against the checksums of the signed metadata."""
        match = re.search(r"version (\d+)\.", self._rpm_output(context, "--version"))
        readable = not match or int(match.group(1)) < 6
        if not readable:
            log.info("rpm 6: package signatures are left to zypper's default (the signed metadata's checksums)")
        return readable

    def db_backend(self, context: Context) -> str:
        """ndb when the rpm kosi runs has it (openSUSE's default), else sqlite."""
        if context.state.installer.rpm_backend:
            return context.state.installer.rpm_backend
        match = re.search(r"available backends\s*:\s*(.*)", self._rpm_output(context, "--showrc"))
        backends = match.group(1).split() if match else []
        where = f"the tools tree's rpm ({context.tools})" if context.tools else "the host's rpm"
        if "ndb" in backends:
            backend = "ndb"
            log.info(f"rpm database: ndb, as openSUSE's own ({where} has it)")
        else:
            backend = "sqlite"
            log.info(f"rpm database: sqlite, since {where} has no ndb backend (openSUSE's rpm reads sqlite too)")
        context.state.installer.rpm_backend = backend
        return backend

    def _index_local_repository(self, context: Context) -> None:
        """(Re-)index $PACKAGEDIR when it has packages not indexed yet (build scripts add some)."""

        def index() -> None:
            rpm.index(context.repository, context.tools)
            self._write_repositories(context)

        local_repository.reindex(context, rpm.is_rpm, index)

    # ---- running zypper and rpm --------------------------------------------------------------

    def environment(self, context: Context) -> dict[str, str]:
        state = self.state_dir(context)
        return {**common_environment(context), "ZYPP_CONF": str(state / "zypp.conf"), "SYSTEMD_OFFLINE": "1"}

    def sandbox(self, context: Context, root: Path, *, apivfs: bool = True, network: bool = True) -> list[str]:
        extra = [Mount(self.cache_dir(context), CACHE)]
        if context.repository.is_dir():
            extra.append(Mount(context.repository, str(context.repository), "ro-bind"))
        return rpm.sandbox(context, root, apivfs=apivfs, network=network, extra=extra)

    def zypper_command(self, context: Context, root: Path) -> list[str]:
        return [
            "zypper",
            "--installroot",
            str(root),
            "--reposd-dir",
            str(self.state_dir(context) / "repos.d"),
            "--cache-dir",
            CACHE,
            "--non-interactive",
            "--no-color",
            f"--releasever={distribution(context.config).release(context.config)}",
        ]

    def _run(
        self, context: Context, cmd: Sequence[str], *, root: Path, apivfs: bool, what: str, network: bool = True
    ) -> str:
        return self.run_locked(
            context,
            cmd,
            sandbox=self.sandbox(context, root, apivfs=apivfs, network=network),
            what=what,
            downloads=r"^Retrieving: \S+\.rpm",
            # 0 ok, 100-103 informational (updates/patches/restart needed), 106 some repos skipped
            ok=(0, 100, 101, 102, 103),
            failed="Could not refresh the repositories",
        )

    def explain_failure(self, context: Context, what: str, output: str, *, returncode: int | None = None) -> str:
        config = context.config
        dist = distribution(config)
        names = ", ".join(r.id for r in dist.repositories(config) if r.enabled)
        where = f"{dist.name} {dist.release(config)} ({names})"
        lines = output.splitlines()
        for line in lines:
            m = re.search(r"No provider of '([^']+)' found", line)
            if m:
                return f"package '{m.group(1)}' not found in {where}"
        for line in lines:
            m = re.match(r"(\S+) \(([^)]+)\): Signature verification failed \[(.*)\]", line)
            if m:
                return (
                    f"signature check failed for package {m.group(1)} from {m.group(2)}: {m.group(3)} "
                    "(RepositoryKeyCheck=no skips the check)"
                )
        repository = None
        for line in lines:
            m = re.match(r"\[([^|\]]+)\|([^\]]+)\]", line)
            if m:
                repository = m.group(2)
            if "Signature verification failed for repomd.xml" in line:
                keys = ", ".join(k for k in dist.keys(config) if apt_keys.local_keyring(context, k)) or "none"
                return (
                    f"signature check failed for repository {repository or names}: its metadata is not signed "
                    f"by the configured keys ({keys}; RepositoryKeyCheck=no skips the check)"
                )
        for i, line in enumerate(lines):
            m = re.search(r"Download \(curl\) error for '([^']+)'", line)
            if m:
                url = m.group(1)
                following = lines[i + 1 : i + 3]
                reason = next(
                    (l.split(":", 1)[1].strip() for l in following if l.startswith("Error message:")),
                    next(
                        (l.split(":", 1)[1].strip() for l in following if l.startswith("Error code:")),
                        "download failed",
                    ),
                )
                repo = next((r.url for r in dist.repositories(config) if url.startswith(r.url + "/")), None)
                return f"cannot fetch from repository {repo}: {reason}" if repo else f"cannot fetch {url}: {reason}"
        rejected = re.search(r"Policy rejects (\S+): (.+)\n(?:.*\n)*?error: (\S+): key \d+ import failed", output)
        if rejected:  # rpm-sequoia: an expired key, or one whose self-signature uses SHA-1
            fingerprint, reason, path = rejected.groups()
            name = Path(path).name
            source = next((apt_keys.local_keyring(context, k) for k in dist.keys(config) if Path(k).name == name), None)
            return (
                f"rpm refuses the key {source or name} ({fingerprint}: {reason}): a newer "
                "distribution-gpg-keys may have it renewed, RepositoryKeyFetch=yes takes the mirror's, or put a valid key in "
                f"mkosi.sandbox/ as {next((k for k in dist.keys(config) if Path(k).name == name), name)}"
            )
        if repository and any("Valid metadata not found at specified URL" in line for line in lines):
            return f"repository {repository} has no valid metadata (is Mirror= right?)"
        return super().explain_failure(context, what, output, returncode=returncode)

    # ---- metadata ----------------------------------------------------------------------

    def _import_keys(self, context: Context, root: Path) -> None:
        """The repository keys into the root's rpm database: zypper trusts those and nothing else
        (no --gpg-auto-import-keys: a mirror's own repomd.xml.key is never taken on trust)."""
        keys = self.keys(context)
        if not keys or (root / DBPATH.lstrip("/")).is_dir():
            return
        (root / DBPATH.lstrip("/")).mkdir(parents=True, exist_ok=True)
        for key in keys:  # one at a time: rpm only warns about an expired key, without naming its file
            output = self._run(
                context,
                ["rpm", "--root", str(root), "--import", str(key)],
                root=root,
                apivfs=False,
                what="rpm --import",
                network=False,
            )
            expired = EXPIRED.search(output)
            if expired:
                name = next(
                    (k for k in distribution(context.config).keys(context.config) if Path(k).name == key.name), key.name
                )
                source = apt_keys.local_keyring(context, name)
                if source is not None and source.is_relative_to(context.pkgmngr):
                    source = Path(f"{name} (from the sandbox trees)")
                raise KosiError(
                    f"the key {source or key} ({expired.group(1)}) has expired"
                    f"{' on ' + expired.group(2) if expired.group(2) else ''}: it verifies nothing; "
                    f"RepositoryKeyFetch=yes takes the mirror's key, or put a valid one in mkosi.sandbox/ as {name}"
                )

    def sync(self, context: Context, force: bool = False) -> None:
        if context.state.installer.synced and not force:
            return
        if self.metadata_from_cache(context, (self.cache_dir(context) / "solv").is_dir()):
            self._index_local_repository(context)
            context.state.installer.synced = True
            return
        self.check_keys(context)
        self._index_local_repository(context)
        sync_root = self.state_dir(context) / "sync-root"
        self._import_keys(context, sync_root)
        self._run(
            context,
            # as mkosi 27.1: only what changed on the mirror since the cached copy is downloaded
            [*self.zypper_command(context, sync_root), "--no-refresh", "refresh"],
            root=sync_root,
            apivfs=False,
            what="zypper refresh",
        )
        context.state.installer.synced = True

    def latest_snapshot(self, config: Config) -> str:
        """The newest Tumbleweed snapshot: the version in the mirror's tumbleweed/repo/oss/media.1/media."""
        from kosi.scripts.environment import open_url

        mirror = (config.mirror or OpenSUSE.default_mirror(config.architecture) or "").rstrip("/")
        url = f"{mirror}/tumbleweed/repo/oss/media.1/media"
        try:
            with open_url(config, url, timeout=30) as response:
                text = response.read().decode()
        except OSError as e:
            raise KosiError(f"cannot read the latest snapshot from {url}: {e}") from None
        m = re.search(r"Snapshot(\d{8})", text)
        if not m:
            raise KosiError(f"{url} names no snapshot")
        return m.group(1)

    # ---- installing --------------------------------------------------------------------

    def install(
        self, context: Context, packages: Sequence[str], *, root: Path | None = None, apivfs: bool = True
    ) -> None:
        root = Path(root or context.root)
        self.sync(context)
        self._index_local_repository(context)
        first = not (root / DBPATH.lstrip("/")).is_dir()
        self._import_keys(context, root)
        if first:
            log.step(
                f"Bootstrapping {distribution(context.config).pretty_name} {distribution(context.config).release(context.config)}"
            )
            (root / DBPATH.lstrip("/")).mkdir(parents=True, exist_ok=True)
            # the file system and release package in a transaction of their own, as mkosi 27.1
            base = self.first_packages(context.config)
            self._zypper(context, root, self.install_arguments(context, base), apivfs=apivfs)
        if packages:
            self._zypper(context, root, self.install_arguments(context, packages), apivfs=apivfs)
        self._record(context, root)

    def install_arguments(self, context: Context, packages: Sequence[str]) -> list[str]:
        """`install` as mkosi 27.1 runs it: all downloads first, recommendations only with
        WithRecommends=yes, and conflicts resolved by the solver rather than asked about."""
        recommends = [] if context.config["WithRecommends"] else ["--no-recommends"]
        return ["install", "--download", "in-advance", *recommends, "--force-resolution", *packages]

    def _zypper(
        self, context: Context, root: Path, args: list[str], *, apivfs: bool, options: Sequence[str] = ()
    ) -> str:
        cmd = [*self.zypper_command(context, root), "--no-refresh", *options, *args]
        return self._run(context, cmd, root=root, apivfs=apivfs, what=f"zypper {args[0]}")

    def remove(self, context: Context, packages: Sequence[str]) -> None:
        if packages:
            # a package that is not there is nothing to remove (mkosi 27.1's --ignore-unknown): the
            # default initrd removes shadow and sysuser-shadow, whether something pulled them in or not
            self._zypper(
                context, context.root, ["remove", "--clean-deps", *packages], apivfs=True, options=["--ignore-unknown"]
            )
            self._record(context, context.root)

    def _record(self, context: Context, root: Path) -> None:
        if root == Path(context.root):
            context.state.installer.manifest = self.installed_packages(context, root)

    def installed_packages(self, context: Context, root: Path) -> list[dict]:
        return rpm.query(context, root, DBPATH)

    # ---- after installation ------------------------------------------------------------

    def copy_metadata_into_image(self, context: Context) -> None:
        """The image gets the repository definitions the build used (not LocalMirror=, not the local one)."""
        root = context.root
        if not (root / "usr/bin/zypper").exists():
            return
        reposd = root / "etc/zypp/repos.d"
        if reposd.is_dir() and any(reposd.glob("*.repo")):
            return
        reposd.mkdir(parents=True, exist_ok=True)
        dist = distribution(context.config)
        repos = dist.repositories(context.config, local=False)
        keys = tuple(dist.keys(context.config))
        (reposd / f"{dist.name}.repo").write_text(
            "\n".join(RpmRepository(r.id, r.url, keys, r.enabled, r.check).section() for r in repos)
        )

    def clean_metadata(self, context: Context) -> None:
        mode = context.config["CleanPackageMetadata"]
        if mode == Feature.disabled:
            return
        root = context.root
        always = mode == Feature.enabled
        if always or not (root / "usr/bin/zypper").exists():
            for sub in ("var/lib/zypp", "var/cache/zypp", "var/log/zypp", "etc/zypp/repos.d/mkosi.repo"):
                local_repository.remove_path(root / sub)
        if always or not (root / "usr/bin/rpm").exists():
            for sub in (DBPATH, "var/lib/rpm"):
                local_repository.remove_path(root / sub.lstrip("/"))

    def wrappers(self, context: Context) -> dict[str, list[str]]:
        env = self.env_command(context)
        root = context.root
        sandbox = [*env, *self.sandbox(context, root)]
        zypper = [*sandbox, *self.zypper_command(context, root)]
        return {
            "zypper": zypper,
            "rpm": [*sandbox, "rpm", "--root", str(root), f"--dbpath={DBPATH}"],
            "mkosi-install": [*zypper, "install"],
            "mkosi-reinstall": [*zypper, "install", "--force"],
            "mkosi-upgrade": [*zypper, "update"],
            "mkosi-remove": [*zypper, "remove", "--clean-deps"],
        }
