"""Arch Linux with the pacman backend: repository layouts, plans, and real images built from a
local mirror (tests/installers/pacman_repo.py) laid out and signed as Arch's mirrors are."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kosi.config.model import Config
from kosi.distributions import get
from kosi.errors import KosiError
from kosi.installers.pacman import Pacman, installed_packages
from kosi.pipeline.context import Context

sys.path.insert(0, str(Path(__file__).parent))
import pacman_repo
from image_build import (
    build,
    build_without_host_package_managers,
    built,
    built_image,
    check_warm_build,
    error_line,
    kill_gpg_agent,
    kosi,
    module_cache,
    script,
    served_mirror,
    unreachable_mirror_error,
    write_project,
)


def arch_config(**values) -> Config:
    return Config({"Distribution": "arch", **values}, directory=Path("/nonexistent"))


# ---- repositories and configuration (no image) --------------------------------------------------


def test_default_repositories_follow_the_mirror_layout():
    repos = get("arch").repositories(arch_config())
    assert [(r.name, r.url) for r in repos] == [
        ("core", "https://fastly.mirror.pkgbuild.com/$repo/os/$arch"),
        ("extra", "https://fastly.mirror.pkgbuild.com/$repo/os/$arch"),
    ]


def test_repositories_snapshot_arm_and_local_mirror():
    arch = get("arch")
    extra = arch.repositories(arch_config(Repositories=["core-testing", "multilib"], Mirror="http://m.example/"))
    assert [r.name for r in extra] == ["core-testing", "multilib", "core", "extra"]
    assert extra[0].url == "http://m.example/$repo/os/$arch"
    snap = arch.repositories(arch_config(Snapshot="2025/01/31"))
    assert snap[0].url == "https://archive.archlinux.org/repos/2025/01/31/$repo/os/$arch"
    arm = arch.repositories(arch_config(Architecture="arm64"))
    assert [r.name for r in arm] == ["core", "extra", "alarm"]
    assert arm[0].url == "http://mirror.archlinuxarm.org/$arch/$repo"
    local = arch.repositories(arch_config(LocalMirror="file:///srv/arch", Mirror="http://m.example"))
    assert [(r.name, r.url) for r in local] == [("core", "file:///srv/arch")]
    # the image gets the real mirror, not the local one
    assert (
        arch.mirrorlist(arch_config(LocalMirror="file:///srv/arch", Mirror="http://m.example"))
        == "Server = http://m.example/$repo/os/$arch\n"
    )


def test_bad_snapshot_and_repository_are_one_line():
    with pytest.raises(KosiError, match=r"Snapshot=20250131T000000Z: Arch Linux snapshots are days"):
        get("arch").repositories(arch_config(Snapshot="20250131T000000Z"))
    with pytest.raises(KosiError, match=r"Repositories=universe: not an Arch Linux repository"):
        get("arch").repositories(arch_config(Repositories=["universe"]))


def test_pacman_conf(tmp_path):
    context = Context(
        config=arch_config(WithDocs=False, RepositoryKeyCheck=False),
        workspace=tmp_path,
        package_cache=tmp_path / "cache",
    )
    conf = Pacman().pacman_conf(context)
    assert "Architecture = x86_64" in conf and "SigLevel = Never" in conf
    assert "NoExtract = usr/share/doc/* usr/share/man/*" in conf
    assert "[core]\nServer = https://fastly.mirror.pkgbuild.com/$repo/os/$arch" in conf
    checked = Context(config=arch_config(), workspace=tmp_path, package_cache=tmp_path / "cache")
    assert "SigLevel = Required DatabaseOptional" in Pacman().pacman_conf(checked)


def test_plan_shows_what_is_installed_from_where(tmp_path):
    result = kosi(tmp_path, "-d", "arch", "-p", "systemd", "-p", "udev", "-p", "linux", "-t", "disk", "plan")
    assert result.returncode == 0, result.stderr
    assert "packages: linux systemd udev" in result.stdout  # sorted, as mkosi 27.1 sorts Packages=
    assert "from [core] https://fastly.mirror.pkgbuild.com/core/os/x86_64" in result.stdout
    assert "from [extra] https://fastly.mirror.pkgbuild.com/extra/os/x86_64" in result.stdout
    assert "install distribution and packages           run" in result.stdout
    # the base layout first, and the default initrd the kernel will get, with its packages
    assert "  first: filesystem\n" in result.stdout
    assert "default initrd (if the image has a kernel):" in result.stdout
    initrd_packages = result.stdout.split("default initrd")[1].splitlines()[1].split()
    assert initrd_packages[0] == "packages:" and {"systemd", "udev", "util-linux"} <= set(initrd_packages)


def vagrant_project(directory: Path) -> Path:
    """The Vagrant how-to's configuration (../shared/spec/vagrant-boxes-howto.txt), with its profiles."""
    (directory / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=arch\n\n[Content]\nPackages=\n systemd\n udev\n linux\n base\n grub\n"
        " openssh\n sudo\n btrfs-progs\n reflector\nHostname=archlinux\nLocale=C.UTF-8\nTimezone=UTC\nKeymap=us\n"
        "Bootable=yes\nBootloader=grub\nBiosBootloader=grub\nKernelCommandLine=net.ifnames=0\n"
    )
    repart = directory / "mkosi.repart"
    repart.mkdir()
    (repart / "00-esp.conf").write_text(
        "[Partition]\nType=esp\nFormat=vfat\nCopyFiles=/boot:/\nCopyFiles=/efi:/\n"
        "SizeMinBytes=512M\nSizeMaxBytes=512M\n"
    )
    (repart / "05-bios.conf").write_text(
        "[Partition]\nType=21686148-6449-6e6f-744e-656564454649\nSizeMinBytes=1M\nSizeMaxBytes=1M\n"
    )
    (repart / "10-root.conf").write_text(
        "[Partition]\nType=root\nFormat=btrfs\nCopyFiles=/\nSizeMinBytes=20G\nSizeMaxBytes=20G\n"
    )
    (directory / "mkosi.postinst.chroot").write_text(
        '#!/bin/sh\nuseradd --create-home --user-group vagrant --password "$(openssl passwd -6 vagrant)"\n'
    )
    (directory / "mkosi.postinst.chroot").chmod(0o755)
    (directory / "mkosi.extra/etc/sudoers.d").mkdir(parents=True)
    (directory / "mkosi.extra/etc/sudoers.d/vagrant").write_text(
        "Defaults:vagrant !requiretty\nvagrant ALL=(ALL) NOPASSWD: ALL\n"
    )
    (directory / "mkosi.extra/etc/systemd/system-preset").mkdir(parents=True)
    (directory / "mkosi.extra/etc/systemd/system-preset/10-base-image.preset").write_text("enable sshd.service\n")
    virtualbox = directory / "mkosi.profiles/virtualbox"
    virtualbox.mkdir(parents=True)
    (virtualbox / "mkosi.conf").write_text(
        "[Output]\nImageId=Arch-Linux-x86_64-virtualbox\n\n[Content]\nPackages=\n virtualbox-guest-utils-nox\n"
    )
    libvirt = directory / "mkosi.profiles/libvirt"
    libvirt.mkdir(parents=True)
    (libvirt / "mkosi.conf").write_text("[Output]\nFormat=disk\nImageId=Arch-Linux-x86_64\n")
    return directory


