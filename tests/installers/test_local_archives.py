"""Snapshot=, latest-snapshot, Ubuntu and Kali, built for real against local archives.

Their real services (snapshot.debian.org, the Ubuntu and Kali archives) are out of reach here,
so tests/installers/local_archive.py publishes real Debian trixie packages in their layouts,
signed by a throwaway key, on 127.0.0.1; apt does the rest as it would against the real ones.
The key reaches apt the way a user would give it: as the distribution's keyring file in
mkosi.sandbox/usr/share/keyrings/.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from kosi.boot.initrd import initrd_config
from kosi.config.model import Config
from kosi.distributions import get
from kosi.errors import KosiError

sys.path.insert(0, str(Path(__file__).parent))
import local_archive

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def archive(tmp_path_factory):
    """The local archive (built once), served on 127.0.0.1 for the session."""
    archive = local_archive.build(tmp_path_factory.mktemp("archive"), tmp_path_factory.mktemp("archive-work"))
    server, archive.url = local_archive.serve(archive.root, archive.snapshots)
    try:
        yield archive
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def package_cache(tmp_path_factory) -> Path:
    """One package cache for these builds only: its lists name 127.0.0.1, which no other image should get."""
    return tmp_path_factory.mktemp("local-archive-cache")


def project(directory: Path, archive, package_cache: Path, distribution: str, settings: str) -> Path:
    keyring = get(distribution).keyring
    (directory / "mkosi.output").mkdir(parents=True)
    (directory / "ws").mkdir()
    (directory / "mkosi.conf").write_text(
        f"[Distribution]\nDistribution={distribution}\n{settings}\n"
        "[Output]\nFormat=directory\nOutput=image\n\n"
        f"[Build]\nWorkspaceDirectory={directory / 'ws'}\nPackageCacheDirectory={package_cache}\n"
    )
    target = directory / "mkosi.sandbox" / keyring.lstrip("/")
    target.parent.mkdir(parents=True)
    target.write_bytes(archive.keyring.read_bytes())
    return directory


def kosi(directory: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "bin/kosi"), "-C", str(directory), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def build_image(directory: Path, archive, package_cache: Path, distribution: str, settings: str) -> Path:
    """Build the project; returns the image's root directory."""
    result = kosi(project(directory, archive, package_cache, distribution, settings), "-f", "build")
    assert result.returncode == 0, result.stderr[-4000:]
    return directory / "mkosi.output/image"


def installed(root: Path, package: str) -> str | None:
    """The installed version of a package, from the image's dpkg database."""
    for stanza in (root / "var/lib/dpkg/status").read_text().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " ")
        if fields.get("Package") == package and fields.get("Status") == "install ok installed":
            return fields["Version"]
    return None


def stanzas(path: Path) -> list[dict[str, str]]:
    return [
        dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        for block in path.read_text().split("\n\n")
        if block.strip()
    ]


# ---- Snapshot= and latest-snapshot (Debian) --------------------------------------------------


@pytest.mark.image
def test_snapshot_builds_from_that_snapshot_despite_expired_release_files(archive, package_cache, tmp_path):
    old = archive.snapshots[0]
    root = build_image(
        tmp_path,
        archive,
        package_cache,
        "debian",
        f"Release=trixie\nMirror={archive.url}\nSnapshot={old}\n\n"
        "[Content]\nPackages=kosi-snapshot\n         kosi-snapshot-security\n         apt\n",
    )
    # The older snapshot's packages, though the newer one has newer versions; its security archive too.
    assert installed(root, "kosi-snapshot") == "1.0"
    assert installed(root, "kosi-snapshot-security") == "1.0"
    assert installed(root, "apt") and (root / "usr/bin/apt-get").exists()
    # The image keeps using the snapshot, expired Release files and all.
    sources = stanzas(root / "etc/apt/sources.list.d/trixie.sources")
    assert [(s["URIs"], s["Suites"]) for s in sources] == [
        (f"{archive.url}/archive/debian/{old}", "trixie"),
        (f"{archive.url}/archive/debian/{old}", "trixie-updates"),
        (f"{archive.url}/archive/debian-security/{old}", "trixie-security"),
    ]
    assert all(s["Check-Valid-Until"] == "no" for s in sources)
    assert all(s["Signed-By"] == "/usr/share/keyrings/debian-archive-keyring.gpg" for s in sources)


@pytest.mark.image
def test_expired_release_files_warn_without_snapshot(archive, package_cache, tmp_path):
    """The counterpart: the same expired suites as an ordinary mirror (a stale mirror) build, as
    with mkosi 27.1, with one warning line per suite naming the mirror and how long ago it expired."""
    d = project(tmp_path, archive, package_cache, "debian", f"Release=trixie\nMirror={archive.url}\n")
    result = kosi(d, "-f", "build")
    assert result.returncode == 0, result.stderr[-4000:]
    assert (d / "mkosi.output/image/usr/bin/dpkg").exists()
    warnings = [line for line in result.stderr.splitlines() if "Release file expired" in line]
    expected_age = (time.time() - (local_archive.snapshot_time(archive.snapshots[0]) + 7 * 86400)) // 86400
    assert any(
        f"{archive.url}/debian trixie:" in line and f"expired {int(expected_age)} days ago" in line for line in warnings
    ), result.stderr[-3000:]
    assert any(f"{archive.url}/debian-security trixie-security:" in line for line in warnings), warnings
    assert "Traceback" not in result.stderr


