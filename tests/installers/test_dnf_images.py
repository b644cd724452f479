"""Fedora and CentOS Stream images built for real with bin/kosi and dnf, from rpm-md
repositories made here (tests/installers/rpm_repo.py): packages from rpmbuild, signed by a
throwaway key, laid out as the distributions' mirrors are, served on 127.0.0.1.

One server and one set of repositories for the module; every build has its own package
cache unless it tests the warm cache.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import rpm_repo
from image_build import REPO, build_without_host_package_managers, error_line, package_requests, script
from image_build import build as kosi_build
from rpm_repo import Spec

pytestmark = pytest.mark.image


SNAPSHOT = "20250101.0"


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    base = tmp_path_factory.mktemp("rpm-mirror")
    key = rpm_repo.SigningKey.create(base / "gnupg", "kosi test")
    other = rpm_repo.SigningKey.create(base / "gnupg-other", "someone else")
    built = rpm_repo.build_packages(
        base / "build",
        [
            *rpm_repo.base_specs(),
            Spec("rogue", files={"/usr/share/rogue/marker": "signed by someone else"}),
            Spec("epel-hello", requires=("hello",), files={"/usr/share/epel-hello/marker": "from EPEL"}),
            Spec("localpkg", files={"/usr/share/localpkg/marker": "from a package directory"}),
        ],
    )
    rpm_repo.sign([p for name, p in built.items() if name not in ("rogue", "localpkg")], key)
    rpm_repo.sign([built["rogue"]], other)
    root = base / "mirror"
    distribution = [built[n] for n in ("basesystem", "filesystem", "libhello", "hello", "rogue")]
    rpm_repo.publish(root / rpm_repo.fedora_release_path("42"), distribution, key)
    rpm_repo.publish(root / rpm_repo.fedora_updates_path("42"), [], key)
    rpm_repo.publish(root / rpm_repo.fedora_release_path("rawhide"), distribution, key)
    # CentOS Stream 10: the library in BaseOS, the program in AppStream, EPEL next to it.
    rpm_repo.publish(
        root / rpm_repo.centos_path("10", "BaseOS"), [built[n] for n in ("basesystem", "filesystem", "libhello")], key
    )
    rpm_repo.publish(root / rpm_repo.centos_path("10", "AppStream"), [built[n] for n in ("hello", "rogue")], key)
    rpm_repo.publish(root / rpm_repo.centos_path("10", "CRB"), [], key)
    rpm_repo.publish(root / rpm_repo.centos_extras_path("10"), [], key)
    rpm_repo.publish(root / rpm_repo.epel_path("10"), [built["epel-hello"]], key)
    # Snapshot=: the compose services' layouts (kojipkgs, composes.stream.centos.org)
    koji = root / "koji/compose/42"
    rpm_repo.publish(koji / f"Fedora-42-{SNAPSHOT}/compose/Everything/x86_64/os", distribution, key)
    (koji / "latest-Fedora-42").mkdir()
    (koji / "latest-Fedora-42/COMPOSE_ID").write_text(f"Fedora-42-{SNAPSHOT}\n")
    composes = root / "composes/stream-10/production"
    for component, names in (
        ("BaseOS", ["basesystem", "filesystem", "libhello"]),
        ("AppStream", ["hello"]),
        ("CRB", []),
    ):
        path = composes / f"CentOS-Stream-10-{SNAPSHOT}/compose/{component}/x86_64/os"
        rpm_repo.publish(path, [built[n] for n in names], key)
    (composes / "latest-CentOS-Stream/compose").mkdir(parents=True)
    (composes / "latest-CentOS-Stream/compose/.composeinfo").write_text(
        f"[compose]\ndate = 20250101\nid = CentOS-Stream-10-{SNAPSHOT}\nrespin = 0\ntype = production\n"
    )
    local = base / "local-packages"
    local.mkdir()
    (local / built["localpkg"].name).write_bytes(built["localpkg"].read_bytes())
    key.close()
    other.close()
    with rpm_repo.Server(root) as server:
        yield {"url": server.url, "server": server, "key": key.public, "local": local, "base": base}


def project(
    directory: Path,
    distribution: str,
    release: str,
    mirror_url: str,
    *,
    packages: str = "hello",
    keys: dict[str, Path] | None = None,
    extra: str = "",
    cache: Path | None = None,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ws").mkdir(exist_ok=True)
    (directory / "mkosi.output").mkdir(exist_ok=True)
    cache = cache or directory / "pkgcache"
    (directory / "mkosi.conf").write_text(
        f"[Distribution]\nDistribution={distribution}\nRelease={release}\nMirror={mirror_url}\n\n"
        "[Output]\nFormat=directory\nOutput=image\nManifestFormat=json\n\n"
        f"[Content]\nPackages={packages}\nBootable=no\nCleanPackageMetadata=no\nWithDocs=no\n{extra}\n"
        f"[Build]\nWorkspaceDirectory={directory / 'ws'}\nPackageCacheDirectory={cache}\n"
    )
    pki = directory / "mkosi.sandbox/etc/pki/rpm-gpg"
    pki.mkdir(parents=True, exist_ok=True)
    for name, path in (keys or {}).items():
        (pki / name).write_bytes(path.read_bytes())
    return directory


def rpm_qa(root: Path, dbpath: str = "/usr/lib/sysimage/rpm") -> set[str]:
    result = subprocess.run(
        ["rpm", f"--root={root}", f"--dbpath={dbpath}", "-qa", "--qf", "%{NAME}\n"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    return set(result.stdout.split()) - {"gpg-pubkey"}


FEDORA_KEY = "RPM-GPG-KEY-fedora-42-primary"
CENTOS_KEY = "RPM-GPG-KEY-CentOS-Official-SHA256"
CENTOS_KEYS = (CENTOS_KEY, "RPM-GPG-KEY-CentOS-SIG-Extras")


def fedora(directory: Path, mirror: dict, **options) -> Path:
    """A Fedora 42 project on the test mirror, trusting its key as Fedora's."""
    return project(directory, "fedora", "42", f"{mirror['url']}/fedora", keys={FEDORA_KEY: mirror["key"]}, **options)


