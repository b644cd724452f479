"""openSUSE with the zypper backend: repository layouts, and real images built from a local
mirror (tests/installers/zypper_repo.py) laid out and signed as download.opensuse.org is."""

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

sys.path.insert(0, str(Path(__file__).parent))
import zypper_repo
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

KEY = "usr/share/distribution-gpg-keys/opensuse/RPM-GPG-KEY-openSUSE-Tumbleweed"
LEAP_KEY = "usr/share/distribution-gpg-keys/opensuse/RPM-GPG-KEY-openSUSE-2022"


def suse_config(**values) -> Config:
    return Config({"Distribution": "opensuse", **values}, directory=Path("/nonexistent"))


def urls(config: Config) -> list[tuple[str, str]]:
    return [(r.id, r.url) for r in get("opensuse").repositories(config)]


def test_tumbleweed_and_leap_layouts():
    """Tumbleweed's repositories as mkosi 27.1 wrote them (its generated .repo file for the same
    settings: ids, URLs, which are enabled)."""
    base = "https://download.opensuse.org"
    assert enabled(suse_config()) == {
        "oss": (f"{base}/tumbleweed/repo/oss", True),
        "oss-debug": (f"{base}/debug/tumbleweed/repo/oss", False),
        "oss-source": (f"{base}/source/tumbleweed/repo/oss", False),
        "non-oss": (f"{base}/tumbleweed/repo/non-oss", False),
        "non-oss-source": (f"{base}/source/tumbleweed/repo/non-oss", False),
        "oss-update": (f"{base}/update/tumbleweed", True),
        "non-oss-update": (f"{base}/update/tumbleweed-non-oss", False),
    }
    assert enabled(suse_config(Snapshot="20250131")) == {
        "oss": (f"{base}/history/20250131/tumbleweed/repo/oss", True),
        "non-oss": (f"{base}/history/20250131/tumbleweed/repo/non-oss", False),
    }
    arm = enabled(suse_config(Architecture="arm64"))
    assert arm["oss"] == (f"{base}/ports/aarch64/tumbleweed/repo/oss", True)
    assert arm["non-oss-update"] == (f"{base}/ports/aarch64/update/tumbleweed-non-oss", False)
    assert urls(suse_config(LocalMirror="file:///srv/suse")) == [("local-mirror", "file:///srv/suse")]
    assert enabled(suse_config(Repositories=["debug", "non-oss*"]))["oss-debug"][1]
    assert enabled(suse_config(Repositories=["non-oss*"]))["non-oss-update"][1]
    with pytest.raises(KosiError, match="Repositories=extra: not an openSUSE repository"):
        urls(suse_config(Repositories=["extra"]))


#: What mkosi 27.1 wrote into its .repo file and passed zypper for these settings (plus
#: Format=directory): captured with tests/installers/capture_mkosi.py, which runs the oracle's
#: build with a fake zypper. "keys" are the key files mkosi required (from distribution-gpg-keys),
#: "install" what it installed first. One line per repository, sorted.
ORACLE = json.loads((Path(__file__).parent / "data/mkosi-27.1-zypper-repositories.json").read_text())


def mkosi_lines(case: dict) -> list[str]:
    """mkosi's repositories as kosi means to define them, with what docs/compatibility.md lists
    ("openSUSE: repositories"): RepositoryKeyCheck=no is gpgcheck=0 in the file (mkosi passes
    --no-gpg-checks), Repositories= enables the repositories it names in the file (mkosi passes
    --plus-content), and Leap's ports URLs keep the slash mkosi 27.1 drops before update/ and
    distribution/ on its update repositories; and kosi's key sets lack the expired keys."""
    lines = []
    expired = expired_keys(case["settings"])
    for line in case["repositories"]:
        head, _, keys = line.partition(" keys=")
        line = f"{head} keys={' '.join(k for k in keys.split() if k not in expired)}" if _ else line
        line = re.sub(r"(/ports/[^/ ]+)(update/|distribution/)", r"\1/\2", line)
        if "--no-gpg-checks" in case["options"]:
            line = re.sub(r" gpgcheck=1 keys=.*", " gpgcheck=0 keys=", line)
        for option in case["options"]:
            word = option.removeprefix("--plus-content=")
            if line.split()[0] in (word, f"oss-{word}"):
                line = line.replace(" enabled=0 ", " enabled=1 ")
        lines.append(line)
    return sorted(lines)