def test_latest_snapshot_prints_where_the_service_redirects_now(tmp_path):
    """Only the redirect matters here: the snapshot service's directories, without packages."""
    service = tmp_path / "service"
    for snapshot in local_archive.SNAPSHOTS:
        (service / "archive/debian" / snapshot).mkdir(parents=True)
    server, url = local_archive.serve(service, local_archive.SNAPSHOTS)
    try:
        (tmp_path / "mkosi.conf").write_text(f"[Distribution]\nDistribution=debian\nRelease=trixie\nMirror={url}\n")
        result = kosi(tmp_path, "latest-snapshot")
        # This service has no Ubuntu: said in one line.
        (tmp_path / "mkosi.conf").write_text(f"[Distribution]\nDistribution=ubuntu\nMirror={url}\n")
        missing = kosi(tmp_path, "latest-snapshot")
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{local_archive.SNAPSHOTS[-1]}\n"
    assert missing.returncode == 1 and missing.stdout == "" and "Traceback" not in missing.stderr
    line = missing.stderr.rstrip("\n").splitlines()[-1]
    assert f"snapshot service {url} has no snapshot at {url}/ubuntu/" in line and "HTTP 404" in line, line


def test_latest_snapshot_without_a_service_fails_in_one_line(tmp_path):
    (tmp_path / "mkosi.conf").write_text("[Distribution]\nDistribution=kali\n")
    result = kosi(tmp_path, "latest-snapshot")
    assert result.returncode == 1 and result.stdout == ""
    assert "Kali Linux has no snapshot service" in result.stderr and "Traceback" not in result.stderr


def test_snapshot_urls():
    debian, ubuntu = get("debian"), get("ubuntu")
    repos = debian.repositories(
        Config({"Release": "trixie", "Snapshot": "20250101T000000Z", "Mirror": "http://s.example/"})
    )
    assert [r.uri for r in repos] == ["http://s.example/archive/debian/20250101T000000Z"] * 2 + [
        "http://s.example/archive/debian-security/20250101T000000Z"
    ]
    arm = ubuntu.repositories(
        Config({"Distribution": "ubuntu", "Architecture": "arm64", "Snapshot": "20250101T000000Z"})
    )
    assert {r.uri for r in arm} == {"https://snapshot.ubuntu.com/ubuntu-ports/20250101T000000Z"}
    assert all(not r.check_valid_until for r in arm)
    x86 = ubuntu.repositories(
        Config({"Distribution": "ubuntu", "Architecture": "x86-64", "Snapshot": "20250101T000000Z"})
    )
    assert {r.uri for r in x86} == {"https://snapshot.ubuntu.com/ubuntu/20250101T000000Z"}
    assert {r.components for r in x86} == {("main",)}  # universe only with Repositories=universe
    # The default initrd comes from the same snapshot (Mirror= alone would name the service, not an archive).
    main = Config(
        {"Distribution": "debian", "Release": "trixie", "Mirror": "http://s.example", "Snapshot": "20250101T000000Z"}
    )
    assert [r.uri for r in debian.repositories(initrd_config(main))] == [r.uri for r in debian.repositories(main)]
    with pytest.raises(KosiError, match="Snapshot=yesterday: expected a snapshot ID"):
        debian.repositories(Config({"Snapshot": "yesterday"}))
    with pytest.raises(KosiError, match="Kali Linux has no snapshot service"):
        get("kali").repositories(Config({"Distribution": "kali", "Snapshot": "20250101T000000Z"}))


# ---- Ubuntu and Kali ---------------------------------------------------------------------------


@pytest.mark.image
def test_ubuntu_release_updates_security_and_components(archive, package_cache, tmp_path):
    root = build_image(
        tmp_path,
        archive,
        package_cache,
        "ubuntu",
        f"Release=noble\nMirror={archive.url}\nRepositories=universe,multiverse\n\n[Content]\n"
        "Packages=kosi-universe\n         kosi-multiverse\n         kosi-updates\n         kosi-security\n         apt\n",
    )
    # universe and multiverse (Repositories=), -updates and -security each gave one.
    for package in ("kosi-universe", "kosi-multiverse", "kosi-updates", "kosi-security"):
        assert installed(root, package) == "1.0", package
    assert installed(root, "apt")
    sources = stanzas(root / "etc/apt/sources.list.d/noble.sources")
    assert [(s["URIs"], s["Suites"], s["Components"]) for s in sources] == [
        (f"{archive.url}/ubuntu", suite, "main universe multiverse")
        for suite in ("noble", "noble-updates", "noble-security")
    ]
    assert all(s["Signed-By"] == "/usr/share/keyrings/ubuntu-archive-keyring.gpg" for s in sources)
    assert all("Check-Valid-Until" not in s for s in sources)


@pytest.mark.image
def test_kali_rolling(archive, package_cache, tmp_path):
    # The manual's Kali mirror includes the archive's path: http://http.kali.org/kali.
    root = build_image(
        tmp_path,
        archive,
        package_cache,
        "kali",
        f"Mirror={archive.url}/kali\n\n[Content]\nPackages=kosi-kali\n         apt\n",
    )
    assert installed(root, "kosi-kali") == "1.0"
    sources = stanzas(root / "etc/apt/sources.list.d/kali-rolling.sources")
    assert [(s["URIs"], s["Suites"], s["Components"], s["Signed-By"]) for s in sources] == [
        (f"{archive.url}/kali", "kali-rolling", "main", "/usr/share/keyrings/kali-archive-keyring.gpg")
    ]
