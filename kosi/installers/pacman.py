"""pacman backend: Arch Linux images.

Layout while building (absolute paths, so one configuration serves every root):

    <workspace>/pacman/pacman.conf              the repositories, SigLevel=, NoExtract= (WithDocs=no)
    <workspace>/pacman/gnupg                    GPGDir: a private keyring, made by pacman-key --init
                                                and --populate archlinux from archlinux-keyring's
                                                files only (never the host's other keyrings)
    <package cache>/arch~<release>~<arch>/pkg   CacheDir: downloaded packages, kept across builds
    <package cache>/arch~<release>~<arch>/db/sync  the repository databases (-Sy), kept across builds
    <root>/var/lib/pacman                       DBPath: the image's own package database; its sync/
                                                gets a copy of the cached databases before each install
    <root>/etc/pacman.d/hooks                   HookDir (the image's own hooks in usr/share/libalpm too)

Local packages (PackageDirectories=, mkosi.packages, $PACKAGEDIR) form the repository
[mkosi] (repo-add), listed first so they win over the distribution's.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kosi import log
from kosi.config.model import Config
from kosi.config.values import Feature
from kosi.distributions.arch import Arch, PacmanRepository, pacman_architecture
from kosi.errors import KosiError
from kosi.installers import apt_keys
from kosi.installers import repository as local_repository
from kosi.installers.apivfs import in_root
from kosi.installers.base import PackageManager, distribution_of
from kosi.installers.pacman_signatures import signed_by
from kosi.sandbox import Mount, last_error_line, run, sandbox_command

if TYPE_CHECKING:
    from kosi.pipeline.context import Context

#: what WithDocs=no keeps out of the image (pacman's NoExtract= globs, relative to the root)
DOC_EXCLUDES = ("usr/share/doc/*", "usr/share/man/*", "usr/share/info/*", "usr/share/gtk-doc/*")
#: the files of archlinux-keyring pacman-key --populate archlinux reads
KEYRING_FILES = ("archlinux.gpg", "archlinux-trusted", "archlinux-revoked")
#: the name of the local repository (PackageDirectories=, $PACKAGEDIR)
LOCAL_REPOSITORY = "mkosi"
#: what package scripts write with the wall clock in it (relative to the root)
UNREPRODUCIBLE = (
    "var/log/pacman.log",
    "var/lib/pacman/db.lck",
)
PACKAGE_SUFFIXES = (".pkg.tar.zst", ".pkg.tar.xz", ".pkg.tar.gz", ".pkg.tar")


def distribution(config: Config) -> type[Arch]:
    return distribution_of(config, Arch, "pacman")


def is_package(path: Path) -> bool:
    return path.name.endswith(PACKAGE_SUFFIXES)


class Pacman(PackageManager):
    name = "pacman"
    unreproducible = UNREPRODUCIBLE

    def sources(self, config: Config) -> list[str]:
        arch = pacman_architecture(config)
        return [
            f"[{r.name}] {r.url.replace('$repo', r.name).replace('$arch', arch)}"
            for r in distribution(config).repositories(config)
        ]

    def first_packages(self, config: Config) -> tuple[str, ...]:
        return ("filesystem",)  # the file system layout: merged /usr, /etc/passwd, ...

    # ---- paths -------------------------------------------------------------------------

    @classmethod
    def cache_architecture(cls, config: Config) -> str:
        return pacman_architecture(config)

    def config_file(self, context: Context) -> Path:
        return self.state_dir(context) / "pacman.conf"

    def sync_dir(self, context: Context) -> Path:
        return self.cache_dir(context) / "db/sync"

    # ---- setup -------------------------------------------------------------------------

    def setup(self, context: Context) -> None:
        state = self.state_dir(context)
        for sub in ("gnupg", "keyrings", "log"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(state / "gnupg", 0o700)
        for sub in ("pkg", "db/sync"):
            (self.cache_dir(context) / sub).mkdir(parents=True, exist_ok=True)

        local_repository.collect(context, is_package)
        self._index_local_repository(context)
        self.config_file(context).write_text(self.pacman_conf(context))
        log.info(f"Using pacman from {f'the tools tree {context.tools}' if context.tools else 'the host'}")

    def siglevel(self, config: Config) -> str:
        return "Required DatabaseOptional" if config.repository_key_check else "Never"

    def pacman_conf(self, context: Context, *, local_repository: bool = True) -> str:
        config = context.config
        dist = distribution(config)
        lines = [
            "[options]",
            f"Architecture = {pacman_architecture(config)}",
            f"SigLevel = {self.siglevel(config)}",
            "LocalFileSigLevel = Optional",
            "ParallelDownloads = 5",
        ]
        if not config["WithDocs"]:
            lines.append(f"NoExtract = {' '.join(DOC_EXCLUDES)}")
        # User configuration from the sandbox trees (mkosi.sandbox/etc/pacman.d/*.conf) comes first,
        # so its repositories are preferred, as pacman prefers repositories in the order listed.
        includes = sorted((context.pkgmngr / "etc/pacman.d").glob("*.conf"))
        sections = []
        if local_repository and has_packages(context.repository):
            sections.append(PacmanRepository(LOCAL_REPOSITORY, f"file://{context.repository}").section("Never"))
        sections += [f"Include = {path}\n" for path in includes]
        sections += [repo.section() for repo in dist.repositories(config)]
        return "\n".join(lines) + "\n\n" + "\n".join(sections)

    def _index_local_repository(self, context: Context) -> None:
        """(Re-)index $PACKAGEDIR when it has packages not indexed yet (build scripts add some)."""
        local_repository.reindex(context, is_package, lambda: repo_add(context.repository, context.tools))

    # ---- running pacman ----------------------------------------------------------------

    def options(self, context: Context, root: Path, dbpath: Path | None = None, conf: Path | None = None) -> list[str]:
        """pacman's options that point it at one image root with our configuration and state
        (the hook directory made first: pacman 7.1 refuses one that does not exist)."""
        (root / "etc/pacman.d/hooks").mkdir(parents=True, exist_ok=True)
        return [
            "--config",
            str(conf or self.config_file(context)),
            "--root",
            str(root),
            "--dbpath",
            str(dbpath or root / "var/lib/pacman"),
            "--cachedir",
            str(self.cache_dir(context) / "pkg"),
            "--gpgdir",
            str(self.state_dir(context) / "gnupg"),
            "--hookdir",
            str(root / "etc/pacman.d/hooks"),
            "--logfile",
            str(self.state_dir(context) / "log/pacman.log"),
            "--arch",
            pacman_architecture(context.config),
            "--color",
            "never",
            "--noconfirm",
        ]

    def sandbox(self, context: Context, root: Path, *, apivfs: bool = True, network: bool = True) -> list[str]:
        extra = [Mount(context.repository, str(context.repository), "ro-bind")] if context.repository.is_dir() else []
        return in_root(context, root, apivfs=apivfs, network=network, extra=extra)

    def _run(
        self, context: Context, cmd: Sequence[str], *, root: Path, apivfs: bool, what: str, network: bool = True
    ) -> str:
        sandbox = self.sandbox(context, root, apivfs=apivfs, network=network)
        return self.run_locked(context, cmd, sandbox=sandbox, what=what, downloads=r"^\s*\S+ downloading\.\.\.$")

    def explain_failure(self, context: Context, what: str, output: str, *, returncode: int | None = None) -> str:
        """pacman's output reduced to the one line a user needs."""
        config = context.config
        dist = distribution(config)
        names = ", ".join(r.name for r in dist.repositories(config))
        lines = output.splitlines()
        for line in lines:
            m = re.match(r"error: target not found: (\S+)", line)
            if m:
                return f"package '{m.group(1)}' not found in {dist.name} ({names})"
        for line in lines:
            m = re.match(r"error: (\S+): signature from \"([^\"]*)\" is (unknown trust|invalid|marginal trust)", line)
            if m:
                return (
                    f'signature check failed for package {m.group(1)}: its signature by "{m.group(2)}" is '
                    f"{m.group(3)} (keyring {self.keyring_origin(context)}; RepositoryKeyCheck=no skips the check)"
                )
            m = re.match(r"error: (?:\S+: )?key \"([^\"]*)\" (?:is unknown|could not be looked up remotely)", line)
            if m:
                signed = [p for p in signed_by(self.sync_dir(context), m.group(1)) if p in output]
                return (
                    f"signature check failed{' for package ' + ', '.join(signed) if signed else ''}: "
                    f"its signer's key {m.group(1)} is not in the keyring {self.keyring_origin(context)} "
                    "(RepositoryKeyCheck=no skips the check)"
                )
        for line in lines:
            m = re.match(r"error: failed retrieving file '([^']+)' from (\S+) : (.*)", line)
            if m:
                return f"cannot fetch {self.url_of(context, m.group(1), m.group(2))}: {m.group(3).strip()}"
        for line in lines:
            m = re.match(r"error: failed to prepare transaction \((.*)\)", line)
            if m:
                detail = next(
                    (l.removeprefix(":: ").strip() for l in lines if l.startswith(":: ") and "required by" in l), ""
                )
                return f"{what}: {m.group(1)}" + (f": {detail}" if detail else "")
        errors = [line[len("error: ") :] for line in lines if line.startswith("error: ")]
        if errors:
            return f"{what}: {errors[-1]}"
        return super().explain_failure(context, what, output, returncode=returncode)

    def url_of(self, context: Context, filename: str, host: str) -> str:
        """The URL of a file pacman failed to download, from the repository it belongs to."""
        config = context.config
        repos = distribution(config).repositories(config)
        name = filename.split(".db")[0] if ".db" in filename or ".files" in filename else None
        repo = next((r for r in repos if r.name == name), None) or next((r for r in repos if host in r.url), None)
        if repo is None:
            return f"{filename} from {host}"
        base = repo.url.replace("$repo", repo.name).replace("$arch", pacman_architecture(config))
        return f"{base}/{filename}"

    # ---- keys ----------------------------------------------------------------------------

    def keyring_origin(self, context: Context) -> str:
        """Where the Arch keyring came from, as the user knows it."""
        if context.config["RepositoryKeyFetch"]:
            return f"{distribution(context.config).keyring_package} from the mirror (RepositoryKeyFetch=yes)"
        keyring = distribution(context.config).keyring
        found = apt_keys.local_keyring(context, keyring)
        if found and found.is_relative_to(context.pkgmngr):
            return f"{keyring} from the sandbox trees"
        return str(found or keyring)

    def setup_keyring(self, context: Context) -> None:
        """A private GPGDir holding only Arch's keys: pacman-key sees a /usr/share/keyrings with
        archlinux-keyring's three files and nothing else, so --populate cannot import Debian's
        (or any other) keyrings the host or tools tree has next to them. Populating Arch's real
        keyring takes half a minute, so the result is kept in the package cache, by the keyring's
        content, and copied into the workspace by later builds."""
        if not context.config.repository_key_check or context.state.installer.keyring_ready:
            return
        keyrings = self.state_dir(context) / "keyrings"
        digest = hashlib.sha256()
        files = self.fetch_keyring(context) if context.config["RepositoryKeyFetch"] else self.local_keyring(context)
        for name, content in files.items():
            (keyrings / name).write_bytes(content)
            digest.update(name.encode() + b"\0" + content + b"\0")
        gnupg = self.state_dir(context) / "gnupg"
        cached = self.cache_dir(context) / f"gnupg-{digest.hexdigest()[:16]}"
        if cached.is_dir():
            shutil.rmtree(gnupg)
            shutil.copytree(cached, gnupg, symlinks=True)
            context.state.installer.keyring_ready = True
            return
        state = self.state_dir(context)
        mounts = [Mount(state, str(state)), Mount(keyrings, "/usr/share/keyrings", "ro-bind")]
        sandbox = sandbox_command(mounts=mounts, tools=context.tools)
        for args in (["--init"], ["--populate", "archlinux"]):
            result = run(
                ["pacman-key", "--config", str(self.config_file(context)), "--gpgdir", str(gnupg), *args],
                sandbox=sandbox,
                env=self.environment(context),
                stdout=-1,
                stderr=-1,
                check=False,
            )
            if result.returncode != 0:
                raise KosiError(
                    f"pacman-key {args[0]} failed with the keyring {self.keyring_origin(context)}: "
                    f"{last_error_line(result.stderr) or result.returncode}"
                )
        partial = cached.with_name(cached.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(gnupg, partial, symlinks=True, ignore=shutil.ignore_patterns("S.*"))
        partial.rename(cached)
        context.state.installer.keyring_ready = True

    def local_keyring(self, context: Context) -> dict[str, bytes]:
        """archlinux-keyring's files from the sandbox trees, the tools tree or the host."""
        dist = distribution(context.config)
        files = {}
        for name in KEYRING_FILES:
            wanted = str(Path(dist.keyring).with_name(name))
            found = apt_keys.local_keyring(context, wanted)
            if found is None and name == "archlinux.gpg":
                where = f"{wanted} (in the tools tree {context.tools})" if context.tools else wanted
                raise KosiError(
                    f"keyring {where} for the Arch Linux repositories is missing: install "
                    f"{dist.keyring_package}, use ToolsTree=default, or set RepositoryKeyFetch=yes "
                    "(or RepositoryKeyCheck=no)"
                )
            files[name] = found.read_bytes() if found else b""
        return files

    def fetch_keyring(self, context: Context) -> dict[str, bytes]:
        """RepositoryKeyFetch=yes, as mkosi 27.1: the archlinux-keyring package of the synced
        repositories, downloaded from the mirror (trusted as the mirror's transport is: its
        signature cannot be checked before there is a keyring) and unpacked."""
        package = distribution(context.config).keyring_package
        state = self.state_dir(context)
        conf = state / "pacman-keyring.conf"
        conf.write_text(
            self.pacman_conf(context, local_repository=False).replace(self.siglevel(context.config), "Never")
        )
        dbpath = self.cache_dir(context) / "db"
        cmd = ["pacman", *self.options(context, state, dbpath, conf), "--noprogressbar"]
        url = self._run(context, [*cmd, "-Sp", package], root=state, apivfs=False, what=f"pacman -Sp {package}")
        path = self.cache_dir(context) / "pkg" / url.strip().splitlines()[0].rsplit("/", 1)[-1]
        if not path.exists():
            self._run(context, [*cmd, "-Sw", package], root=state, apivfs=False, what=f"pacman -Sw {package}")
        unpacked = state / "fetched-keyring"
        shutil.rmtree(unpacked, ignore_errors=True)
        unpacked.mkdir()
        mounts = [Mount(path, str(path), "ro-bind"), Mount(unpacked, str(unpacked))]
        result = run(
            ["bsdtar", "-xf", str(path), "-C", str(unpacked), "usr/share/pacman/keyrings"],
            sandbox=sandbox_command(mounts=mounts, tools=context.tools),
            stdout=-1,
            stderr=-1,
            check=False,
        )
        keyrings = unpacked / "usr/share/pacman/keyrings"
        if result.returncode != 0 or not (keyrings / "archlinux.gpg").is_file():
            reason = last_error_line(result.stderr) or "no usr/share/pacman/keyrings/archlinux.gpg in it"
            raise KosiError(f"RepositoryKeyFetch=yes: cannot unpack {path.name} from the mirror: {reason}")
        return {name: (keyrings / name).read_bytes() if (keyrings / name).exists() else b"" for name in KEYRING_FILES}

    # ---- metadata ----------------------------------------------------------------------

    def sync(self, context: Context, force: bool = False) -> None:
        if context.state.installer.synced and not force:
            return
        if self.metadata_from_cache(context, any(self.sync_dir(context).glob("*.db"))):
            context.state.installer.synced = True
            return
        fetch = context.config["RepositoryKeyFetch"]
        if not fetch:  # a fetched keyring comes from the databases synced first
            self.setup_keyring(context)
        dbpath = self.cache_dir(context) / "db"
        # The databases of the distribution's repositories only: the local one is synced per install.
        conf = self.state_dir(context) / "pacman-sync.conf"
        conf.write_text(self.pacman_conf(context, local_repository=False))
        cmd = ["pacman", *self.options(context, self.state_dir(context), dbpath, conf), "-Sy", "--noprogressbar"]
        self._run(context, cmd, root=self.state_dir(context), apivfs=False, what="pacman -Sy")
        context.state.installer.synced = True
        if fetch:
            self.setup_keyring(context)

    def _prepare_root(self, context: Context, root: Path) -> None:
        """The image's database directory with a copy of the cached repository databases."""
        for sub in ("var/lib/pacman/sync", "var/cache/pacman/pkg", "etc/pacman.d/hooks", "var/log"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        target = root / "var/lib/pacman/sync"
        for db in self.sync_dir(context).iterdir():
            if db.is_file() and db.name != f"{LOCAL_REPOSITORY}.db":
                shutil.copy2(db, target / db.name)

    def _sync_local_repository(self, context: Context, root: Path) -> None:
        """Build scripts may have added packages to $PACKAGEDIR: index them and give the root the database."""
        self._index_local_repository(context)
        self.config_file(context).write_text(self.pacman_conf(context))
        if has_packages(context.repository):
            shutil.copy2(
                context.repository / f"{LOCAL_REPOSITORY}.db.tar",
                root / "var/lib/pacman/sync" / f"{LOCAL_REPOSITORY}.db",
            )

    def latest_snapshot(self, config: Config) -> str:
        """The newest day archive.archlinux.org has (its repos/last/lastsync, a Unix time)."""
        from kosi.scripts.environment import open_url

        dist = distribution(config)
        url = f"{(config.mirror or dist.snapshot_service).rstrip('/')}/repos/last/lastsync"
        try:
            with open_url(config, url, timeout=30) as response:
                stamp = int(response.read().decode().strip())
        except (OSError, ValueError) as e:
            raise KosiError(f"cannot read the latest snapshot from {url}: {e}") from None
        return time.strftime("%Y/%m/%d", time.gmtime(stamp))

    # ---- installing --------------------------------------------------------------------

    def install(
        self, context: Context, packages: Sequence[str], *, root: Path | None = None, apivfs: bool = True
    ) -> None:
        root = Path(root or context.root)
        self.sync(context)
        self.setup_keyring(context)
        first = not (root / "var/lib/pacman/local").is_dir()
        self._prepare_root(context, root)
        self._sync_local_repository(context, root)
        if first:
            log.step(f"Bootstrapping {distribution(context.config).pretty_name}")
            # The file system layout (merged /usr, /etc/passwd, ...) comes first, from Arch's own package.
            self._pacman(context, root, ["-S", "--needed", *self.first_packages(context.config)], apivfs=False)
        if packages:
            self._pacman(context, root, ["-S", "--needed", *packages], apivfs=apivfs)

    def _pacman(self, context: Context, root: Path, args: list[str], *, apivfs: bool) -> str:
        # kosi builds the initrd: kernel packages must not pull mkinitcpio or dracut
        cmd = ["pacman", *self.options(context, root), "--assume-installed", "initramfs", *args, "--noprogressbar"]
        return self._run(context, cmd, root=root, apivfs=apivfs, what=f"pacman {args[0]}")

    def remove(self, context: Context, packages: Sequence[str]) -> None:
        # Only what is installed, by exact name, as mkosi 27.1 (pacman -R stops at the first
        # name it does not find); a package only named in another's provides is not removed.
        installed = {package["name"] for package in installed_packages(context.root)}
        packages = [name for name in packages if name in installed]
        if not packages:
            return
        cmd = [
            "pacman",
            *self.options(context, context.root),
            "-R",
            "--nosave",
            "--recursive",
            "--noprogressbar",
            *packages,
        ]
        self._run(context, cmd, root=context.root, apivfs=True, what="pacman -R", network=False)

    # ---- after installation ------------------------------------------------------------

    def copy_metadata_into_image(self, context: Context) -> None:
        """The image keeps the repository databases the build used (install copies them into
        var/lib/pacman/sync); the local repository's is dropped, its packages are not in the image."""
        (context.root / "var/lib/pacman/sync" / f"{LOCAL_REPOSITORY}.db").unlink(missing_ok=True)

    def clean_metadata(self, context: Context) -> None:
        mode = context.config["CleanPackageMetadata"]
        if mode == Feature.disabled:
            return
        root = context.root
        if mode == Feature.enabled or not (root / "usr/bin/pacman").exists():
            context.state.installer.manifest = installed_packages(root)  # the manifest needs them later
            for sub in ("var/lib/pacman", "var/cache/pacman", "var/log/pacman.log"):
                local_repository.remove_path(root / sub)

    def wrappers(self, context: Context) -> dict[str, list[str]]:
        env = self.env_command(context)
        root = context.root
        pacman = [*env, *self.sandbox(context, root), "pacman", *self.options(context, root)]
        return {
            "pacman": pacman,
            "mkosi-install": [*pacman, "-S", "--needed", "--noprogressbar"],
            "mkosi-reinstall": [*pacman, "-S", "--noprogressbar"],
            "mkosi-upgrade": [*pacman, "-Syu", "--noprogressbar"],
            "mkosi-remove": [*pacman, "-R", "--nosave", "--recursive", "--noprogressbar"],
        }


# ---- the local repository and the package database ------------------------------------------


def has_packages(repository: Path) -> bool:
    return local_repository.has_packages(repository, is_package)


def repo_add(repository: Path, tools: Path | None) -> None:
    """(Re)write the local repository's database with repo-add."""
    database = repository / f"{LOCAL_REPOSITORY}.db.tar"
    for old in repository.glob(f"{LOCAL_REPOSITORY}.*"):
        old.unlink()
    packages = sorted(str(p) for p in repository.iterdir() if is_package(p))
    sandbox = sandbox_command(mounts=[Mount(repository, str(repository))], tools=tools)
    result = run(["repo-add", "--quiet", str(database), *packages], sandbox=sandbox, stdout=-1, stderr=-1, check=False)
    if result.returncode != 0:
        raise KosiError(f"repo-add failed in {repository}: {last_error_line(result.stderr) or result.returncode}")


def installed_packages(root: Path) -> list[dict]:
    """The image's installed packages from pacman's local database (var/lib/pacman/local/*/desc),
    as mkosi 27.1 records them: type "pkg", in the order of the database's directories, the
    source package being %BASE%, and no size (0)."""
    local = root / "var/lib/pacman/local"
    packages = []
    for desc in sorted(local.glob("*/desc")) if local.is_dir() else []:
        fields: dict[str, list[str]] = {}
        key = None
        for line in desc.read_text(errors="replace").splitlines():
            if line.startswith("%") and line.endswith("%"):
                key = line.strip("%")
                fields[key] = []
            elif line and key:
                fields[key].append(line)
        one = {k: v[0] if v else "" for k, v in fields.items()}
        packages.append(
            {
                "type": "pkg",
                "name": one.get("NAME", ""),
                "version": one.get("VERSION", ""),
                "architecture": one.get("ARCH", ""),
                "size": 0,
                "source": one.get("BASE", ""),
            }
        )
    return packages
