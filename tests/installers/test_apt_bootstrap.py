"""Bootstrapping real Debian trixie roots from deb.debian.org through the PackageManager interface."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kosi.config.model import Config
from kosi.errors import KosiError
from kosi.installers.base import package_manager
from kosi.pipeline.context import Context

pytestmark = pytest.mark.image


def make_package(directory: Path, name: str) -> Path:
    """A tiny .deb shipping /usr/share/<name>/hello, built with dpkg-deb."""
    tree = directory / f"{name}-tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        f"Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: kosi tests <kosi@example.org>\n"
        "Description: test package\n"
    )
    (tree / f"usr/share/{name}").mkdir(parents=True)
    (tree / f"usr/share/{name}/hello").write_text("hello from a local package\n")
    deb = directory / f"{name}_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)], check=True, capture_output=True)
    return deb


def new_context(base: Path, cache: Path, name: str, **values) -> Context:
    workspace = base / name
    workspace.mkdir()
    config = Config({"Distribution": "debian", "Release": "trixie", **values}, directory=base)
    return Context(config=config, workspace=workspace, package_cache=cache)


@pytest.fixture(scope="session")
def bootstrapped(tmp_path_factory):
    base = tmp_path_factory.mktemp("apt")
    packages = base / "packages"
    packages.mkdir()
    make_package(packages, "kosi-hello")
    cache = base / "cache"
    context = new_context(base, cache, "first", WithDocs=False, PackageDirectories=[packages])
    pm = package_manager(context)
    pm.setup(context)
    pm.sync(context)
    pm.install(context, [])
    return context


def chroot_query(root: Path, *args: str) -> str:
    return subprocess.run(["chroot", str(root), *args], check=True, capture_output=True, text=True).stdout


def test_minimal_trixie_root(bootstrapped):
    root = bootstrapped.root
    assert "VERSION_CODENAME=trixie" in (root / "usr/lib/os-release").read_text()
    status = chroot_query(root, "dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n")
    installed = dict(line.split(" ", 1) for line in status.splitlines())
    for package in ("base-files", "dpkg", "bash", "coreutils", "libc6", "util-linux", "base-passwd"):
        assert installed.get(package, "").strip() == "ii", package
    # the essential set only, as mkosi 27.1: Debian's other priority-required packages (apt,
    # login, tzdata, ...) come when asked for
    assert not {"apt", "login", "tzdata", "passwd"} & set(installed), " ".join(sorted(installed))
    assert all(state.strip() == "ii" for state in installed.values())
    # The API file systems were mounted only while installing.
    assert not any((root / "dev").iterdir()) and not any((root / "proc").iterdir())
    assert not (root / "usr/sbin/policy-rc.d").exists()
    # libeatmydata was preloaded from the sandbox's /run only: nothing of it is in the image.
    assert not any((root / "run").iterdir())
    assert (
        "eatmydata" not in (root / "etc/ld.so.preload").read_text() if (root / "etc/ld.so.preload").exists() else True
    )
    assert {"apt-get update", "dpkg (essential set)", "extract (essential set)"} <= set(
        bootstrapped.state.installer.timings
    )


def test_package_manager_sandbox_hides_the_host(bootstrapped, tmp_path):
    """apt and dpkg see neither the host's /etc nor /var nor /home; /usr is read-only."""
    from kosi.installers.apivfs import in_root

    probe = (
        "test ! -e /etc/shadow && test ! -e /var/lib/dpkg/status && test ! -e /home && ! touch /usr/probe 2>/dev/null"
    )
    result = subprocess.run([*in_root(bootstrapped, bootstrapped.root), "sh", "-c", probe])
    assert result.returncode == 0


def test_lists_and_archives_are_in_the_package_cache(bootstrapped):
    cache = bootstrapped.package_cache / "debian~trixie~amd64"
    assert list((cache / "lists").glob("*trixie_main_binary-amd64_Packages*"))
    assert list((cache / "lists").glob("*trixie-security_*Packages*"))
    assert list((cache / "archives").glob("base-files_*.deb"))


def test_without_docs_usr_share_doc_is_nearly_empty(bootstrapped):
    root = bootstrapped.root
    docs = [p for p in (root / "usr/share/doc").rglob("*") if p.is_file() and p.name != "copyright"]
    assert len(docs) < 5, docs
    assert (
        not [p for p in (root / "usr/share/man").rglob("*") if p.is_file()]
        if (root / "usr/share/man").exists()
        else True
    )
    assert not (root / "etc/dpkg/dpkg.cfg.d/kosi-nodoc").exists()  # the options were dpkg's, as mkosi 27.1


def test_local_package_directory_installs(bootstrapped):
    pm = package_manager(bootstrapped)
    pm.install(bootstrapped, ["kosi-hello"])
    assert (bootstrapped.root / "usr/share/kosi-hello/hello").read_text() == "hello from a local package\n"