def expired_keys(settings: dict) -> set[str]:
    """mkosi 27.1's keys that kosi leaves out: distribution-gpg-keys has them only expired
    (docs/compatibility.md): RPM-GPG-KEY-openSUSE (Leap 15's, in mkosi's Tumbleweed set too)
    and RPM-GPG-KEY-openSUSE-Backports."""
    expired = {"RPM-GPG-KEY-openSUSE-Backports"}
    if not str(settings.get("Release", "")).startswith("15."):
        expired.add("RPM-GPG-KEY-openSUSE")
    return expired


def kosi_lines(settings: dict) -> list[str]:
    values: dict = dict(settings)
    if "Repositories" in values:
        values["Repositories"] = values["Repositories"].split(",")
    if "RepositoryKeyCheck" in values:
        values["RepositoryKeyCheck"] = values["RepositoryKeyCheck"] == "yes"
    config = Config(values, directory=Path("/nonexistent"))
    return sorted(
        f"{r.id} enabled={int(r.enabled)} baseurl={r.url} gpgcheck={int(r.check)} "
        f"keys={' '.join(Path(k).name for k in r.gpgkeys) if r.check else ''}"
        for r in get("opensuse").repositories(config)
    )


@pytest.mark.parametrize("case", sorted(ORACLE))
def test_repositories_equal_mkosi_27_1s(case):
    """Ids, enablement, URL layouts (Mirror=, Snapshot=, ports), keys and key checking."""
    assert kosi_lines(ORACLE[case]["settings"]) == mkosi_lines(ORACLE[case])


@pytest.mark.parametrize("case", sorted(ORACLE))
def test_first_packages_are_mkosi_27_1s(case):
    """A new image gets filesystem and the release package first (kosi/installers/zypper.py)."""
    config = Config(dict(ORACLE[case]["settings"]), directory=Path("/nonexistent"))
    assert ["filesystem", *get("opensuse").release_packages(config)] == ORACLE[case]["install"]


def test_keys_are_mkosi_27_1s_without_the_expired_ones():
    """mkosi 27.1's key sets less the superseded keys distribution-gpg-keys has only expired;
    the SuSE-* ones are looked for in its suse/ directory."""
    for case in ORACLE.values():
        config = Config(dict(case["settings"]), directory=Path("/nonexistent"))
        keys = get("opensuse").keys(config)
        assert sorted(Path(k).name for k in keys) == sorted(set(case["keys"]) - expired_keys(case["settings"]))
        assert all(Path(k).parent.name == ("suse" if "SuSE" in k else "opensuse") for k in keys)


def enabled(config: Config) -> dict[str, tuple[str, bool]]:
    return {r.id: (r.url, r.enabled) for r in get("opensuse").repositories(config)}


def test_bad_release_and_snapshot_are_one_line():
    with pytest.raises(KosiError, match=r"Release=42: openSUSE releases are tumbleweed, leap or a Leap version"):
        urls(suse_config(Release="42"))
    with pytest.raises(KosiError, match=r"Snapshot=: openSUSE Leap 15.6 has no snapshots"):
        urls(suse_config(Release="15.6", Snapshot="20250131"))


def test_plan_shows_the_repositories(tmp_path):
    result = kosi(tmp_path, "-d", "opensuse", "-p", "systemd", "-t", "directory", "plan")
    assert result.returncode == 0, result.stderr
    assert "packages: systemd" in result.stdout
    assert "from [oss] https://download.opensuse.org/tumbleweed/repo/oss" in result.stdout
    assert "non-oss" not in result.stdout  # defined, but disabled


# ---- real images from a local mirror -------------------------------------------------------------


mirror = served_mirror("suse-mirror", zypper_repo.build, zypper_repo.serve)
package_cache = module_cache("suse-cache")


def project(
    directory: Path, mirror, cache: Path, settings: str = "", *, release: str = "tumbleweed", key: Path | None = None
) -> Path:
    write_project(directory, f"Distribution=opensuse\nRelease={release}\nMirror={mirror.url}", cache, settings)
    target = directory / "mkosi.sandbox" / (KEY if release == "tumbleweed" else LEAP_KEY)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes((key or mirror.key).read_bytes())
    return directory


