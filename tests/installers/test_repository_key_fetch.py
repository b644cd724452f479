"""RepositoryKeyFetch= for apt distributions (see kosi/installers/apt_keys.py).

The real tests fetch debian-archive-keyring from Debian's archive over HTTPS: once directly
(the keyring must verify the archive's InRelease with gpgv), and once in a build on a "host"
without Debian's keyrings (a private mount namespace with /usr/share/keyrings emptied), where
apt-get update then checks the archive against the fetched keyring.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from kosi.config.model import Config
from kosi.distributions.debian import deb_architecture
from kosi.errors import KosiError
from kosi.installers import apt_keys
from kosi.installers.apt import Apt, distribution, sandbox_keyring
from kosi.pipeline.context import Context

REPO = Path(__file__).resolve().parents[2]
PKGCACHE = Path("/var/tmp/kosi-test-pkgcache-pipeline")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def context(tmp_path: Path, tools: Path | None = None, **settings) -> Context:
    config = Config({"Distribution": "debian", "Release": "trixie", **settings}, directory=tmp_path)
    return Context(config=config, workspace=tmp_path / "ws", package_cache=tmp_path / "cache", tools=tools)


def test_fetch_uri_is_https_or_local():
    assert apt_keys.fetch_uri("http://deb.debian.org/debian") == "https://deb.debian.org/debian"
    assert apt_keys.fetch_uri("https://mirror.example/debian") == "https://mirror.example/debian"
    assert apt_keys.fetch_uri("file:/srv/mirror") == "file:/srv/mirror"
    with pytest.raises(KosiError, match="RepositoryKeyFetch="):
        apt_keys.fetch_uri("ftp://mirror.example/debian")


def test_keyring_in_package_takes_the_pgp_name_too(tmp_path):
    (tmp_path / "usr/share/keyrings").mkdir(parents=True)
    assert apt_keys.keyring_in_package(tmp_path, KEYRING) is None
    (tmp_path / "usr/share/keyrings/debian-archive-keyring.pgp").write_bytes(b"k")
    assert apt_keys.keyring_in_package(tmp_path, KEYRING).name == "debian-archive-keyring.pgp"


def test_keyring_resolution_order(tmp_path):
    """The tools tree's keyring, else a fetched one in the package cache, else none."""
    tools = tmp_path / "tools"
    (tools / "usr/share/keyrings").mkdir(parents=True)
    ctx = context(tmp_path, tools)
    assert Apt.keyring_path(ctx, KEYRING) is None
    assert sandbox_keyring(ctx, KEYRING) == KEYRING  # missing: apt is told the declared path
    fetched = apt_keys.fetched_keyring(Apt.cache_dir(ctx), KEYRING)
    fetched.parent.mkdir(parents=True)
    fetched.write_bytes(b"k")
    assert Apt.keyring_path(ctx, KEYRING) == fetched
    assert sandbox_keyring(ctx, KEYRING) == str(fetched)  # the package cache is at its own path in the sandbox
    (tools / KEYRING.lstrip("/")).write_bytes(b"k")
    assert Apt.keyring_path(ctx, KEYRING) == tools / KEYRING.lstrip("/")
    assert sandbox_keyring(ctx, KEYRING) == KEYRING  # the tools tree's /usr is the sandbox's


def test_cache_only_always_does_not_fetch(tmp_path):
    ctx = context(tmp_path, CacheOnly="always")
    dist = distribution(ctx.config)
    with pytest.raises(KosiError, match="CacheOnly=always"):
        apt_keys.fetch_keyring(ctx, dist, dist.repositories(ctx.config)[0], Apt.cache_dir(ctx), {}, "amd64")


