"""BuildSourcesEphemeral=: what scripts change in $SRCDIR, and where it goes.

The quick tests run scripts with the host's tools in the script sandbox (real overlay mounts);
the image test builds a Debian trixie image twice with BuildSourcesEphemeral=buildcache.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kosi.config.model import Config
from kosi.errors import KosiError
from kosi.pipeline.context import Context
from kosi.scripts.execute import run_scripts

#: the package cache tests/pipeline/test_images.py uses: Debian is downloaded there already
PKGCACHE = Path("/var/tmp/kosi-test-pkgcache-pipeline")
needs_root = pytest.mark.skipif(os.getuid() != 0, reason="overlay mounts need root (or a user namespace)")

APPEND = """#!/bin/sh
set -e
# Walks into mkosi.builddir/, where buildcache keeps its layers (overlayfs must not see them as lower).
find "$SRCDIR" > /dev/null
echo "run $$" >> "$SRCDIR/notes.txt"
mkdir -p "$SRCDIR/generated" && date +%s%N > "$SRCDIR/generated/stamp"
if [ -n "$BUILDROOT" ]; then cp "$SRCDIR/notes.txt" "${DESTDIR:-$BUILDROOT}/notes-seen"; fi
"""


def project(tmp_path: Path, ephemeral: str, *, builddir: bool = True) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    (directory / "notes.txt").write_text("original\n")
    if builddir:
        (directory / "mkosi.builddir").mkdir()
    (directory / "mkosi.build").write_text(APPEND)
    (directory / "mkosi.build").chmod(0o755)
    return directory


def context_for(directory: Path, ephemeral: str, workspace: Path) -> Context:
    config = Config({"Distribution": "custom", "Release": "x", "BuildSourcesEphemeral": ephemeral}, directory=directory)
    ctx = Context(config=config, workspace=workspace, package_cache=workspace.parent / "cache")
    for path in (workspace / "root", workspace / "destdir", ctx.staging, ctx.pkgmngr, ctx.repository, ctx.artifacts):
        path.mkdir(parents=True, exist_ok=True)
    return ctx


def seen(ctx: Context) -> list[str]:
    where = ctx.workspace / "destdir/notes-seen"
    if not where.exists():  # scripts without $DESTDIR leave it in $BUILDROOT
        where = ctx.root / "notes-seen"
    return where.read_text().splitlines()


@needs_root
def test_no_changes_the_real_sources(tmp_path):
    directory = project(tmp_path, "no")
    run_scripts(context_for(directory, "no", tmp_path / "ws1"), "build")
    assert (directory / "notes.txt").read_text().splitlines()[0] == "original"
    assert len((directory / "notes.txt").read_text().splitlines()) == 2


@needs_root
def test_yes_starts_every_build_from_the_original_sources(tmp_path):
    directory = project(tmp_path, "yes")
    for n in (1, 2):
        ctx = context_for(directory, "yes", tmp_path / f"ws{n}")
        run_scripts(ctx, "build")
        assert len(seen(ctx)) == 2  # "original" + this run only
        assert not (ctx.workspace / "src-changes").exists() or not any((ctx.workspace / "src-changes").iterdir())
    assert (directory / "notes.txt").read_text() == "original\n"
    assert not (directory / "generated").exists()


@needs_root
def test_buildcache_keeps_changes_in_the_build_directory(tmp_path):
    directory = project(tmp_path, "buildcache")
    for n in (1, 2, 3):
        # A fresh workspace each time, as in separate builds.
        ctx = context_for(directory, "buildcache", tmp_path / f"ws{n}")
        run_scripts(ctx, "build")
        lines = seen(ctx)
        assert lines[0] == "original" and len(lines) == 1 + n, lines
    assert (directory / "notes.txt").read_text() == "original\n"
    assert not (directory / "generated").exists()
    layers = list((directory / "mkosi.builddir").rglob(".kosi-sources"))
    assert len(layers) == 1 and (layers[0] / "root/upper/generated/stamp").is_file()
    # Other script kinds start from the real sources, as with BuildSourcesEphemeral=yes.
    (directory / "mkosi.build").rename(directory / "mkosi.postinst")
    ctx = context_for(directory, "buildcache", tmp_path / "ws-postinst")
    run_scripts(ctx, "postinst")
    assert len(seen(ctx)) == 2


@needs_root
def test_buildcache_without_build_directory_is_an_error(tmp_path):
    directory = project(tmp_path, "buildcache", builddir=False)
    with pytest.raises(KosiError, match="BuildDirectory="):
        run_scripts(context_for(directory, "buildcache", tmp_path / "ws"), "build")


@needs_root
def test_sync_scripts_change_the_real_sources_even_when_ephemeral(tmp_path):
    directory = project(tmp_path, "yes")
    (directory / "mkosi.build").rename(directory / "mkosi.sync")
    run_scripts(context_for(directory, "yes", tmp_path / "ws"), "sync")
    assert len((directory / "notes.txt").read_text().splitlines()) == 2


CONF = f"""\
[Distribution]
Distribution=debian
Release=trixie