image = built_image("suse-image", project, "[Content]\nPackages=kosi-hello\nCleanPackageMetadata=no\nWithDocs=no\n")


def rpm_query(root: Path) -> set[str]:
    out = subprocess.run(
        ["rpm", "--root", str(root), "--dbpath", "/usr/lib/sysimage/rpm", "-qa", "--qf", "%{NAME}-%{VERSION}\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


@pytest.mark.image
def test_image_has_the_package_and_its_dependency(image):
    root = image / "image"
    assert (root / "usr/share/kosi-hello/file").read_text() == "kosi-hello 1.0\n"
    assert (root / "usr/share/kosi-libhello/file").read_text() == "kosi-libhello 2.0\n"
    assert not (root / "usr/share/doc/kosi-hello").exists()  # WithDocs=no
    assert {"filesystem-84.87", "kosi-hello-1.0", "kosi-libhello-2.0"} <= rpm_query(root)
    manifest = json.loads((image / "image.manifest").read_text())
    assert {(p["type"], p["name"], p["version"]) for p in manifest["packages"] if p["name"] != "gpg-pubkey"} == {
        ("rpm", "filesystem", "84.87-1"),
        ("rpm", "openSUSE-release", "20250101-1"),
        ("rpm", "kosi-hello", "1.0-1"),
        ("rpm", "kosi-libhello", "2.0-1"),
    }
    # no @System solv file of the build's cache path, nor the zypp pid, in the image
    assert not (root / "var/tmp").exists() or not any((root / "var/tmp").iterdir())
    assert not (root / "run/zypp.pid").exists()


@pytest.mark.image
def test_leap_layout_builds(mirror, package_cache, tmp_path):
    result = build(project(tmp_path, mirror, package_cache, "[Content]\nPackages=kosi-hello\n", release="15.6"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "image/usr/share/kosi-hello/file").exists()


@pytest.mark.image
def test_warm_build_downloads_nothing(mirror, tmp_path):
    """A warm build asks the mirror for no package; with the mirror gone it still succeeds."""
    copy = zypper_repo.serve(zypper_repo.RpmMirror(mirror.root, mirror.keyrings, key=mirror.key))
    settings = "[Content]\nPackages=kosi-hello\n"
    check_warm_build(copy, project, tmp_path, settings, "usr/share/kosi-hello/file")


@pytest.mark.image
def test_package_directory(mirror, package_cache, tmp_path):
    packages = tmp_path / "packages"
    zypper_repo.local_rpm(packages)
    settings = f"[Content]\nPackages=kosi-local\nPackageDirectories={packages}\n"
    root = built(project(tmp_path / "p", mirror, package_cache, settings))
    assert (root / "usr/share/kosi-local/file").read_text() == "local package\n"
    assert (root / "usr/share/kosi-libhello/file").exists()


@pytest.mark.image
def test_missing_package_is_one_line(mirror, package_cache, tmp_path):
    result = build(project(tmp_path, mirror, package_cache, "[Content]\nPackages=kosi-nope\n"))
    assert error_line(result) == "error: package 'kosi-nope' not found in opensuse tumbleweed (oss, oss-update)"


@pytest.mark.image
def test_bad_package_signature_is_one_line(mirror, package_cache, tmp_path):
    line = error_line(build(project(tmp_path, mirror, package_cache, "[Content]\nPackages=kosi-tampered\n")))
    assert line.startswith("error: signature check failed for package kosi-tampered-1.0-1.noarch from oss: "), line


@pytest.mark.image
def test_metadata_signed_by_another_key_is_one_line(mirror, tmp_path):
    other = tmp_path / "other-key"
    home = tmp_path / "gnupg"
    fingerprint = zypper_repo.new_key(home, "not the mirror's key <other@kosi.invalid>")
    other.write_bytes(
        subprocess.run(
            ["gpg", "--homedir", str(home), "--armor", "--export", fingerprint], check=True, stdout=subprocess.PIPE
        ).stdout
    )
    kill_gpg_agent(home)
    line = error_line(build(project(tmp_path / "p", mirror, tmp_path / "cache", key=other)))
    assert line.startswith(f"error: signature check failed for repository {mirror.url}/tumbleweed/"), line
    assert "not signed by the configured keys (/usr/share/distribution-gpg-keys/opensuse/" in line


@pytest.mark.image
def test_repository_key_fetch_takes_the_keys_the_mirror_publishes(mirror, tmp_path):
    """RepositoryKeyFetch=yes without any key file: the enabled repositories' repomd.xml.key are
    fetched (the keys mkosi 27.1 lets zypper auto-import) and checked against, packages too."""
    settings = "[Distribution]\nRepositoryKeyFetch=yes\n[Content]\nPackages=kosi-hello\n"
    directory = write_project(
        tmp_path / "p", f"Distribution=opensuse\nMirror={mirror.url}", tmp_path / "cache", settings
    )
    before = len(mirror.requests)
    root = built(directory)
    assert (root / "usr/share/kosi-hello/file").read_text() == "kosi-hello 1.0\n"
    keys = {r for r in mirror.requests[before:] if r.endswith("/repomd.xml.key")}
    assert keys == {"/tumbleweed/repo/oss/repodata/repomd.xml.key", "/update/tumbleweed/repodata/repomd.xml.key"}
    (directory / "mkosi.conf").write_text(
        (directory / "mkosi.conf").read_text().replace("Packages=kosi-hello", "Packages=kosi-tampered")
    )
    assert error_line(build(directory)).startswith("error: signature check failed for package kosi-tampered")


@pytest.mark.image
def test_unreachable_mirror_is_one_line(mirror, tmp_path):
    line = unreachable_mirror_error(project(tmp_path, mirror, tmp_path / "cache"), mirror.url)
    assert line.startswith("error: cannot fetch from repository http://127.0.0.1:9/tumbleweed/"), line


def test_missing_key_file_is_one_line(tmp_path):
    (tmp_path / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=opensuse\nMirror=http://127.0.0.1:9\n"
        "[Output]\nFormat=directory\nOutput=image\n"
        f"[Build]\nPackageCacheDirectory={tmp_path / 'cache'}\n"
        "ToolsTree=" + str(tmp_path / "tools") + "\n"
    )
    (tmp_path / "tools/usr").mkdir(parents=True)
    assert error_line(build(tmp_path)).startswith(
        "error: key file /usr/share/distribution-gpg-keys/opensuse/RPM-GPG-KEY-openSUSE-Tumbleweed (in the tools tree "
    )


@pytest.mark.image
def test_build_packages_scripts_and_remove_packages(mirror, package_cache, tmp_path):
    """BuildPackages= reach the build overlay only; mkosi-install and rpm in a postinst script act on
    the image; RemovePackages= takes a package out again, and one that is not there is no error
    (mkosi 27.1's --ignore-unknown: the default initrd removes shadow whether it came or not)."""
    directory = project(
        tmp_path,
        mirror,
        package_cache,
        "[Content]\nPackages=kosi-libhello\nBuildPackages=kosi-hello\nRemovePackages=kosi-libhello,no-such-package\n",
    )
    script(
        directory / "mkosi.build",
        'test -f "$BUILDROOT/usr/share/kosi-hello/file"\nmkdir -p "$DESTDIR/usr/share"\n'
        'echo built > "$DESTDIR/usr/share/built"\n',
    )
    script(directory / "mkosi.postinst", 'mkosi-install filesystem\nrpm -q filesystem > "$BUILDROOT/rpm-q"\n')
    result = build(directory)
    assert result.returncode == 0, result.stderr[-3000:]
    root = directory / "image"
    assert (root / "usr/share/built").read_text() == "built\n"
    assert not (root / "usr/share/kosi-hello/file").exists()  # BuildPackages= stay out of the image
    assert (root / "rpm-q").read_text() == "filesystem-84.87-1.noarch\n"
    names = {p["name"] for p in json.loads((directory / "image.manifest").read_text())["packages"]}
    assert names == {"filesystem", "gpg-pubkey", "openSUSE-release"}
    assert not (root / "usr/share/kosi-libhello/file").exists()


@pytest.mark.image
def test_zypper_and_rpm_from_the_default_tools_tree(mirror, tmp_path):
    """ToolsTree=default for openSUSE: sid's package-manager tree has zypper and an rpm with the
    ndb backend (Debian 12's has none), so the image's database is ndb, as openSUSE's own; the log
    says so."""
    settings = "ToolsTree=default\n\n[Content]\nPackages=kosi-hello\nCleanPackageMetadata=no\n"
    # The tree's distribution-gpg-keys has openSUSE's own RPM-GPG-KEY-openSUSE-Tumbleweed, which
    # the sandbox tree replaces, as with any mirror of one's own. An expired key (as openSUSE's
    # older ones are) verifies nothing: the build stops in one line naming it.
    home = tmp_path / "expired"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--passphrase", "", "--faked-system-time", "20200101T000000"]
    subprocess.run([*gpg, "--quick-gen-key", "old <old@kosi.invalid>", "rsa2048", "sign", "1y"], check=True)
    old = subprocess.run([*gpg, "--armor", "--export"], capture_output=True, check=True).stdout
    kill_gpg_agent(home)
    refused = project(tmp_path / "refused", mirror, tmp_path / "cache", settings, key=None)
    (refused / "mkosi.sandbox" / KEY).write_bytes(old)
    line = error_line(build(refused))
    expected = (
        r"error: the key /\S+/RPM-GPG-KEY-openSUSE-Tumbleweed \(from the sandbox trees\) \(\w+\) has expired on 2020-"
    )
    assert re.match(expected, line), line
    assert line.endswith("mkosi.sandbox/ as /usr/share/distribution-gpg-keys/opensuse/RPM-GPG-KEY-openSUSE-Tumbleweed")

    directory = project(tmp_path / "image", mirror, tmp_path / "cache", settings)
    result = build(directory)
    assert result.returncode == 0, result.stderr[-3000:]
    # rpm 6, whose signature checks zypper cannot read: the signed metadata's checksums serve
    assert "rpm 6: package signatures are left to zypper's default" in result.stderr
    match = re.search(r"rpm database: ndb, as openSUSE's own \(the tools tree's rpm \((\S+)\) has it\)", result.stderr)
    assert match, result.stderr[-3000:]
    tree = Path(match.group(1))
    assert tree.name == "debian-sid+package-managers"
    root = directory / "image"
    assert (root / "usr/share/kosi-hello/file").read_text() == "kosi-hello 1.0\n"
    assert (root / "usr/share/kosi-libhello/file").read_text() == "kosi-libhello 2.0\n"
    assert (root / "usr/lib/sysimage/rpm/Packages.db").exists()
    assert not (root / "usr/lib/sysimage/rpm/rpmdb.sqlite").exists()
    from kosi.sandbox import Mount, run, sandbox_command

    query = ["rpm", f"--root={root}", "--dbpath=/usr/lib/sysimage/rpm", "-qa", "--qf", "%{NAME}-%{VERSION}\n"]
    prefix = sandbox_command(mounts=[Mount(root, str(root), "ro-bind")], tools=tree)
    names = set(run(query, sandbox=prefix, stdout=-1, stderr=-1, input="").stdout.split())
    assert {"filesystem-84.87", "kosi-hello-1.0", "kosi-libhello-2.0"} <= names
    manifest = json.loads((directory / "image.manifest").read_text())
    assert {p["name"] for p in manifest["packages"]} == {
        "filesystem",
        "gpg-pubkey",
        "kosi-hello",
        "kosi-libhello",
        "openSUSE-release",
    }


@pytest.mark.image
def test_host_without_zypper_builds_with_the_tools_trees(mirror, package_cache, tmp_path):
    """With no zypper on the host (hidden from kosi's $PATH; the host is untouched) and no
    ToolsTree=, kosi takes its package-manager tools tree and builds the image with its zypper.
    (The tree's distribution-gpg-keys has openSUSE's real second key, which rpm refuses once its
    binding signature expired: the test key takes its place too.)"""
    d = project(tmp_path / "p", mirror, package_cache, "[Content]\nPackages=kosi-hello\n")
    (d / "mkosi.sandbox" / LEAP_KEY).write_bytes(mirror.key.read_bytes())
    result = build_without_host_package_managers(d, tmp_path)
    output = result.stdout + result.stderr
    assert re.search(r"the tools tree's rpm \(\S+/debian-sid\+package-managers\)", output), output[-3000:]
    assert (d / "image" / "usr/share/kosi-hello/file").exists()