@pytest.mark.parametrize("profile", ["libvirt", "virtualbox"])
def test_vagrant_howto_plans_cleanly(tmp_path, profile):
    result = kosi(vagrant_project(tmp_path), "--profile", profile, "--json", "plan")
    assert result.returncode == 0, result.stderr
    image = json.loads(result.stdout)["Images"][0]
    assert {"systemd", "udev", "linux"} <= set(image["packages"])
    assert ("virtualbox-guest-utils-nox" in image["packages"]) == (profile == "virtualbox")
    assert image["sources"] == [
        "[core] https://fastly.mirror.pkgbuild.com/core/os/x86_64",
        "[extra] https://fastly.mirror.pkgbuild.com/extra/os/x86_64",
    ]
    steps = {s["step"]: s["skip"] for s in image["steps"]}
    assert steps["install distribution and packages"] is None
    assert steps["install bootloader"] is None


def test_signature_issuer_is_the_signing_key(tmp_path):
    """The key id pacman_signatures reads from a detached signature is the signer's."""
    from kosi.installers.pacman_signatures import issuer

    home = tmp_path / "gnupg"
    fingerprint = pacman_repo.new_key(home, "issuer test <issuer@kosi.invalid>")
    data = tmp_path / "data"
    data.write_text("signed\n")
    pacman_repo.sign(home, data)
    kill_gpg_agent(home)
    assert issuer(Path(f"{data}.sig").read_bytes()) == fingerprint[-16:]
    assert issuer(b"\x88\x00") is None