def centos(directory: Path, mirror: dict, *, keys: tuple[str, ...] = CENTOS_KEYS, **options) -> Path:
    """A CentOS Stream 10 project on the test mirror, trusting its key under the names `keys`."""
    url = f"{mirror['url']}/centos-stream"
    return project(directory, "centos", "10", url, keys=dict.fromkeys(keys, mirror["key"]), **options)


#: a project of each distribution on the test mirror
DISTRIBUTIONS = {"fedora": fedora, "centos": centos}


@pytest.fixture(scope="module")
def fedora_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("fedora-pkgcache")


def test_fedora_package_and_its_dependency(mirror, tmp_path, fedora_cache):
    d = fedora(tmp_path, mirror, cache=fedora_cache)
    before = len(mirror["server"].requests)
    result = kosi_build(d)
    assert result.returncode == 0, result.stderr[-4000:]
    root = d / "mkosi.output/image"
    assert (root / "usr/bin/hello").read_text() == "#!/bin/sh\necho hello\n"
    assert (root / "usr/lib64/libhello.so.2").read_text() == "libhello 2.1\n"
    assert (root / "bin").is_symlink() and (root / "etc/kosi-test-release").exists()
    assert not (root / "usr/share/doc/hello/README").exists()  # WithDocs=no
    assert rpm_qa(root) == {"basesystem", "filesystem", "libhello", "hello"}
    manifest = json.loads((d / "mkosi.output/image.manifest").read_text())
    versions = {p["name"]: p["version"] for p in manifest["packages"]}
    assert versions.pop("gpg-pubkey")  # the imported key, listed as mkosi 27.1 lists it
    assert versions == {"basesystem": "11-1", "filesystem": "3.18-1", "libhello": "2.1-1", "hello": "1.4-1"}
    # The build's paths outside the image never land in it.
    assert not (root / str(fedora_cache).lstrip("/")).exists()
    assert not (root / str(d / "ws").lstrip("/")).exists()
    requests = mirror["server"].requests[before:]
    assert any(r.endswith("/releases/42/Everything/x86_64/os/Packages/h/hello-1.4-1.x86_64.rpm") for r in requests)
    assert any(r.startswith("/fedora/linux/updates/42/Everything/x86_64/repodata/") for r in requests)
    assert "Using dnf" in result.stderr + result.stdout


