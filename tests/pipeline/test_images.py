"""Real Debian trixie images from deb.debian.org through the whole pipeline (slow: marked image)."""

from __future__ import annotations

import subprocess
import types
from pathlib import Path

import pytest

from kosi.config.model import Config, Project
from kosi.verbs.build import build_project

pytestmark = pytest.mark.image
PKGCACHE = Path("/var/tmp/kosi-test-pkgcache")  # shared so repeated runs download nothing


def args(force=1):
    return types.SimpleNamespace(force=force, debug_workspace=False, debug_shell=False, auto_bump=False)


def debian(directory: Path, **values) -> Config:
    base = {"Distribution": "debian", "Release": "trixie", "OutputDirectory": directory / "out",
            "WorkspaceDirectory": directory / "ws", "CacheDirectory": directory / "cache",
            "PackageCacheDirectory": PKGCACHE}
    base.update(values)
    (directory / "ws").mkdir(parents=True, exist_ok=True)
    return Config(base, directory=directory)


def script(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nset -e\n" + body)
    path.chmod(0o755)


@pytest.fixture(scope="session")
def minimal(tmp_path_factory):
    d = tmp_path_factory.mktemp("minimal")
    build_project(Project([debian(d, Format="directory", Output="min")]), args())
    return d / "out/min"


def test_minimal_directory_image(minimal):
    assert "trixie" in (minimal / "etc/os-release").read_text()
    assert (minimal / "usr/bin/dpkg").exists()
    assert (minimal / "etc/machine-id").read_text() == "uninitialized\n"


@pytest.fixture(scope="session")
def full(tmp_path_factory):
    """A tar image with packages, trees, a build script (gcc in the overlay only), firstboot
    settings and removals, built with Incremental=yes."""
    d = tmp_path_factory.mktemp("full")
    (d / "mkosi.skeleton/etc").mkdir(parents=True)
    (d / "mkosi.skeleton/etc/skeleton-file").write_text("skeleton\n")
    (d / "mkosi.extra/usr/share").mkdir(parents=True)
    (d / "mkosi.extra/usr/share/extra-file").write_text("extra\n")
    (d / "hello.c").write_text('#include <stdio.h>\nint main(void){puts("hello from kosi");return 0;}\n')
    script(d / "mkosi.build.chroot", 'mkdir -p "$DESTDIR/usr/bin"\n'
           'make -C "$SRCDIR" hello CFLAGS=-O2 >/dev/null && cp "$SRCDIR/hello" "$DESTDIR/usr/bin/hello" && rm "$SRCDIR/hello"\n')
    script(d / "mkosi.postinst.chroot", 'echo "$CHROOT_SCRIPT $BUILDROOT" > /etc/postinst-chroot\n')
    values = dict(Format="tar", CompressOutput="no", Incremental="yes", Packages=["less"],
                  BuildPackages=["gcc", "make", "libc6-dev"], Hostname="kosi-test", Locale="C.UTF-8",
                  Timezone="Europe/Berlin", RootPassword="hashed:", RemoveFiles=["/usr/share/doc/less"],
                  RemovePackages=["less"], ImageId="full")
    logs = []
    for packages in (["less"], ["less"], ["less", "file"]):
        proc = subprocess.run(
            ["python3", "-c", "import sys, pickle, types; from kosi.verbs.build import build_project; "
             "project = pickle.loads(sys.stdin.buffer.read()); build_project(project, types.SimpleNamespace("
             "force=1, debug_workspace=False, debug_shell=False, auto_bump=False))"],
            input=__import__("pickle").dumps(Project([debian(d, **{**values, "Packages": packages})])),
            stderr=subprocess.PIPE, cwd=Path(__file__).parents[2])
        logs.append(proc.stderr.decode())
        assert proc.returncode == 0, logs[-1][-3000:]
    return d / "out/full.tar", logs


def tar_members(path: Path) -> str:
    return subprocess.run(["tar", "-tvf", str(path)], stdout=subprocess.PIPE, text=True, check=True).stdout


def extract(path: Path, member: str) -> str:
    return subprocess.run(["tar", "-xOf", str(path), member], stdout=subprocess.PIPE, text=True, check=True).stdout


def test_full_image_contents(full):
    tar, _ = full
    listing = tar_members(tar)
    assert "./etc/skeleton-file" in listing and "./usr/share/extra-file" in listing
    assert "./usr/bin/hello" in listing, "build script output missing"
    assert "/usr/bin/gcc" not in listing and "x86_64-linux-gnu-gcc" not in listing, "build packages leaked"
    assert extract(tar, "./etc/hostname").strip() == "kosi-test"
    assert "Europe/Berlin" in subprocess.run(["tar", "-tvf", str(tar), "./etc/localtime"], stdout=subprocess.PIPE, text=True).stdout
    assert extract(tar, "./usr/lib/credstore/firstboot.timezone") == "Europe/Berlin"
    assert extract(tar, "./etc/shadow").startswith("root::")
    assert extract(tar, "./etc/postinst-chroot").strip() == "/work/mkosi.postinst.chroot /"
    assert "./usr/bin/less" not in listing  # RemovePackages=
    assert "./usr/share/doc/less/" not in listing  # RemoveFiles=


def test_incremental_reuse_and_invalidation(full):
    _, logs = full
    assert "no cached image yet" in logs[0]
    assert "reusing cached image (key" in logs[1]
    assert "install distribution and packages" in logs[1] and "part of the cached image" in logs[1]
    assert "cache invalid: Packages= changed" in logs[2]


def test_reproducible_tar(tmp_path):
    digests = []
    for i in range(2):
        d = tmp_path / f"b{i}"
        build_project(Project([debian(d, Format="tar", SourceDateEpoch=1700000000, Packages=["less"])]), args())
        digests.append((d / "out/image.tar.zst").read_bytes())
    if digests[0] != digests[1]:
        a, b = (subprocess.run(["sh", "-c", f"zstd -dc {tmp_path}/b{i}/out/image.tar.zst | tar -tvf -"],
                               stdout=subprocess.PIPE, text=True).stdout.splitlines() for i in range(2))
        pytest.fail("differs: " + "\n".join(sorted(set(a) ^ set(b))[:20]))