# ---- real images from a local mirror -------------------------------------------------------------


mirror = served_mirror("arch-mirror", pacman_repo.build, pacman_repo.serve)
package_cache = module_cache("arch-cache")


def project(directory: Path, mirror: pacman_repo.Mirror, cache: Path, settings: str = "") -> Path:
    write_project(directory, f"Distribution=arch\nMirror={mirror.url}", cache, settings)
    keyrings = directory / "mkosi.sandbox/usr/share/keyrings"
    keyrings.mkdir(parents=True, exist_ok=True)
    for path in mirror.keyrings.iterdir():
        (keyrings / path.name).write_bytes(path.read_bytes())
    return directory


image = built_image(
    "arch-image",
    project,
    "[Output]\nManifestFormat=json,changelog\n[Content]\nPackages=kosi-hello\nCleanPackageMetadata=no\n",
)


@pytest.mark.image
def test_image_has_the_package_and_its_dependency(image):
    root = image / "image"
    assert (root / "usr/share/kosi-hello/hello").read_text() == "hello from arch\n"
    assert (root / "usr/lib/kosi-libhello.so").read_text() == "libhello\n"
    assert "ID=arch" in (root / "usr/lib/os-release").read_text()  # from the filesystem package
    names = {p["name"]: p["version"] for p in installed_packages(root)}
    assert names == {"filesystem": "2025.01-1", "kosi-hello": "1.0-1", "kosi-libhello": "2.0-1"}
    # the repository databases stay in the image for pacman in it; the manifest lists the packages
    assert {p.name for p in (root / "var/lib/pacman/sync").iterdir()} == {"core.db", "extra.db"}


@pytest.mark.image
def test_manifest_and_changelog_as_mkosi_writes_them(image):
    """ManifestFormat=json,changelog: byte for byte what mkosi 27.1 wrote building the same
    project from this mirror (tests/installers/data/mkosi-27.1-arch.*, ToolsTree=no)."""
    data = Path(__file__).parent / "data"
    assert (image / "image.manifest").read_text() == (data / "mkosi-27.1-arch.manifest").read_text()
    assert (image / "image.changelog").read_text() == (data / "mkosi-27.1-arch.changelog").read_text()


@pytest.mark.image
def test_private_keyring_holds_only_the_given_keys(image, package_cache):
    """--populate archlinux read the test keyring only, not Debian's or the host's archlinux.gpg."""
    gnupg = next(package_cache.glob("arch~rolling~x86_64/gnupg-*"))
    keys = subprocess.run(
        ["gpg", "--homedir", str(gnupg), "--with-colons", "--list-keys"], capture_output=True, text=True, check=True
    ).stdout
    uids = [line.split(":")[9] for line in keys.splitlines() if line.startswith("uid")]
    assert "kosi Arch test key <arch@kosi.invalid>" in uids
    assert not [u for u in uids if "debian" in u.lower() or "archlinux.org" in u.lower()]


@pytest.mark.image
def test_warm_build_downloads_nothing(mirror, tmp_path):
    """A warm build asks the mirror for no package; with the mirror gone it still succeeds."""
    copy = pacman_repo.serve(pacman_repo.Mirror(mirror.root, mirror.keyrings))
    settings = "[Content]\nPackages=kosi-hello\n"
    check_warm_build(copy, project, tmp_path, settings, "usr/share/kosi-hello/hello")


@pytest.mark.image
def test_package_directory(mirror, package_cache, tmp_path):
    packages = tmp_path / "packages"
    pacman_repo.local_package(packages)
    settings = f"[Content]\nPackages=kosi-local\nPackageDirectories={packages}\n"
    root = built(project(tmp_path / "p", mirror, package_cache, settings))
    assert (root / "usr/share/kosi-local/file").read_text() == "local package\n"
    assert (root / "usr/lib/kosi-libhello.so").exists()  # its dependency, from the mirror