[Output]
Format=directory
Output=image

[Build]
PackageCacheDirectory={PKGCACHE}
BuildSourcesEphemeral=buildcache
"""

BUILD_SCRIPT = """#!/bin/sh
set -e
echo "build $(cat "$SRCDIR/counter" 2>/dev/null || echo 0)" >> "$SRCDIR/notes.txt"
echo $(( $(cat "$SRCDIR/counter" 2>/dev/null || echo 0) + 1 )) > "$SRCDIR/counter"
mkdir -p "$DESTDIR/usr/share/kosi-test"
cp "$SRCDIR/notes.txt" "$DESTDIR/usr/share/kosi-test/notes.txt"
"""


@pytest.mark.image
def test_buildcache_in_a_real_trixie_build(tmp_path, kosi_build):
    directory = tmp_path / "project"
    directory.mkdir()
    (directory / "mkosi.conf").write_text(CONF)
    (directory / "mkosi.output").mkdir()
    (directory / "mkosi.builddir").mkdir()
    (directory / "notes.txt").write_text("original\n")
    (directory / "mkosi.build").write_text(BUILD_SCRIPT)
    (directory / "mkosi.build").chmod(0o755)
    for expected in (["original", "build 0"], ["original", "build 0", "build 1"]):
        result = kosi_build(directory)
        assert result.returncode == 0, result.stdout[-4000:]
        image = directory / "mkosi.output/image"
        assert (image / "usr/share/kosi-test/notes.txt").read_text().splitlines() == expected
    # The real sources never saw the build script's changes.
    assert (directory / "notes.txt").read_text() == "original\n"
    assert not (directory / "counter").exists()


@needs_root
@pytest.mark.skipif(shutil.which("busybox") is None, reason="needs busybox")
def test_chroot_build_script_sees_the_overlay_at_work_src(tmp_path):
    """mkosi-chroot binds $SRCDIR (the overlay) into the image as /work/src."""
    directory = project(tmp_path, "buildcache")
    (directory / "mkosi.build").unlink()
    chroot_script = directory / "mkosi.build.chroot"
    chroot_script.write_text(
        '#!/bin/sh\nset -e\necho "chroot $(pwd)" >> /work/src/notes.txt\n'
        "cat /work/src/notes.txt > /work/dest/notes-seen\n"
    )
    chroot_script.chmod(0o755)
    for n in (1, 2):
        ctx = context_for(directory, "buildcache", tmp_path / f"ws{n}")
        (ctx.root / "bin").mkdir(parents=True)
        for sub in ("etc", "proc", "dev", "sys", "tmp", "run"):
            (ctx.root / sub).mkdir()
        shutil.copy(shutil.which("busybox"), ctx.root / "bin/busybox")
        for tool in ("sh", "cat", "echo", "pwd"):
            (ctx.root / "bin" / tool).symlink_to("busybox")
        run_scripts(ctx, "build")
        assert seen(ctx) == ["original"] + ["chroot /work/src"] * n
    assert (directory / "notes.txt").read_text() == "original\n"


@needs_root
def test_on_overlayfs_yes_copies_and_buildcache_refuses(tmp_path, monkeypatch):
    """A workspace or build directory on overlayfs (a container's root) cannot hold an upper directory."""
    import kosi.scripts.sources as sources

    monkeypatch.setattr(sources, "filesystem_type", lambda path: "overlay")
    directory = project(tmp_path, "yes")
    for n in (1, 2):
        ctx = context_for(directory, "yes", tmp_path / f"ws{n}")
        run_scripts(ctx, "build")
        assert len(seen(ctx)) == 2
    assert (directory / "notes.txt").read_text() == "original\n"
    ctx = context_for(directory, "buildcache", tmp_path / "ws3")
    with pytest.raises(KosiError, match="overlayfs"):
        run_scripts(ctx, "build")


def test_filesystem_type_of_real_mounts():
    from kosi.scripts.sources import filesystem_type

    assert filesystem_type(Path("/proc/self")) == "proc"
    assert filesystem_type(Path("/dev/shm")) == "tmpfs"