def test_missing_package_is_one_line(bootstrapped):
    pm = package_manager(bootstrapped)
    with pytest.raises(KosiError) as e:
        pm.install(bootstrapped, ["kosi-no-such-package"])
    assert str(e.value) == "package 'kosi-no-such-package' not found in debian trixie (main)"


def test_wrappers_act_on_the_image(bootstrapped):
    wrappers = package_manager(bootstrapped).wrappers(bootstrapped)
    assert {"apt", "apt-get", "dpkg", "mkosi-install", "mkosi-reinstall", "mkosi-upgrade", "mkosi-remove"} <= set(
        wrappers
    )
    out = subprocess.run(
        [*wrappers["dpkg-query"], "-W", "-f", "${Version}", "base-files"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("13")
    sim = subprocess.run([*wrappers["mkosi-install"], "-s", "hostname"], capture_output=True, text=True, check=True)
    assert "hostname is already the newest version" in sim.stdout


def test_sources_but_no_lists_in_image(bootstrapped):
    """As mkosi 27.1: an image with apt gets <release>.sources for its mirror, no apt lists."""
    pm = package_manager(bootstrapped)
    pm.install(bootstrapped, ["apt"])
    pm.copy_metadata_into_image(bootstrapped)
    root = bootstrapped.root
    assert not list((root / "var/lib/apt/lists").glob("*_Packages*"))
    sources = (root / "etc/apt/sources.list.d/trixie.sources").read_text()
    assert "URIs: http://deb.debian.org/debian" in sources and "Suites: trixie-security" in sources


def test_second_bootstrap_downloads_nothing(bootstrapped, tmp_path):
    """A warm build reuses the cached lists and packages, into any root (as BuildPackages= overlays need)."""
    archives = bootstrapped.package_cache / "debian~trixie~amd64/archives"
    before = {p.name: p.stat().st_mtime_ns for p in archives.glob("*.deb")}
    context = new_context(tmp_path, bootstrapped.package_cache, "second", CacheOnly="metadata")
    pm = package_manager(context)
    pm.setup(context)
    pm.sync(context)
    other_root = tmp_path / "other-root"
    pm.install(context, [], root=other_root)
    assert context.state.installer.downloaded == 0
    assert {p.name: p.stat().st_mtime_ns for p in archives.glob("*.deb")} == before
    assert "trixie" in (other_root / "usr/lib/os-release").read_text()


def test_warm_bootstrap_reuses_the_configured_essential_set(bootstrapped, tmp_path):
    """Same packages, options and starting root: the cached essential tree replaces extract + dpkg."""
    assert bootstrapped.state.installer.essential_reused is False
    context = new_context(tmp_path, bootstrapped.package_cache, "warm", WithDocs=False, CacheOnly="metadata")
    pm = package_manager(context)
    pm.setup(context)
    pm.sync(context)
    pm.install(context, [])
    assert context.state.installer.essential_reused is True
    assert "dpkg (essential set)" not in context.state.installer.timings
    status = chroot_query(context.root, "dpkg-query", "-W", "-f", "${db:Status-Abbrev}\n")
    assert set(status.split()) == {"ii"}
    assert chroot_query(context.root, "stat", "-c", "%U:%G %a", "/usr/sbin/unix_chkpwd").strip() == "root:shadow 2755"
    # A different starting root (a skeleton file) is a different tree.
    other = new_context(tmp_path, bootstrapped.package_cache, "skeleton", WithDocs=False, CacheOnly="metadata")
    (other.root / "etc").mkdir(parents=True)
    (other.root / "etc/skeleton-file").write_text("from the skeleton\n")
    pm.setup(other)
    pm.sync(other)
    pm.install(other, [])
    assert other.state.installer.essential_reused is False
    assert (other.root / "etc/skeleton-file").read_text() == "from the skeleton\n"


def test_unreachable_mirror_names_it(tmp_path):
    context = new_context(tmp_path, tmp_path / "cache", "unreachable", Mirror="http://127.0.0.1:9")
    pm = package_manager(context)
    pm.setup(context)
    with pytest.raises(KosiError) as e:
        pm.sync(context)
    assert str(e.value).startswith("cannot fetch from mirror http://127.0.0.1:9/debian")


def test_sandbox_source_with_wrong_key_fails_clearly(tmp_path):
    """A third-party source from mkosi.sandbox is used, and its signature is checked."""
    context = new_context(tmp_path, tmp_path / "cache", "badkey", Release="sid")
    sources = context.pkgmngr / "etc/apt/sources.list.d"
    sources.mkdir(parents=True)
    # bullseye's key never signed trixie: the signature must not verify.
    (sources / "extra.sources").write_text(
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: contrib\n"
        "Signed-By: /usr/share/keyrings/debian-archive-bullseye-stable.gpg\n"
    )
    pm = package_manager(context)
    pm.setup(context)
    with pytest.raises(KosiError) as e:
        pm.sync(context)
    assert "signature" in str(e.value) and "http://deb.debian.org/debian trixie" in str(e.value)
    assert "\n" not in str(e.value)