@pytest.mark.image
def test_missing_package_is_one_line(mirror, package_cache, tmp_path):
    result = build(project(tmp_path, mirror, package_cache, "[Content]\nPackages=kosi-nope\n"))
    assert error_line(result) == "error: package 'kosi-nope' not found in arch (core, extra)"


@pytest.mark.image
def test_bad_signature_is_one_line(mirror, package_cache, tmp_path):
    last = error_line(build(project(tmp_path, mirror, package_cache, "[Content]\nPackages=kosi-tampered\n")))
    assert last.startswith(
        "error: signature check failed for package kosi-tampered: its signature by "
        '"kosi Arch test key <arch@kosi.invalid>" is invalid'
    ), last


@pytest.mark.image
def test_package_signed_by_an_unknown_key_is_one_line(mirror, package_cache, tmp_path):
    """kosi-rogue is signed by a key the keyring does not have: pacman must not look it up on a
    keyserver, and the build stops in one line naming the package and the key."""
    line = error_line(build(project(tmp_path, mirror, package_cache, "[Content]\nPackages=kosi-rogue\n")))
    assert line.startswith("error: signature check failed for package kosi-rogue-1.0-1: its signer's key "), line
    assert line.endswith(
        " is not in the keyring /usr/share/keyrings/archlinux.gpg from the sandbox trees "
        "(RepositoryKeyCheck=no skips the check)"
    ), line
    assert not (tmp_path / "image/usr/share/kosi-rogue").exists()


@pytest.mark.image
def test_repository_key_fetch_takes_the_keyring_from_the_mirror(mirror, tmp_path):
    """RepositoryKeyFetch=yes, as mkosi 27.1: archlinux-keyring is downloaded from the mirror and
    its keys are the ones trusted. The project has no keyring of its own and the host's (if any)
    is Arch's real one, which did not sign the test packages."""
    settings = "[Distribution]\nRepositoryKeyFetch=yes\n[Content]\nPackages=kosi-hello\n"
    directory = write_project(tmp_path / "p", f"Distribution=arch\nMirror={mirror.url}", tmp_path / "cache", settings)
    before = len(mirror.requests)
    root = built(directory)
    assert (root / "usr/share/kosi-hello/hello").read_text() == "hello from arch\n"
    assert "/core/os/x86_64/archlinux-keyring-20250101-1-x86_64.pkg.tar.zst" in mirror.requests[before:]
    assert not (root / "usr/share/pacman/keyrings").exists()  # the keyring package is not installed
    (directory / "mkosi.conf").write_text(
        (directory / "mkosi.conf").read_text().replace("Packages=kosi-hello", "Packages=kosi-tampered")
    )
    assert error_line(build(directory)).startswith("error: signature check failed for package kosi-tampered")


@pytest.mark.image
def test_snapshot_from_a_copy_of_the_archive(mirror, tmp_path):
    """`latest-snapshot` reads the archive's repos/last/lastsync; Snapshot= builds from that day's
    repos/YYYY/MM/DD/$repo/os/$arch (the URLs mkosi 27.1 asks for with the same Mirror=)."""
    directory = project(tmp_path, mirror, tmp_path / "cache", "[Content]\nPackages=kosi-hello\n")
    latest = kosi(directory, "latest-snapshot")
    assert (latest.returncode, latest.stdout.strip()) == (0, pacman_repo.SNAPSHOT), latest.stderr
    with (directory / "mkosi.conf").open("a") as conf:
        conf.write(f"[Distribution]\nSnapshot={pacman_repo.SNAPSHOT}\n")
    before = len(mirror.requests)
    root = built(directory)
    assert (root / "usr/share/kosi-hello/hello").read_text() == "hello from arch\n"
    requests = mirror.requests[before:]
    assert requests and all(r.startswith(f"/repos/{pacman_repo.SNAPSHOT}/") for r in requests), requests
    assert f"/repos/{pacman_repo.SNAPSHOT}/core/os/x86_64/kosi-hello-1.0-1-x86_64.pkg.tar.zst" in requests


@pytest.mark.image
def test_unreachable_mirror_is_one_line(mirror, tmp_path):
    line = unreachable_mirror_error(project(tmp_path, mirror, tmp_path / "cache"), mirror.url)
    assert line.startswith("error: cannot fetch http://127.0.0.1:9/core/os/x86_64/core.db: "), line