def build_offline(mirror, directory: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    """A build with the mirror's server stopped, and what was asked of the server meanwhile."""
    server = mirror["server"]
    before = len(server.requests)
    server.stop()
    try:
        result = kosi_build(directory)
    finally:
        server.start()
    return result, server.requests[before:]


def build_counting(mirror, directory: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    """A build with the mirror served, and what was asked of its server meanwhile."""
    before = len(mirror["server"].requests)
    result = kosi_build(directory)
    return result, mirror["server"].requests[before:]


@pytest.mark.parametrize("distribution", ["fedora", "centos"])
def test_warm_cache_downloads_nothing(mirror, tmp_path, distribution):
    """The second build with the same package cache asks the mirror for no package (counted at
    its server, the first build's downloads too), and works with the mirror gone."""
    cache = tmp_path / "pkgcache"
    d = DISTRIBUTIONS[distribution](tmp_path / "p", mirror, cache=cache)
    result, requests = build_counting(mirror, d)
    assert result.returncode == 0, result.stderr[-4000:]
    assert len(package_requests(requests)) == 4, requests  # basesystem, filesystem, libhello, hello
    result, requests = build_counting(mirror, d)
    assert result.returncode == 0, result.stderr[-4000:]
    assert package_requests(requests) == [], requests
    result, requests = build_offline(mirror, d)
    assert result.returncode == 0, result.stderr[-4000:]
    assert requests == []
    assert rpm_qa(d / "mkosi.output/image") == {"basesystem", "filesystem", "libhello", "hello"}


def test_host_without_dnf_builds_with_the_tools_trees(mirror, tmp_path):
    """With no dnf nor dnf5 on the host (hidden from kosi's $PATH; the host is untouched) and no
    ToolsTree=, kosi takes its package-manager tools tree (sid's, with dnf5) and builds the image
    with the dnf there."""
    d = fedora(tmp_path / "p", mirror)
    result = build_without_host_package_managers(d, tmp_path)
    output = result.stderr + result.stdout
    assert "is installed with dnf5 or dnf, which the host lacks" in output, output[-3000:]
    assert re.search(r"Using dnf5 \(dnf5\) from the tools tree \S+/debian-sid\+package-managers\b", output), output[
        -3000:
    ]
    assert rpm_qa(d / "mkosi.output/image") == {"basesystem", "filesystem", "libhello", "hello"}


def test_fedora_rawhide_is_the_default_release(mirror, tmp_path):
    d = project(
        tmp_path,
        "fedora",
        "rawhide",
        f"{mirror['url']}/fedora",
        keys={"RPM-GPG-KEY-fedora-rawhide-primary": mirror["key"]},
    )
    conf = d / "mkosi.conf"
    conf.write_text(conf.read_text().replace("Release=rawhide\n", ""))
    result = kosi_build(d)
    assert result.returncode == 0, result.stderr[-4000:]
    assert rpm_qa(d / "mkosi.output/image") == {"basesystem", "filesystem", "libhello", "hello"}
    assert any("/fedora/linux/development/rawhide/Everything/x86_64/os/" in r for r in mirror["server"].requests)


@pytest.mark.parametrize("distribution", ["fedora", "centos"])
def test_package_directory(mirror, tmp_path, distribution):
    extra = f"PackageDirectories={mirror['local']}\n"
    d = DISTRIBUTIONS[distribution](tmp_path, mirror, packages="hello,localpkg", extra=extra)
    result = kosi_build(d)
    assert result.returncode == 0, result.stderr[-4000:]
    root = d / "mkosi.output/image"
    assert (root / "usr/share/localpkg/marker").read_text() == "from a package directory\n"
    assert "localpkg" in rpm_qa(root)


@pytest.mark.parametrize("distribution", ["fedora", "centos"])
def test_missing_package_is_one_line(mirror, tmp_path, distribution):
    d = DISTRIBUTIONS[distribution](tmp_path, mirror, packages="hello,no-such-package")
    line = error_line(kosi_build(d))
    assert "no-such-package" in line and "not found" in line, line


@pytest.mark.parametrize(
    ("distribution", "key"),
    [("fedora", "RPM-GPG-KEY-fedora-42-primary"), ("centos", "RPM-GPG-KEY-CentOS-Official-SHA256")],
)
def test_bad_signature_is_one_line(mirror, tmp_path, distribution, key):
    d = DISTRIBUTIONS[distribution](tmp_path, mirror, packages="rogue")
    line = error_line(kosi_build(d))
    assert "signature" in line and "rogue-1.0-1.x86_64" in line and key in line, line
    assert not (d / "mkosi.output/image/usr/share/rogue/marker").exists()


def test_fedora_missing_key_is_one_line(mirror, tmp_path):
    d = project(tmp_path, "fedora", "42", f"{mirror['url']}/fedora")
    line = error_line(kosi_build(d))
    assert FEDORA_KEY in line and "repository 'fedora'" in line, line


def test_fedora_unreachable_mirror_is_one_line(mirror, tmp_path):
    d = project(tmp_path, "fedora", "42", "http://127.0.0.1:9/fedora", keys={FEDORA_KEY: mirror["key"]})
    line = error_line(kosi_build(d))
    assert "http://127.0.0.1:9/fedora/linux/releases/42/Everything/x86_64/os" in line, line
    assert "repository 'fedora'" in line and "Connection refused" in line, line


def test_centos_stream_baseos_and_appstream(mirror, tmp_path):
    """EPEL and HyperScale are defined but disabled: their keys are not needed."""
    d = centos(tmp_path, mirror)
    before = len(mirror["server"].requests)
    result = kosi_build(d)
    assert result.returncode == 0, result.stderr[-4000:]
    root = d / "mkosi.output/image"
    assert rpm_qa(root) == {"basesystem", "filesystem", "libhello", "hello"}
    requests = mirror["server"].requests[before:]
    assert any(r == "/centos-stream/10-stream/AppStream/x86_64/os/Packages/h/hello-1.4-1.x86_64.rpm" for r in requests)
    assert any(r == "/centos-stream/10-stream/BaseOS/x86_64/os/Packages/l/libhello-2.1-1.x86_64.rpm" for r in requests)
    assert not any("/epel/" in r for r in requests)


def test_centos_epel_through_repositories(mirror, tmp_path):
    d = centos(tmp_path / "nokey", mirror, packages="epel-hello", extra="Repositories=epel\n")
    line = error_line(kosi_build(d))
    assert "RPM-GPG-KEY-EPEL-10" in line and "repository 'epel'" in line, line

    keys = (*CENTOS_KEYS, "RPM-GPG-KEY-EPEL-10")
    d = centos(tmp_path / "key", mirror, keys=keys, packages="epel-hello", extra="Repositories=epel\n")
    result = kosi_build(d)
    assert result.returncode == 0, result.stderr[-4000:]
    root = d / "mkosi.output/image"
    assert (root / "usr/share/epel-hello/marker").read_text() == "from EPEL\n"
    assert rpm_qa(root) == {"basesystem", "filesystem", "libhello", "hello", "epel-hello"}


@pytest.mark.parametrize("dnf", ["dnf 4", "dnf5"])
def test_fedora_scripts_overlay_volatile_and_removal(mirror, tmp_path, fedora_cache, dnf):
    """BuildPackages= only in the build overlay, VolatilePackages= from a package directory,
    mkosi-install and rpm acting on the image from a postinst script, RemovePackages=; with the
    host's dnf 4 and with dnf5 from sid's tools tree (its own package cache)."""
    d = fedora(
        tmp_path,
        mirror,
        packages="filesystem,libhello",
        cache=fedora_cache if dnf == "dnf 4" else tmp_path / "dnf5-cache",
        extra=f"BuildPackages=hello\nVolatilePackages=localpkg\nPackageDirectories={mirror['local']}\n"
        "RemovePackages=hello\n",
    )
    conf = d / "mkosi.conf"
    tools = "[Build]\nToolsTree=default\nToolsTreeRelease=sid\n" if dnf == "dnf5" else ""
    conf.write_text(conf.read_text().replace("CleanPackageMetadata=no\n", "") + tools)
    script(d / "mkosi.build", 'test -x "$BUILDROOT/usr/bin/hello"\necho built > "$DESTDIR/built-marker"\n')
    script(
        d / "mkosi.postinst",
        'test ! -e "$BUILDROOT/usr/bin/hello"\nmkosi-install hello\nrpm -q hello > "$BUILDROOT/rpm-q-hello"\n',
    )
    result = kosi_build(d)
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"Using {'dnf5' if dnf == 'dnf5' else 'dnf'} ({dnf})" in result.stderr + result.stdout
    root = d / "mkosi.output/image"
    assert (root / "built-marker").read_text() == "built\n"
    assert (root / "rpm-q-hello").read_text() == "hello-1.4-1.x86_64\n"
    assert not (root / "usr/bin/hello").exists()  # RemovePackages=
    assert (root / "usr/lib64/libhello.so.2").exists()
    assert (root / "usr/share/localpkg/marker").exists()
    # No rpm in the image: CleanPackageMetadata=auto removes the database, the manifest keeps the list.
    assert not (root / "usr/lib/sysimage/rpm").exists()
    manifest = json.loads((d / "mkosi.output/image.manifest").read_text())
    assert sorted(p["name"] for p in manifest["packages"]) == [
        "basesystem",
        "filesystem",
        "gpg-pubkey",
        "libhello",
        "localpkg",
    ]


@pytest.mark.parametrize(
    "distribution, release, service, keys, path",
    [
        ("fedora", "42", "koji", [FEDORA_KEY], f"/koji/compose/42/Fedora-42-{SNAPSHOT}/compose/Everything/x86_64/os/"),
        (
            "centos",
            "10",
            "composes",
            CENTOS_KEYS,
            f"/composes/stream-10/production/CentOS-Stream-10-{SNAPSHOT}/compose/AppStream/x86_64/os/",
        ),
    ],
)
def test_snapshot_from_a_copy_of_the_compose_service(mirror, tmp_path, distribution, release, service, keys, path):
    """`kosi latest-snapshot` reads the newest compose's id, Snapshot= builds from that compose."""
    d = project(tmp_path, distribution, release, f"{mirror['url']}/{service}", keys={k: mirror["key"] for k in keys})
    latest = subprocess.run(
        [sys.executable, str(REPO / "bin/kosi"), "-C", str(d), "latest-snapshot"], capture_output=True, text=True
    )
    assert latest.returncode == 0, latest.stderr
    assert latest.stdout.strip() == SNAPSHOT
    conf = d / "mkosi.conf"
    conf.write_text(conf.read_text().replace("[Output]", f"Snapshot={SNAPSHOT}\n\n[Output]"))
    before = len(mirror["server"].requests)
    result = kosi_build(d)
    assert result.returncode == 0, result.stderr[-4000:]
    assert rpm_qa(d / "mkosi.output/image") == {"basesystem", "filesystem", "libhello", "hello"}
    requests = mirror["server"].requests[before:]
    assert any(r.startswith(path) and r.endswith("hello-1.4-1.x86_64.rpm") for r in requests), requests


# ---- dnf5 from a Debian tools tree ------------------------------------------------------------------


def in_tools_tree(tree: Path, command: list[str], root: Path) -> str:
    """`command` run with the tools tree's programs (the host's rpm cannot read every database)."""
    from kosi.sandbox import Mount, run, sandbox_command

    prefix = sandbox_command(mounts=[Mount(root, str(root), "ro-bind")], tools=tree)
    return run(command, sandbox=prefix, stdout=-1, stderr=-1, input="").stdout


def test_fedora_with_dnf5_from_a_sid_tools_tree(mirror, tmp_path, tmp_path_factory):
    """dnf5 is packaged in Debian forky and sid only (trixie has dnf 4): the default tools tree
    of ToolsTreeRelease=sid carries it, with rpm 6, and builds the image; a warm build with the
    same package cache downloads nothing."""
    cache = tmp_path_factory.mktemp("dnf5-pkgcache")
    key = {FEDORA_KEY: mirror["key"]}
    # a dependency on a file that only the file lists name: dnf5 loads them only when told
    built = rpm_repo.build_packages(
        tmp_path / "build", [Spec("needsfile", requires=("/usr/lib64/libhello.so.2",), files={"/etc/needsfile": "x"})]
    )
    local = tmp_path / "packages"
    local.mkdir()
    (local / built["needsfile"].name).write_bytes(built["needsfile"].read_bytes())
    tools = f"[Build]\nToolsTree=default\nToolsTreeRelease=sid\n[Content]\nPackageDirectories={local}\n"
    cold = project(
        tmp_path / "cold", "fedora", "42", f"{mirror['url']}/fedora", keys=key, cache=cache, packages="hello needsfile"
    )
    with open(cold / "mkosi.conf", "a") as conf:
        conf.write(tools)
    result, requests = build_counting(mirror, cold)
    assert result.returncode == 0, result.stderr[-4000:]
    assert len(package_requests(requests)) == 4, requests  # basesystem, filesystem, libhello, hello
    output = result.stderr + result.stdout
    tree = Path(re.search(r"Using dnf5 \(dnf5\) from the tools tree (\S+)", output).group(1))
    assert tree.name == "debian-sid+package-managers"
    root = cold / "mkosi.output/image"
    assert (root / "usr/bin/hello").read_text() == "#!/bin/sh\necho hello\n"
    assert (root / "usr/lib64/libhello.so.2").read_text() == "libhello 2.1\n"
    query = ["rpm", f"--root={root}", "--dbpath=/usr/lib/sysimage/rpm", "-qa", "--qf", "%{NAME}\n"]
    names = {"basesystem", "filesystem", "libhello", "hello", "needsfile"}
    assert set(in_tools_tree(tree, query, root).split()) - {"gpg-pubkey"} == names
    assert (root / "usr/lib/sysimage/rpm/rpmdb.sqlite").exists()
    assert (root / "usr/lib/sysimage/libdnf5/packages.toml").exists()  # dnf5's state (CleanPackageMetadata=no)
    assert not (root / "usr/lib/sysimage/libdnf5/transaction_history.sqlite").exists()  # has the wall clock
    manifest = json.loads((cold / "mkosi.output/image.manifest").read_text())
    assert {p["name"] for p in manifest["packages"]} == {*names, "gpg-pubkey"}
    # dnf5's caches stay outside the image
    assert not (root / str(cache).lstrip("/")).exists() and not (root / "var/cache/libdnf5").exists()

    warm = project(
        tmp_path / "warm", "fedora", "42", f"{mirror['url']}/fedora", keys=key, cache=cache, packages="hello needsfile"
    )
    conf = warm / "mkosi.conf"
    conf.write_text(conf.read_text().replace("CleanPackageMetadata=no", "CleanPackageMetadata=auto") + tools)
    result, requests = build_counting(mirror, warm)  # the mirror served: its server counts
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Using dnf5 (dnf5)" in result.stderr + result.stdout
    assert package_requests(requests) == [], requests
    warm_manifest = json.loads((warm / "mkosi.output/image.manifest").read_text())
    assert {p["name"] for p in warm_manifest["packages"]} == {*names, "gpg-pubkey"}
    # no dnf nor rpm in the image: CleanPackageMetadata=auto takes dnf5's state and the database
    assert not (warm / "mkosi.output/image/usr/lib/sysimage/libdnf5").exists()
    assert not (warm / "mkosi.output/image/usr/lib/sysimage/rpm").exists()


@pytest.mark.parametrize("case", ["missing package", "bad signature", "the tree's key", "unreachable mirror"])
def test_dnf5_errors_are_one_line(mirror, tmp_path, case):
    """The same failures as with dnf 4 above, with dnf5 (sid's tools tree) and its wording. Without
    a key in mkosi.sandbox/ the tree's distribution-gpg-keys has Fedora's real one, which has not
    signed the test packages."""
    url, packages, keys = f"{mirror['url']}/fedora", "hello", {FEDORA_KEY: mirror["key"]}
    if case == "missing package":
        packages = "hello,no-such-package"
    elif case == "bad signature":
        packages = "rogue"
    elif case == "the tree's key":
        keys = {}
    else:
        url = "http://127.0.0.1:9/fedora"
    d = project(tmp_path, "fedora", "42", url, packages=packages, keys=keys)
    with open(d / "mkosi.conf", "a") as conf:
        conf.write("[Build]\nToolsTree=default\nToolsTreeRelease=sid\n")
    result = kosi_build(d)
    assert "Using dnf5 (dnf5)" in result.stderr + result.stdout, result.stderr[-3000:]
    line = error_line(result)
    if case == "missing package":
        assert "package 'no-such-package' not found in the repositories of fedora 42" in line, line
    elif case == "bad signature":
        assert "signature" in line and "rogue-1.0-1.x86_64" in line and FEDORA_KEY in line, line
        assert not (d / "mkosi.output/image/usr/share/rogue/marker").exists()
    elif case == "the tree's key":
        key = f"/usr/share/distribution-gpg-keys/fedora/{FEDORA_KEY}"
        # basesystem comes first in the transaction (the bootstrap package, as mkosi 27.1's)
        assert re.match(r"error: signature check failed: package (basesystem-11|hello-1\.4)-1\.x86_64 ", line), line
        assert key in line, line
    else:
        assert re.match(r"error: cannot fetch repository '(fedora|updates)' from http://127.0.0.1:9/fedora/", line)
        assert line.endswith("Could not connect to server]"), line
