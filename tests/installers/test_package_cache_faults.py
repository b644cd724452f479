"""A truncated or corrupt package in the package cache is detected and fetched again.

apt takes a cached .deb of the right size without checking its checksum (proven by
test_apt_alone_takes_a_corrupt_deb_of_the_right_size), so kosi checks cached packages
against the SHA256 of the repository metadata before apt uses them; a truncated one apt
notices itself by its size. dnf checks the checksum of a cached rpm itself: proven with a
local repository.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_dnf_images import FEDORA_KEY, mirror, project as rpm_project, rpm_qa  # noqa: F401

from tests.pipeline.test_cache_faults import assert_nothing_left

image = pytest.mark.image
REPO = Path(__file__).resolve().parents[2]
SHARED = Path("/var/cache/kosi/packages/debian~trixie~amd64")


def kosi(directory: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "bin/kosi"), "-C", str(directory), "-f", "build"],
        capture_output=True,
        text=True,
        env=dict(os.environ, NO_COLOR="1"),
    )


def seed(cache: Path) -> Path:
    """A private copy of the shared trixie package cache (metadata copied, packages linked:
    apt never writes a cached .deb in place, and the test replaces files, never edits them)."""
    target = cache / "debian~trixie~amd64"
    (target / "archives/partial").mkdir(parents=True)
    if (SHARED / "lists").is_dir():
        shutil.copytree(SHARED / "lists", target / "lists", ignore=shutil.ignore_patterns("lock", "partial"))
        for deb in (SHARED / "archives").glob("*.deb"):
            os.link(deb, target / "archives" / deb.name)
    return target


def replace(path: Path, data: bytes) -> None:
    """New content in a new file (the old one may be a link into the shared cache)."""
    path.unlink()
    path.write_bytes(data)


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    replace(path, bytes(data))


def metadata_sha256(cache: Path, name: str) -> dict[str, str]:
    """SHA256 of every version of `name` in the cached Packages files, by file name."""
    found = {}
    for index in (cache / "lists").glob("*_Packages"):
        for stanza in index.read_text().split("\n\n"):
            if re.search(rf"^Package: {re.escape(name)}$", stanza, re.M):
                filename = re.search(r"^Filename: (\S+)", stanza, re.M)
                sha = re.search(r"^SHA256: (\S+)", stanza, re.M)
                if filename and sha:
                    found[Path(filename.group(1)).name.replace("%3a", ":")] = sha.group(1)
    return found


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def debian_project(d: Path, cache: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=debian\nRelease=trixie\n\n"
        "[Output]\nFormat=directory\nOutput=image\n\n"
        "[Content]\nPackages=hostname\n         less\nBootable=no\nCleanPackageMetadata=no\n\n"
        f"[Build]\nPackageCacheDirectory={cache}\nWorkspaceDirectory={d / 'ws'}\nCacheDirectory={d / 'cache'}\n"
    )
    (d / "ws").mkdir(exist_ok=True)
    return d


def test_verification_removes_only_the_corrupt_deb(tmp_path):
    """kosi's check alone (apt resolving and apt-cache show in the sandbox, no image built):
    of the cached packages an install would use, the one whose content differs goes."""
    from kosi.config.model import Config
    from kosi.installers import apt, apt_verify
    from kosi.pipeline.context import Context

    archives = seed(tmp_path / "pkgcache") / "archives"
    debs = {name: list(archives.glob(f"{name}_*.deb")) for name in ("hostname", "less", "libc6")}
    if not all(debs.values()):
        pytest.skip("needs the shared trixie package cache (built by the image tests)")
    context = Context(
        config=Config({"Distribution": "debian", "Release": "trixie", "Architecture": "x86-64"}),
        workspace=tmp_path / "ws",
        package_cache=tmp_path / "pkgcache",
    )
    manager = apt.Apt()
    manager.setup(context)
    apt.prepare_root(context, context.root)
    [hostname], [less], [libc] = debs.values()
    flip_a_byte(hostname)
    kept = sha256(less), sha256(libc)
    apt_verify.verify_cached_packages(manager, context, context.root, ["hostname", "less"])
    assert not hostname.exists()  # apt fetches it again
    assert (sha256(less), sha256(libc)) == kept


@image
def test_corrupt_and_truncated_debs_are_fetched_again(tmp_path):
    cache = tmp_path / "pkgcache"
    archives = seed(cache) / "archives"
    d = debian_project(tmp_path / "project", cache)
    if not list(archives.glob("hostname_*.deb")) or not list(archives.glob("less_*.deb")):
        first = kosi(d)  # a cold cache: fill it first
        assert first.returncode == 0, first.stderr[-3000:]
    [hostname] = archives.glob("hostname_*.deb")
    [less] = archives.glob("less_*.deb")
    flip_a_byte(hostname)  # same size: apt alone would install it
    replace(less, less.read_bytes()[: less.stat().st_size // 2])  # truncated

    result = kosi(d)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    warned = [line for line in result.stderr.splitlines() if "does not match its SHA256" in line]
    assert warned == [f"warning: {hostname} does not match its SHA256 in the repository metadata: fetching it again"], (
        result.stderr[-3000:]
    )
    assert sha256(hostname) == metadata_sha256(cache / "debian~trixie~amd64", "hostname")[hostname.name]
    assert sha256(less) == metadata_sha256(cache / "debian~trixie~amd64", "less")[less.name]
    image = d / "image"
    assert (image / "usr/bin/hostname").is_file() and (image / "usr/bin/less").is_file()
    status = (image / "var/lib/dpkg/status").read_text()
    assert re.search(r"^Package: hostname\n(?:\S.*\n)*?Status: install ok installed$", status, re.M), status

    again = kosi(d)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "does not match" not in again.stderr
    assert_nothing_left(tmp_path)


@image
def test_apt_alone_takes_a_corrupt_deb_of_the_right_size(tmp_path):
    """Why kosi checks: apt itself, asked to download a package whose cached file has the
    right size but the wrong content, downloads nothing and keeps the corrupt file."""
    cache = seed(tmp_path / "pkgcache")
    if not list((cache / "archives").glob("hostname_*.deb")) or not (cache / "lists").is_dir():
        pytest.skip("needs the shared trixie package cache (built by the image tests)")
    [hostname] = (cache / "archives").glob("hostname_*.deb")
    flip_a_byte(hostname)
    corrupt = sha256(hostname)
    (tmp_path / "root/var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "root/var/lib/dpkg/status").write_text("")
    (tmp_path / "sources.list").write_text("deb [trusted=yes] http://deb.debian.org/debian trixie main\n")
    options = {
        "Dir::Etc::SourceList": tmp_path / "sources.list",
        "Dir::Etc::SourceParts": "-",
        "Dir::State": tmp_path / "state",
        "Dir::State::Lists": cache / "lists",
        "Dir::State::Status": tmp_path / "root/var/lib/dpkg/status",
        "Dir::Cache": tmp_path / "aptcache",
        "Dir::Cache::Archives": cache / "archives",
        "APT::Architecture": "amd64",
        "Debug::NoLocking": "1",
        "APT::Sandbox::User": "root",
        "Acquire::Check-Valid-Until": "false",
    }
    (tmp_path / "state").mkdir()
    (tmp_path / "aptcache").mkdir()
    argv = ["apt-get", *(f"-o{k}={v}" for k, v in options.items())]
    result = subprocess.run(
        [*argv, "install", "--download-only", "-y", "--no-install-recommends", "hostname"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert " hostname " not in "".join(line for line in result.stdout.splitlines() if line.startswith("Get:"))
    assert sha256(hostname) == corrupt  # taken as downloaded


@image
def test_dnf_fetches_a_corrupt_cached_rpm_again(mirror, tmp_path):  # noqa: F811
    cache = tmp_path / "pkgcache"
    d = rpm_project(
        tmp_path / "project", "fedora", "42", f"{mirror['url']}/fedora", keys={FEDORA_KEY: mirror["key"]}, cache=cache
    )
    first = kosi(d)
    assert first.returncode == 0, first.stderr[-3000:]
    [cached] = cache.rglob("hello-1.4-1.x86_64.rpm")
    good = sha256(cached)
    flip_a_byte(cached)
    before = len(mirror["server"].requests)

    result = kosi(d)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    fetched = [r for r in mirror["server"].requests[before:] if r.endswith("/hello-1.4-1.x86_64.rpm")]
    assert len(fetched) == 1, mirror["server"].requests[before:]
    assert sha256(cached) == good
    assert rpm_qa(d / "mkosi.output/image") == {"basesystem", "filesystem", "libhello", "hello"}
    assert (d / "mkosi.output/image/usr/bin/hello").read_text() == "#!/bin/sh\necho hello\n"
    assert_nothing_left(tmp_path)