def test_missing_keyring_is_one_line(tmp_path):
    context = Context(
        config=Config({"Distribution": "arch", "Mirror": "http://127.0.0.1:9"}, directory=tmp_path),
        workspace=tmp_path / "ws",
        package_cache=tmp_path / "cache",
        tools=tmp_path / "empty-tools",
    )
    (tmp_path / "empty-tools/usr").mkdir(parents=True)
    pm = Pacman()
    pm.setup(context)
    with pytest.raises(KosiError) as e:
        pm.sync(context)
    assert str(e.value).startswith("keyring /usr/share/keyrings/archlinux.gpg (in the tools tree ")
    assert "\n" not in str(e.value)


@pytest.mark.image
def test_build_packages_scripts_and_remove_packages(mirror, package_cache, tmp_path):
    """BuildPackages= reach the build overlay only; mkosi-install in a postinst script installs into
    the image through pacman; RemovePackages= takes a package out again, and one that is not
    there is no error (pacman -R would stop at it; mkosi 27.1 passes installed names only)."""
    directory = project(
        tmp_path,
        mirror,
        package_cache,
        "[Content]\nPackages=kosi-hello\nBuildPackages=kosi-extra\nRemovePackages=kosi-hello,no-such-package\n",
    )
    script(
        directory / "mkosi.build",
        'test -f "$BUILDROOT/usr/share/kosi-extra/file"\nmkdir -p "$DESTDIR/usr/share"\n'
        'echo built > "$DESTDIR/usr/share/built"\n',
    )
    script(directory / "mkosi.postinst", 'mkosi-install kosi-extra\npacman -Q kosi-extra > "$BUILDROOT/pacman-q"\n')
    result = build(directory)
    assert result.returncode == 0, result.stderr[-3000:]
    root = directory / "image"
    assert (root / "usr/share/built").read_text() == "built\n"
    assert (root / "usr/share/kosi-extra/file").exists()  # from the postinst script, not BuildPackages=
    assert (root / "pacman-q").read_text() == "kosi-extra 3.0-1\n"
    names = {p["name"] for p in json.loads((directory / "image.manifest").read_text())["packages"]}
    assert names == {"filesystem", "kosi-extra"}  # kosi-hello went with the dependency only it needed
    assert not (root / "usr/share/kosi-hello").exists()


@pytest.mark.image
def test_pacman_from_the_default_tools_tree(mirror, tmp_path):
    """ToolsTree=default for an Arch image: Debian sid's tree with pacman 7 and
    archlinux-keyring (its own cache entry next to the plain tree) installs the image."""
    directory = project(
        tmp_path,
        mirror,
        tmp_path / "cache",
        "ToolsTree=default\n\n[Content]\nPackages=kosi-hello\nCleanPackageMetadata=no\n",
    )
    result = build(directory)
    assert result.returncode == 0, result.stderr[-3000:]
    tree = Path(re.search(r"Using pacman from the tools tree (\S+)", result.stderr).group(1))
    assert tree.name == "debian-sid+package-managers"
    assert (tree / "usr/share/keyrings/archlinux.gpg").exists()
    version = subprocess.run(
        ["dpkg-query", f"--admindir={tree}/var/lib/dpkg", "-W", "-f", "${Version}", "pacman-package-manager"],
        capture_output=True,
        text=True,
    )
    assert version.stdout.startswith("7."), version  # the host (Debian 12) has pacman 6
    root = directory / "image"
    assert (root / "usr/share/kosi-hello/hello").read_text() == "hello from arch\n"
    names = {p["name"]: p["version"] for p in installed_packages(root)}
    assert names == {"filesystem": "2025.01-1", "kosi-hello": "1.0-1", "kosi-libhello": "2.0-1"}


@pytest.mark.image
def test_host_without_pacman_builds_with_the_tools_trees(mirror, package_cache, tmp_path):
    """With no pacman on the host (hidden from kosi's $PATH; the host is untouched) and no
    ToolsTree=, kosi takes its package-manager tools tree and builds the image with its pacman."""
    d = project(tmp_path / "p", mirror, package_cache, "[Content]\nPackages=kosi-hello\n")
    result = build_without_host_package_managers(d, tmp_path)
    output = result.stdout + result.stderr
    assert re.search(r"Using pacman from the tools tree \S+/debian-sid\+package-managers\b", output), output[-3000:]
    assert (d / "image" / "usr/share/kosi-hello/hello").exists()
