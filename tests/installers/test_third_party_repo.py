"""A signed third-party apt repository configured through mkosi.sandbox/, built for real with bin/kosi.

The repository is a flat one made here: a .deb from dpkg-deb, Packages from dpkg-scanpackages,
a Release file with SHA256 sums, and InRelease clear-signed by a throwaway gpg key. It is
served over HTTP on 127.0.0.1 (the package manager sandbox shares the host's network, not its
file system). Debian itself comes from the package cache the pipeline image tests share.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.image
REPO = Path(__file__).resolve().parents[2]
#: the package cache tests/pipeline/test_images.py uses: Debian is downloaded there already
PKGCACHE = Path("/var/tmp/kosi-test-pkgcache-pipeline")
PACKAGE = "kosi-thirdparty"


def gpg(home: Path, *args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "", *args],
        input=input,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        check=True,
    ).stdout


def make_key(base: Path, name: str) -> tuple[Path, str]:
    """A new signing key in its own GNUPGHOME; returns the home and the key's fingerprint."""
    home = base / f"gnupg-{name}"
    home.mkdir(mode=0o700)
    gpg(home, "--quick-gen-key", f"{name} <{name}@kosi.invalid>", "ed25519", "sign", "never")
    listing = gpg(home, "--with-colons", "--list-secret-keys").decode()
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    return home, fingerprint


def make_deb(directory: Path) -> Path:
    tree = directory / "tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        f"Package: {PACKAGE}\nVersion: 1.0\nArchitecture: all\nMaintainer: kosi tests <kosi@kosi.invalid>\n"
        "Description: file from a third-party repository\n"
    )
    (tree / f"usr/share/{PACKAGE}").mkdir(parents=True)
    (tree / f"usr/share/{PACKAGE}/hello").write_text("hello from a third-party repository\n")
    deb = directory / f"{PACKAGE}_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)], check=True, capture_output=True)
    return deb


def make_flat_repository(directory: Path, deb: Path, signer: Path) -> None:
    """Packages, Packages.gz, Release and InRelease for a flat repository (sources: `Suites: ./`)."""
    directory.mkdir()
    (directory / deb.name).write_bytes(deb.read_bytes())
    packages = subprocess.run(
        ["dpkg-scanpackages", "--multiversion", "."],
        cwd=directory,
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ).stdout
    (directory / "Packages").write_bytes(packages)
    (directory / "Packages.gz").write_bytes(gzip.compress(packages, mtime=0))
    sums = "".join(
        f" {hashlib.sha256((directory / name).read_bytes()).hexdigest()} {(directory / name).stat().st_size} {name}\n"
        for name in ("Packages", "Packages.gz")
    )
    date = time.strftime("%a, %d %b %Y %H:%M:%S UTC", time.gmtime(time.time() - 3600))
    release = f"Origin: kosi tests\nLabel: kosi-thirdparty\nArchitectures: all amd64\nDate: {date}\nSHA256:\n{sums}"
    (directory / "Release").write_text(release)
    (directory / "InRelease").write_bytes(
        gpg(signer, "--clearsign", "--digest-algo", "SHA256", "--output", "-", input=release.encode())
    )


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # apt's requests are not the test's output
        pass


@pytest.fixture(scope="module")
def repositories(tmp_path_factory):
    """Two copies of one repository served on loopback: /good signed by the key projects trust,
    /bad signed by another key. Yields (base URL, trusted key's fingerprint, keyring, other key's fingerprint)."""
    base = tmp_path_factory.mktemp("thirdparty")
    trusted, trusted_fpr = make_key(base, "trusted")
    other, other_fpr = make_key(base, "other")
    deb = make_deb(base / "deb")
    served = base / "served"
    served.mkdir()
    make_flat_repository(served / "good", deb, trusted)
    make_flat_repository(served / "bad", deb, other)
    keyring = base / "thirdparty.gpg"
    keyring.write_bytes(gpg(trusted, "--export", trusted_fpr))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", trusted_fpr, keyring, other_fpr
    finally:
        server.shutdown()
        server.server_close()


def project(directory: Path, url: str, keyring: Path) -> Path:
    (directory / "mkosi.output").mkdir(parents=True)
    (directory / "ws").mkdir()
    (directory / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=debian\nRelease=trixie\n\n"
        f"[Output]\nFormat=directory\nOutput=thirdparty\n\n[Content]\nPackages={PACKAGE}\n\n"
        f"[Build]\nWorkspaceDirectory={directory / 'ws'}\nPackageCacheDirectory={PKGCACHE}\n"
    )
    apt = directory / "mkosi.sandbox/etc/apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "keyrings").mkdir()
    (apt / "sources.list.d/thirdparty.sources").write_text(
        f"Types: deb\nURIs: {url}\nSuites: ./\nSigned-By: /etc/apt/keyrings/thirdparty.gpg\n"
    )
    (apt / "keyrings/thirdparty.gpg").write_bytes(keyring.read_bytes())
    return directory


def kosi_build(directory: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "bin/kosi"), "-C", str(directory), "-f", "build"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_package_from_signed_third_party_repository(repositories, tmp_path):
    url, _, keyring, _ = repositories
    d = project(tmp_path, f"{url}/good", keyring)
    result = kosi_build(d)
    assert result.returncode == 0, result.stderr[-4000:]
    root = d / "mkosi.output/thirdparty"
    assert (root / f"usr/share/{PACKAGE}/hello").read_text() == "hello from a third-party repository\n"
    status = (root / "var/lib/dpkg/status").read_text()
    assert f"Package: {PACKAGE}\nStatus: install ok installed" in status
    # mkosi.sandbox/ configures the package manager only: none of it is in the image.
    assert not (root / "etc/apt/sources.list.d/thirdparty.sources").exists()
    assert not (root / "etc/apt/keyrings/thirdparty.gpg").exists()
    assert "127.0.0.1" not in "".join(p.read_text() for p in (root / "etc/apt/sources.list.d").glob("*"))


def test_repository_signed_by_another_key_fails_in_one_line(repositories, tmp_path):
    url, _, keyring, other_fpr = repositories
    d = project(tmp_path, f"{url}/bad", keyring)
    result = kosi_build(d)
    assert result.returncode == 1, result.stderr[-4000:]
    assert "Traceback" not in result.stderr
    line = result.stderr.rstrip("\n").splitlines()[-1]
    assert f"{url}/bad" in line, line
    # apt names the signing key by its long key ID (the fingerprint's last 16 digits)
    assert other_fpr[-16:] in line, line
    assert "Signed-By:" in line and "RepositoryKeyCheck" not in line, line  # that setting is the distribution's
    assert not (d / "mkosi.output/thirdparty").exists()
