"""The keyring apt checks a distribution's archive against, and RepositoryKeyFetch= for apt.

A keyring is looked for where the package manager sandbox finds it: in the tools tree (or on
the host without one), then in the package cache where an earlier fetch left it.

RepositoryKeyFetch=yes, for Debian, Ubuntu and Kali: when the keyring is in neither place,
kosi downloads the distribution's keyring package (debian-archive-keyring, ubuntu-keyring,
kali-archive-keyring) for the release being built from the distribution's own archive (the
mirror the build uses, or its local mirror) with apt, and keeps the keyring file from it in
the package cache, so that happens once per distribution, release and architecture.

Trust: until there is a key, nothing the archive signs can be checked, so the keyring is only
as trustworthy as the connection it came over. kosi therefore fetches over HTTPS only (an
http:// mirror is asked over https://; a mirror that cannot do HTTPS is an error, not a silent
downgrade), with apt checking each file against the hashes of the index above it, which is the
same trust as downloading a key from the distribution's web site. A local mirror (file:/) is
trusted like the rest of the local file system. Right after the fetch, `apt-get update`
checks the archive's InRelease against the fetched keyring, so a keyring that does not sign
the archive fails the build at once. RepositoryKeyFetch=no (the default except on Ubuntu hosts
without a tools tree) never downloads a key: the keyring package must be installed.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from kosi import log
from kosi.errors import KosiError
from kosi.installers.apt_sources import local_path
from kosi.sandbox import Mount, last_error_line, run, sandbox_command

if TYPE_CHECKING:
    from kosi.distributions.debian import AptRepository, Debian
    from kosi.pipeline.context import Context


def fetched_keyring(cache: Path, keyring: str) -> Path:
    """Where a fetched keyring lives in the package cache (`cache`: the dist~release~arch one)."""
    return cache / "keyring" / Path(keyring).name


def local_keyring(context: "Context", keyring: str) -> Path | None:
    """The keyring in the sandbox's /usr and /etc (the tools tree's, or the host's), if there.
    A sandbox tree's copy (mkosi.sandbox/usr/share/keyrings/...) wins: the manual puts sandbox
    trees on top of the sandbox's root."""
    base = Path(context.tools) if context.tools else Path("/")
    for candidate in (context.pkgmngr / keyring.lstrip("/"), base / keyring.lstrip("/")):
        if candidate.exists():
            return candidate
    return None


def fetch_uri(uri: str) -> str:
    """The URI the keyring package is fetched from: HTTPS, or a local mirror."""
    if uri.startswith("http://"):
        return "https://" + uri[len("http://") :]
    if uri.startswith(("https://", "file:", "copy:")):
        return uri
    raise KosiError(
        f"RepositoryKeyFetch=: cannot fetch a keyring from {uri} (only https:// and local mirrors "
        "are trusted for that); install the distribution's keyring package instead"
    )


def keyring_in_package(tree: Path, keyring: str) -> Path | None:
    """The keyring file in an extracted keyring package: at its usual path, or (newer packages
    ship .pgp files and keep .gpg as a link) under the other suffix."""
    path = tree / keyring.lstrip("/")
    for candidate in (path, path.with_suffix(".pgp"), path.with_suffix(".gpg")):
        if candidate.is_file():
            return candidate
    return None


def apt_options(work: Path, architecture: str) -> list[str]:
    """A private apt state in `work`: the build's lists and archives see nothing of the
    unverified index the fetch uses."""
    (work / "lists/partial").mkdir(parents=True, exist_ok=True)
    (work / "cache/archives/partial").mkdir(parents=True, exist_ok=True)
    (work / "parts").mkdir(exist_ok=True)
    (work / "status").touch()
    options = {
        "Dir": "/",
        "Dir::Etc": work,
        "Dir::Etc::SourceList": work / "sources.list",
        "Dir::Etc::SourceParts": work / "parts",
        "Dir::Etc::Parts": work / "parts",
        "Dir::Etc::Preferences": work / "preferences",
        "Dir::Etc::PreferencesParts": work / "parts",
        "Dir::Etc::Trusted": work / "trusted.gpg",
        "Dir::Etc::TrustedParts": work / "parts",
        "Dir::State": work,
        "Dir::State::Lists": work / "lists",
        "Dir::State::Status": work / "status",
        "Dir::Cache": work / "cache",
        "Dir::Log": work,
        "APT::Architecture": architecture,
        "APT::Architectures": architecture,
        "APT::Sandbox::User": "root",
        "Acquire::Languages": "none",
        "Acquire::Retries": "3",
        "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled": "false",
    }
    return [item for key, value in options.items() for item in ("-o", f"{key}={value}")]


def fetch_keyring(
    context: "Context",
    dist: "type[Debian]",
    repo: "AptRepository",
    cache: Path,
    environment: Mapping[str, str],
    architecture: str,
) -> Path:
    """Download `dist`'s keyring package from `repo`'s archive and keep its keyring in `cache`."""
    target = fetched_keyring(cache, repo.keyring or dist.keyring)
    if str(context.config["CacheOnly"]) == "always":
        raise KosiError(
            f"RepositoryKeyFetch=: the keyring {dist.keyring} is not in the package cache and "
            "CacheOnly=always forbids downloading it"
        )
    uri = fetch_uri(repo.uri)
    log.step(f"Fetching {dist.keyring_package} from {uri} (RepositoryKeyFetch=yes)")
    context.workspace.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="keyring-", dir=context.workspace) as tmp:
        work = Path(tmp)
        (work / "sources.list").write_text(f"deb [trusted=yes] {uri} {repo.suite} main\n")
        (work / "download").mkdir()
        mounts = [Mount(work, str(work))]
        local = local_path(uri)
        if local is not None and local.exists():
            mounts.append(Mount(local, str(local), "ro-bind"))
        env = {**environment, "APT_CONFIG": "/dev/null"}
        options = apt_options(work, architecture)
        for args, workdir in ((["update"], None), (["download", dist.keyring_package], str(work / "download"))):
            sandbox = sandbox_command(mounts=mounts, tools=context.tools, network=True, workdir=workdir)
            result = run(["apt-get", *options, *args], sandbox=sandbox, env=env, stdout=-1, stderr=-1, check=False)
            if result.returncode != 0:
                raise KosiError(
                    f"RepositoryKeyFetch=: cannot fetch {dist.keyring_package} from {uri}: "
                    f"{last_error_line(result.stderr) or last_error_line(result.stdout) or 'apt-get failed'}"
                )
        debs = sorted((work / "download").glob("*.deb"))
        if not debs:
            raise KosiError(f"RepositoryKeyFetch=: apt downloaded no {dist.keyring_package} from {uri}")
        tree = work / "tree"
        run(
            ["dpkg-deb", "-x", str(debs[0]), str(tree)],
            sandbox=sandbox_command(mounts=mounts, tools=context.tools),
            stderr=-1,
        )
        found = keyring_in_package(tree, dist.keyring)
        if found is None:
            raise KosiError(f"RepositoryKeyFetch=: {debs[0].name} has no {dist.keyring}")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        shutil.copyfile(found, partial)
        partial.rename(target)  # atomic: a concurrent build sees the whole keyring or none
    log.info(f"fetched {dist.keyring} into {target}")
    return target
