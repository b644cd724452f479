"""apk backend: postmarketOS images.

apk-tools is not packaged for Debian, so kosi's default tools tree has no apk: a postmarketOS
build needs `apk` on the host's PATH (no tools tree) or in the tools tree ToolsTree= names,
and is refused in one line before anything runs otherwise (`check_available`).

Layout while building:

    <workspace>/apk/repositories        --repositories-file: the distribution's repositories
    <workspace>/apk/keys/               --keys-dir: the sandbox trees' etc/apk/keys, else the tools
                                        tree's (or host's) /etc/apk/keys
    <package cache>/postmarketos~<release>~<arch>/   --cache-dir: indexes and packages
    <root>/lib/apk/db                   the image's package database

UNTESTED against a real apk: no apk exists on the machines kosi is developed on, so only the
parts that need no apk are tested (repositories, the refusal, the manifest parser) and the
command lines, which equal mkosi 27.1's through a fake apk (tests/installers/test_invocations.py).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kosi import log
from kosi.config.model import Config
from kosi.config.values import Feature
from kosi.distributions.postmarketos import PostmarketOS, apk_architecture
from kosi.errors import KosiError
from kosi.installers import repository as local_repository
from kosi.installers.apivfs import in_root
from kosi.installers.base import PackageManager, distribution_of
from kosi.installers.base import environment as common_environment
from kosi.sandbox import Mount, last_error_line, run

if TYPE_CHECKING:
    from kosi.pipeline.context import Context

UNREPRODUCIBLE = ("var/cache/apk",)

#: after the build's one `apk update`: the cached indexes never expire (as mkosi 27.1)
CACHED = ("--cache-max-age", "999999999")
#: installing, as mkosi 27.1: a database created when there is none, installed packages upgraded
ADD = (*CACHED, "add", "--initdb", "--upgrade")


def distribution(config: Config) -> type[PostmarketOS]:
    return distribution_of(config, PostmarketOS, "apk")


def find_apk(config: Config) -> Path | None:
    """apk where the build will run it: in ExtraSearchPaths= (first on the sandbox's $PATH), else
    in ToolsTree= when it names a tree, else on the host's PATH."""
    for directory in config["ExtraSearchPaths"] or []:
        if (Path(directory) / "apk").is_file():
            return Path(directory) / "apk"
    tools = str(config["ToolsTree"] or "")
    if tools in ("default", "yes"):
        return None  # kosi's default tree is Debian's, which has no apk-tools
    if tools and tools not in ("no", "none"):
        return next(
            (
                Path(tools) / d / "apk"
                for d in ("usr/bin", "usr/sbin", "sbin", "bin")
                if (Path(tools) / d / "apk").exists()
            ),
            None,
        )
    found = shutil.which("apk")
    return Path(found) if found else None


class Apk(PackageManager):
    name = "apk"
    unreproducible = UNREPRODUCIBLE

    @classmethod
    def check_available(cls, config: Config) -> None:
        if find_apk(config) is None:
            where = f"in the tools tree {config['ToolsTree']}" if config["ToolsTree"] else "on PATH"
            raise KosiError(
                f"Distribution=postmarketos needs apk (apk-tools), which is not {where}: apk-tools is "
                "not packaged for Debian; install it, or name a tools tree that has it with ToolsTree="
            )

    def sources(self, config: Config) -> list[str]:
        return [f"[{r.name}] {r.url}" for r in distribution(config).repositories(config)]

    def first_packages(self, config: Config) -> tuple[str, ...]:
        return ("postmarketos-baselayout", "postmarketos-release")

    @classmethod
    def cache_architecture(cls, config: Config) -> str:
        return apk_architecture(config)

    def setup(self, context: Context) -> None:
        config = context.config
        if local_repository.package_directories(config):
            raise KosiError("PackageDirectories=: kosi cannot make an apk repository yet (postmarketOS)")
        state = self.state_dir(context)
        (state / "keys").mkdir(parents=True, exist_ok=True)
        self.cache_dir(context).mkdir(parents=True, exist_ok=True)
        repos = distribution(config).repositories(config)
        (state / "repositories").write_text("".join(f"{r.url}\n" for r in repos))
        base = Path(context.tools) if context.tools else Path("/")
        for source in (context.pkgmngr / "etc/apk/keys", base / "etc/apk/keys"):
            if source.is_dir() and any(source.iterdir()):
                for key in source.iterdir():
                    shutil.copyfile(key, state / "keys" / key.name)
                break

    def options(self, context: Context, root: Path) -> list[str]:
        state = self.state_dir(context)
        options = [
            "--root",
            str(root),
            "--arch",
            apk_architecture(context.config),
            "--repositories-file",
            str(state / "repositories"),
            "--keys-dir",
            str(state / "keys"),
            "--cache-dir",
            str(self.cache_dir(context)),
            # as mkosi 27.1: keep the packages, download them all before installing any, and let
            # package scripts see the build's environment
            "--cache-packages",
            "--cache-predownload",
            "--preserve-env",
            "--no-interactive",
            "--no-progress",
        ]
        if not context.config.repository_key_check:
            options.append("--allow-untrusted")
        if str(context.config["CacheOnly"]) in ("always", "metadata"):
            options.append("--no-network")
        return options

    def _apk(self, context: Context, root: Path, args: Sequence[str], *, apivfs: bool = True) -> str:
        result = run(
            ["apk", *self.options(context, root), *args],
            sandbox=in_root(context, root, apivfs=apivfs),
            env=common_environment(context),
            stdout=-1,
            stderr=-1,
            check=False,
            input="",
        )
        output = f"{result.stdout}\n{result.stderr}"
        if log.DEBUG:
            log.debug(output.rstrip())
        if result.returncode != 0:
            missing = [line for line in output.splitlines() if "(no such package)" in line]
            if missing:
                name = missing[0].split(":")[0].strip()
                raise KosiError(
                    f"package '{name}' not found in postmarketOS {distribution(context.config).release(context.config)}"
                )
            raise KosiError(f"apk {args[0]} failed: {last_error_line(output) or result.returncode}")
        return result.stdout

    def sync(self, context: Context, force: bool = False) -> None:
        if context.state.installer.synced and not force:
            return
        if str(context.config["CacheOnly"]) not in ("always", "metadata"):
            # as mkosi 27.1: an empty database, then the indexes (here in a root of their own)
            sync_root = self.state_dir(context) / "sync-root"
            sync_root.mkdir(exist_ok=True)
            self._apk(context, sync_root, [*CACHED, "add", "--initdb"], apivfs=False)
            self._apk(context, sync_root, ["update"], apivfs=False)
        context.state.installer.synced = True

    def install(
        self, context: Context, packages: Sequence[str], *, root: Path | None = None, apivfs: bool = True
    ) -> None:
        root = Path(root or context.root)
        self.sync(context)
        if not (root / "lib/apk/db/installed").exists():
            # the base layout and release package in a transaction of their own, as mkosi 27.1
            self._apk(context, root, [*ADD, *self.first_packages(context.config)], apivfs=apivfs)
        if packages:
            self._apk(context, root, [*ADD, *packages], apivfs=apivfs)
        if root == Path(context.root):
            context.state.installer.manifest = installed_packages(root)

    def remove(self, context: Context, packages: Sequence[str]) -> None:
        if not packages:
            return
        # Only what is installed, as mkosi 27.1: the names apk's query finds installed, by
        # package name or by what a package provides (without its version).
        query = ["query", "--installed", "--format", "json", "--match", "name,provides", "--fields", "name,provides"]
        found = self._apk(context, context.root, [*CACHED, *query, *packages])
        installed = set()
        for package in json.loads(found or "[]"):
            installed.add(package.get("name"))
            installed.update(provided.split("=", 1)[0] for provided in package.get("provides") or ())
        packages = [name for name in packages if name in installed]
        if packages:
            self._apk(context, context.root, [*CACHED, "del", *packages])
            context.state.installer.manifest = installed_packages(context.root)

    def copy_metadata_into_image(self, context: Context) -> None:
        """The image gets /etc/apk/repositories naming the mirror the build used (not LocalMirror=)."""
        root = context.root
        target = root / "etc/apk/repositories"
        if not (root / "sbin/apk").exists() or target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        repos = distribution(context.config).repositories(context.config, local=False)
        target.write_text("".join(f"{r.url}\n" for r in repos))

    def clean_metadata(self, context: Context) -> None:
        mode = context.config["CleanPackageMetadata"]
        if mode == Feature.disabled:
            return
        root = context.root
        if mode == Feature.enabled or not (root / "sbin/apk").exists():
            for sub in ("lib/apk", "var/cache/apk", "etc/apk"):
                local_repository.remove_path(root / sub)

    def wrappers(self, context: Context) -> dict[str, list[str]]:
        env = self.env_command(context)
        root = context.root
        state = self.state_dir(context)
        apk = [
            *env,
            *in_root(context, root, extra=[Mount(state, str(state), "ro-bind")]),
            "apk",
            *self.options(context, root),
        ]
        return {
            "apk": apk,
            "mkosi-install": [*apk, "add"],
            "mkosi-reinstall": [*apk, "fix", "--reinstall"],
            "mkosi-upgrade": [*apk, "upgrade"],
            "mkosi-remove": [*apk, "del"],
        }


def installed_packages(root: Path) -> list[dict]:
    """The image's packages from apk's database (lib/apk/db/installed: one stanza per package)."""
    db = root / "lib/apk/db/installed"
    if not db.exists():
        return []
    packages = []
    for stanza in db.read_text(errors="replace").split("\n\n"):
        fields = {line[0]: line[2:] for line in stanza.splitlines() if len(line) > 1 and line[1] == ":"}
        if "P" in fields:
            packages.append(
                {
                    "type": "apk",
                    "name": fields["P"],
                    "version": fields.get("V", ""),
                    "architecture": fields.get("A", ""),
                    "size": int(fields.get("I") or 0),
                    "source": fields.get("o") or fields["P"],
                }
            )
    return sorted(packages, key=lambda p: p["name"])