@pytest.mark.image
def test_fetched_keyring_verifies_the_archive(tmp_path):
    ctx = context(tmp_path, RepositoryKeyFetch=True)
    dist = distribution(ctx.config)
    keyring = apt_keys.fetch_keyring(
        ctx,
        dist,
        dist.repositories(ctx.config)[0],
        Apt.cache_dir(ctx),
        Apt().environment(ctx),
        deb_architecture(ctx.config),
    )
    assert keyring == tmp_path / "cache/debian~trixie~amd64/keyring/debian-archive-keyring.gpg"
    with urllib.request.urlopen("https://deb.debian.org/debian/dists/trixie/InRelease", timeout=60) as response:
        (tmp_path / "InRelease").write_bytes(response.read())
    check = subprocess.run(
        ["gpgv", "--keyring", str(keyring), str(tmp_path / "InRelease")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    assert "Good signature" in check.stderr and "trixie" in check.stderr
    assert not any((tmp_path / "ws").iterdir())  # the fetch's private apt state is gone


def build_without_host_keyrings(directory: Path, fetch: str) -> subprocess.CompletedProcess:
    """`kosi build` in a mount namespace whose /usr/share/keyrings is empty."""
    (directory / "mkosi.output").mkdir(parents=True, exist_ok=True)
    (directory / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=debian\nRelease=trixie\nRepositoryKeyFetch=" + fetch + "\n\n"
        "[Output]\nFormat=directory\nOutput=image\n\n"
        f"[Build]\nPackageCacheDirectory={PKGCACHE}\nWorkspaceDirectory={directory / 'ws'}\n"
    )
    # The workspace is kept to show which keyring apt was given.
    script = (
        f"mount -t tmpfs tmpfs /usr/share/keyrings && test ! -e {KEYRING} && "
        f"exec {sys.executable} {REPO / 'bin/kosi'} -C {directory} --debug-workspace -f build"
    )
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script], capture_output=True, text=True
    )


@pytest.mark.image
@pytest.mark.skipif(os.getuid() != 0, reason="needs root for the mount namespace")
def test_build_on_a_host_without_the_keyring(tmp_path):
    fetched = PKGCACHE / "debian~trixie~amd64/keyring/debian-archive-keyring.gpg"
    fetched.unlink(missing_ok=True)
    try:
        refused = build_without_host_keyrings(tmp_path / "nofetch", "no")
        assert refused.returncode == 1, refused.stderr[-3000:]
        assert "Traceback" not in refused.stderr
        line = refused.stderr.strip().splitlines()[-1]
        assert KEYRING in line and "RepositoryKeyFetch=yes" in line, line

        built = build_without_host_keyrings(tmp_path / "fetch", "yes")
        assert built.returncode == 0, built.stderr[-4000:]
        assert "Fetching debian-archive-keyring from https://deb.debian.org/debian" in built.stderr
        assert fetched.is_file()
        assert (tmp_path / "fetch/mkosi.output/image/var/lib/dpkg/status").stat().st_size > 0
        # apt-get update checked the archive against the fetched keyring (not the host's).
        sources = list((tmp_path / "fetch/ws").glob("*/pkgmngr/etc/apt/sources.list.d/debian.sources"))
        assert len(sources) == 1
        assert f"Signed-By: {fetched}\n" in sources[0].read_text()
    finally:
        fetched.unlink(missing_ok=True)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root for the sandbox")
def test_fetch_from_a_local_mirror(tmp_path):
    """A file:/ mirror outside everything the sandbox shows is bound in; a keyring package that
    ships the keyring as .pgp (as newer ones do) is accepted."""
    mirror = tmp_path / "mirror"
    tree = tmp_path / "pkg"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        "Package: debian-archive-keyring\nVersion: 9999\nArchitecture: all\n"
        "Maintainer: kosi tests <kosi@kosi.invalid>\nDescription: test keyring\n"
    )
    (tree / "usr/share/keyrings").mkdir(parents=True)
    (tree / "usr/share/keyrings/debian-archive-keyring.pgp").write_bytes(b"not really a keyring\n")
    pool = mirror / "pool/main"
    pool.mkdir(parents=True)
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(tree), str(pool / "keyring_9999_all.deb")],
        check=True,
        capture_output=True,
    )
    binary = mirror / "dists/trixie/main/binary-amd64"
    binary.mkdir(parents=True)
    packages = subprocess.run(["dpkg-scanpackages", "pool"], cwd=mirror, check=True, capture_output=True).stdout
    (binary / "Packages").write_bytes(packages)
    digest = hashlib.sha256(packages).hexdigest()
    (mirror / "dists/trixie/Release").write_text(
        "Suite: trixie\nCodename: trixie\nComponents: main\nArchitectures: amd64\n"
        f"SHA256:\n {digest} {len(packages)} main/binary-amd64/Packages\n"
    )

    ctx = context(tmp_path / "build", LocalMirror=f"file:{mirror}")
    dist = distribution(ctx.config)
    repo = dist.repositories(ctx.config)[0]
    assert repo.uri == f"file:{mirror}"
    keyring = apt_keys.fetch_keyring(ctx, dist, repo, Apt.cache_dir(ctx), {"PATH": os.environ["PATH"]}, "amd64")
    assert keyring.read_bytes() == b"not really a keyring\n"
    assert keyring.name == "debian-archive-keyring.gpg"  # where apt is told to look, whatever the package calls it
