"""The apt backend's generated configuration and error messages (no downloads)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kosi.config.model import Config
from kosi.config.values import Feature
from kosi.distributions import get
from kosi.errors import KosiError
from kosi.installers import apt
from kosi.installers.base import package_manager
from kosi.pipeline.context import Context


def context(tmp_path: Path, **values) -> Context:
    return Context(config=Config(values), workspace=tmp_path / "ws", package_cache=tmp_path / "cache")


def sources(repos) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(r.uri, r.suite, r.components) for r in repos]


def test_debian_stable_gets_release_updates_and_security_only():
    repos = get("debian").repositories(Config({"Distribution": "debian", "Release": "trixie"}))
    assert sources(repos) == [
        ("http://deb.debian.org/debian", "trixie", ("main",)),
        ("http://deb.debian.org/debian", "trixie-updates", ("main",)),
        ("http://deb.debian.org/debian-security", "trixie-security", ("main",)),
    ]
    assert all(r.keyring == "/usr/share/keyrings/debian-archive-keyring.gpg" and not r.trusted for r in repos)


def test_sid_has_no_updates_or_security_and_repositories_add_components():
    repos = get("debian").repositories(Config({"Release": "sid", "Repositories": ["contrib,non-free-firmware"]}))
    assert sources(repos) == [("http://deb.debian.org/debian", "sid", ("main", "contrib", "non-free-firmware"))]


def test_mirror_snapshot_and_local_mirror():
    debian = get("debian")
    mirror = debian.repositories(Config({"Release": "bookworm", "Mirror": "http://ftp.de.debian.org/debian"}))
    assert [r.uri for r in mirror] == ["http://ftp.de.debian.org/debian"] * 2 + [
        "http://ftp.de.debian.org/debian-security"
    ]
    snap = debian.repositories(Config({"Release": "trixie", "Snapshot": "20250101T000000Z"}))
    assert snap[0].uri == "https://snapshot.debian.org/archive/debian/20250101T000000Z"
    assert snap[2].uri == "https://snapshot.debian.org/archive/debian-security/20250101T000000Z"
    assert "Check-Valid-Until: no" in snap[0].deb822()
    config = Config({"Release": "trixie", "LocalMirror": "file:///srv/mirror", "Mirror": "http://m.example/debian"})
    assert sources(debian.repositories(config)) == [("file:///srv/mirror", "trixie", ("main",))]
    # The image is configured with Mirror=, not the build-only local mirror.
    assert debian.repositories(config, local=False)[0].uri == "http://m.example/debian"


def test_ubuntu_and_kali_sources():
    ubuntu = get("ubuntu")
    x86 = ubuntu.repositories(
        Config({"Distribution": "ubuntu", "Release": "noble", "Architecture": "x86-64", "Repositories": ["universe"]})
    )
    assert sources(x86) == [
        ("http://archive.ubuntu.com/ubuntu", "noble", ("main", "universe")),
        ("http://archive.ubuntu.com/ubuntu", "noble-updates", ("main", "universe")),
        ("http://security.ubuntu.com/ubuntu", "noble-security", ("main", "universe")),
    ]
    # The default release (off an Ubuntu host, as mkosi 27.1) is the development one: one suite.
    devel = ubuntu.repositories(Config({"Distribution": "ubuntu", "Architecture": "x86-64"}))
    assert sources(devel) == [("http://archive.ubuntu.com/ubuntu", "devel", ("main",))]
    arm = ubuntu.repositories(Config({"Distribution": "ubuntu", "Architecture": "arm64", "Release": "jammy"}))
    assert {r.uri for r in arm} == {"http://ports.ubuntu.com/ubuntu-ports"}
    assert arm[0].keyring == "/usr/share/keyrings/ubuntu-archive-keyring.gpg"
    kali = get("kali").repositories(Config({"Distribution": "kali"}))
    assert sources(kali) == [("http://http.kali.org/kali", "kali-rolling", ("main",))]


def test_repository_key_check_off_trusts_instead_of_signed_by():
    repo = get("debian").repositories(Config({"RepositoryKeyCheck": False}))[0]
    text = repo.deb822()
    assert "Trusted: yes" in text and "Signed-By" not in text


def test_setup_writes_config_and_keeps_sandbox_sources(tmp_path):
    ctx = context(tmp_path, Distribution="debian", Release="bookworm", WithRecommends=True)
    user = ctx.pkgmngr / "etc/apt/sources.list.d/third-party.sources"
    user.parent.mkdir(parents=True)
    user.write_text("Types: deb\nURIs: http://example.invalid/apt\nSuites: stable\nComponents: main\n")
    package_manager(ctx).setup(ctx)
    assert user.read_text().startswith("Types: deb")  # the user's mkosi.sandbox file survives
    ours = (ctx.pkgmngr / "etc/apt/sources.list.d/debian.sources").read_text()
    assert "Suites: bookworm-security" in ours
    assert "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" in ours
    conf = (ctx.workspace / "apt.conf").read_text()
    assert 'APT::Install-Recommends "true";' in conf
    assert f'Dir::State::Lists "{tmp_path}/cache/debian~bookworm~' in conf
    assert "--force-unsafe-io" in conf
    assert 'Dir::Etc "' + str(ctx.pkgmngr / "etc/apt") + '";' in conf


def test_ubuntu_without_keyring_fails_in_one_line(tmp_path):
    if Path("/usr/share/keyrings/ubuntu-archive-keyring.gpg").exists():
        pytest.skip("the host has Ubuntu's keyring")
    ctx = context(tmp_path, Distribution="ubuntu")
    pm = package_manager(ctx)
    pm.setup(ctx)
    with pytest.raises(KosiError) as e:
        pm.sync(ctx)
    assert "ubuntu-keyring" in str(e.value) and "\n" not in str(e.value)


def test_cache_only_without_metadata_is_an_error(tmp_path):
    ctx = context(tmp_path, CacheOnly="always")
    pm = package_manager(ctx)
    pm.setup(ctx)
    with pytest.raises(KosiError, match="CacheOnly=always: no repository metadata"):
        pm.sync(ctx)


@pytest.mark.parametrize(
    "output, expected",
    [
        (
            "Reading package lists...\nE: Unable to locate package foo\n",
            "package 'foo' not found in debian trixie (main)",
        ),
        (
            "W: GPG error: http://deb.debian.org/debian trixie InRelease: The following signatures couldn't be verified "
            "because the public key is not available: NO_PUBKEY 6ED0E7B82643E131\n"
            "E: The repository 'http://deb.debian.org/debian trixie InRelease' is not signed.\n",
            "signature check failed for repository http://deb.debian.org/debian trixie: key 6ED0E7B82643E131",
        ),
        (
            "E: Failed to fetch http://127.0.0.1:9/debian/dists/trixie/InRelease  Could not connect to 127.0.0.1:9\n",
            "cannot fetch from mirror http://127.0.0.1:9/debian: Could not connect to 127.0.0.1:9",
        ),
        ("E: Sub-process /usr/bin/dpkg returned an error code (1)\n", "apt-get: Sub-process /usr/bin/dpkg returned"),
    ],
)
def test_apt_errors_become_one_line(tmp_path, output, expected):
    ctx = context(tmp_path, Release="trixie", Mirror="http://127.0.0.1:9")
    message = apt.Apt().explain_failure(ctx, "apt-get", output)
    assert message.startswith(expected) and "\n" not in message


def test_deb_file_names_and_snapshot_ids():
    assert apt.deb_filename("libcap2", "1:2.75-10", "amd64") == "libcap2_1%3a2.75-10_amd64.deb"
    assert apt.parse_snapshot_id("https://snapshot.debian.org/archive/debian/20250102T030405Z/") == "20250102T030405Z"
    assert apt.parse_snapshot_id("https://snapshot.debian.org/archive/debian/") is None


def test_clean_metadata_and_normalise(tmp_path):
    ctx = context(tmp_path, CleanPackageMetadata=Feature.auto)
    root = ctx.root
    for path in (
        "var/lib/apt/lists/x_Packages",
        "var/cache/apt/pkgcache.bin",
        "var/lib/dpkg/status",
        "usr/bin/dpkg",
        "var/log/dpkg.log",
        "var/log/apt/history.log",
        "var/cache/debconf/config.dat-old",
        "var/cache/ldconfig/aux-cache",
        "etc/machine-id",
        "etc/passwd-",
    ):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("x\n")
    apt.Apt().clean_metadata(ctx)
    assert not (root / "var/lib/apt").exists() and not (root / "var/cache/apt").exists()  # no apt-get in the image
    assert (root / "var/lib/dpkg/status").exists()  # dpkg is there: its database stays
    apt.Apt().normalise_for_reproducibility(ctx)
    for gone in (
        "var/log/dpkg.log",
        "var/log/apt",
        "var/cache/debconf/config.dat-old",
        "var/cache/ldconfig/aux-cache",
        "etc/passwd-",
    ):
        assert not (root / gone).exists(), gone
    # /etc/machine-id is left to the MachineId step (MachineId= survives, as with mkosi 27.1)
    assert (root / "etc/machine-id").read_text() == "x\n"
