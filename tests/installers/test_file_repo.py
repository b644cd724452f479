"""Third-party apt repositories on the local file system (file:/ URIs) outside the project.

apt runs in kosi's package manager sandbox, which shows little of the host: the repository
and the keyring its sources entry names must be made visible there. The image test builds a
signed flat repository in a directory of its own (dpkg-deb, dpkg-scanpackages, a throwaway gpg
key), points a one-line sources entry in mkosi.sandbox/ at it with file:/ and signed-by= (both
outside the project) and checks the package lands in the image.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kosi.installers.apt_sources import host_paths, local_path
from tests.installers.test_third_party_repo import (
    PACKAGE,
    PKGCACHE,
    gpg,
    kosi_build,
    make_deb,
    make_flat_repository,
    make_key,
)


def test_local_path_of_uris():
    assert local_path("file:/srv/repo") == Path("/srv/repo")
    assert local_path("file:///srv/my%20repo/") == Path("/srv/my repo/")
    assert local_path("file://localhost/srv/repo") == Path("/srv/repo")
    assert local_path("copy:/srv/repo") == Path("/srv/repo")
    assert local_path("http://deb.debian.org/debian") is None
    assert local_path("file://otherhost/srv/repo") is None


def test_host_paths_from_both_source_formats(tmp_path):
    etc = tmp_path / "etc/apt"
    (etc / "sources.list.d").mkdir(parents=True)
    repos = [tmp_path / name for name in ("one", "two", "three", "disabled")]
    for repo in repos:
        repo.mkdir()
    key = tmp_path / "key.gpg"
    key.write_bytes(b"")
    (etc / "sources.list").write_text(
        f"# deb file:{tmp_path}/commented ./\ndeb [ arch=amd64 signed-by={key} ] file:{repos[0]} ./\n"
    )
    (etc / "sources.list.d/a.list").write_text(
        f"deb-src file://{repos[1]} trixie main\ndeb http://deb.debian.org/debian trixie main\n"
    )
    (etc / "sources.list.d/b.sources").write_text(
        f"Types: deb\nURIs: file:{repos[2]} file:{tmp_path}/missing\nSuites: ./\nSigned-By: /etc/apt/keyrings/x.gpg\n\n"
        f"Types: deb\nURIs: file:{repos[3]}\nSuites: ./\nEnabled: no\n\n"
        "Types: deb\nURIs: file:/usr/share/whatever\nSuites: ./\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n"
    )
    # Existing paths only; /etc/apt and /usr are the sandbox's own already.
    assert host_paths(etc) == [repos[0], key, repos[1], repos[2]]


@pytest.fixture(scope="module")
def file_repository(tmp_path_factory):
    """A signed flat repository and its keyring, in a directory no project lives in."""
    base = tmp_path_factory.mktemp("filerepo")
    signer, fingerprint = make_key(base, "filerepo")
    make_flat_repository(base / "repo", make_deb(base / "deb"), signer)
    keyring = base / "keys/filerepo.gpg"
    keyring.parent.mkdir()
    keyring.write_bytes(gpg(signer, "--export", fingerprint))
    return base / "repo", keyring


@pytest.mark.image
def test_package_from_a_file_repository_outside_the_project(file_repository, tmp_path):
    repo, keyring = file_repository
    d = tmp_path / "project"
    (d / "mkosi.output").mkdir(parents=True)
    (d / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=debian\nRelease=trixie\n\n"
        f"[Output]\nFormat=directory\nOutput=filerepo\n\n[Content]\nPackages={PACKAGE}\n\n"
        f"[Build]\nPackageCacheDirectory={PKGCACHE}\n"
    )
    sources = d / "mkosi.sandbox/etc/apt/sources.list.d"
    sources.mkdir(parents=True)
    (sources / "local.list").write_text(f"deb [signed-by={keyring}] file:{repo} ./\n")
    result = kosi_build(d)
    assert result.returncode == 0, result.stderr[-4000:]
    root = d / "mkosi.output/filerepo"
    assert (root / f"usr/share/{PACKAGE}/hello").read_text() == "hello from a third-party repository\n"
    assert f"Package: {PACKAGE}\nStatus: install ok installed" in (root / "var/lib/dpkg/status").read_text()
