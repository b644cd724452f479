"""Builds at the same time. Two builds of one project: the second waits for the first, says
so, and their outputs never interleave. Two projects sharing the package cache (and the
tools tree, the incremental cache directory): both succeed."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kosi.pipeline import atomic
from kosi.pipeline import workspace as workspaces
from tests.pipeline.test_cache_faults import assert_nothing_left
from tests.pipeline.test_faults import KOSI, kosi

WAITING = "waiting for another kosi build that writes into"


def custom_project(tmp_path: Path, name: str, version: int, out: Path, gate: bool = False) -> Path:
    """A custom image whose postinst stamps its version and, with `gate`, waits for the file
    `gate` in the project directory (what the sandbox shows of the host) to appear."""
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    (d / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=custom\n\n[Output]\nFormat=tar\nCompressOutput=no\nImageId=demo\n"
        f"OutputDirectory={out}\n\n[Build]\nIncremental=yes\nWorkspaceDirectory={tmp_path / 'ws'}\n"
        f"CacheDirectory={tmp_path / 'cache'}\nPackageCacheDirectory={tmp_path / 'pkgcache'}\n"
    )
    wait = 'while [ ! -e "$SRCDIR/gate" ]; do sleep 0.05; done\n' if gate else ""
    # the version is read when the script starts: a later build of the project may change it
    (d / "next-version").write_text(f"{version}\n")
    (d / "mkosi.postinst").write_text(
        '#!/bin/sh\nset -e\nv=$(cat "$SRCDIR/next-version")\ntouch "$SRCDIR/started-$v"\n'
        f'{wait}echo $v > "$BUILDROOT/version"\n'
    )
    (d / "mkosi.postinst").chmod(0o755)
    return d


def start(d: Path, *argv: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(KOSI), "-C", str(d), *argv, "build"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, NO_COLOR="1"),
    )


@contextmanager
def builds_stopped_at_end() -> Iterator[Callable[..., subprocess.Popen]]:
    """start() for a test; the builds it started and that still run are killed at the end."""
    started: list[subprocess.Popen] = []

    def start_build(d: Path, *argv: str) -> subprocess.Popen:
        started.append(start(d, *argv))
        return started[-1]

    try:
        yield start_build
    finally:
        kill_running(started)


def kill_running(builds: list[subprocess.Popen]) -> None:
    for build in builds:
        if build.poll() is None:
            build.kill()
            build.wait()


def wait_for(condition, what: str, *builds: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120  # a loaded machine starts a build slowly
    while not condition():
        for build in builds:
            assert build.poll() is None, f"a build ended before {what}: {build.stderr.read() if build.stderr else ''}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def until_waiting(build: subprocess.Popen) -> list[str]:
    """The lines `build` wrote to stderr up to saying that it waits for another build."""
    lines: list[str] = []

    def said_waiting() -> bool:
        assert build.stderr is not None
        lines.append(build.stderr.readline())
        return lines[-1].startswith(WAITING)

    wait_for(said_waiting, "the second build said it waits", build)
    return lines


def all_succeed(builds: list[subprocess.Popen], timeout: int, meanwhile=lambda: None) -> None:
    """Wait for builds running at once; each succeeds without waiting for the other."""
    try:
        meanwhile()
        results = [build.communicate(timeout=timeout) for build in builds]
    finally:
        kill_running(builds)
    for build, (_, stderr) in zip(builds, results, strict=True):
        assert build.returncode == 0, stderr[-3000:]
        assert "Traceback" not in stderr and WAITING not in stderr


def version_in(tar: Path) -> str:
    with tarfile.open(tar) as archive:
        member = archive.extractfile("./version") or archive.extractfile("version")
        assert member is not None
        return member.read().decode().strip()


def test_second_build_of_a_project_waits_for_the_first(tmp_path):
    out = tmp_path / "out"
    d = custom_project(tmp_path, "project", 1, out, gate=True)
    with builds_stopped_at_end() as start_build:
        first = start_build(d)
        wait_for(lambda: (d / "started-1").exists(), "the first build reached its postinst", first)
        (d / "next-version").write_text("2\n")  # the second build's image differs
        second = start_build(d, "-f")
        # the second says it waits, and starts nothing (no workspace of its own) meanwhile
        stderr_lines = until_waiting(second)
        assert stderr_lines[-1] == f"{WAITING} {out} to finish\n"
        time.sleep(1)
        assert second.poll() is None and len(list((tmp_path / "ws").iterdir())) == 1
        assert not (d / "started-2").exists()
        (d / "gate").touch()
        _, rest = second.communicate(timeout=120)
        assert second.returncode == 0, "".join(stderr_lines) + rest
        first.communicate(timeout=60)
        assert first.returncode == 0
    # one after the other: the first's output was replaced as a whole by the second's
    assert version_in(out / "demo.tar") == "2"
    assert sorted(p.name for p in out.iterdir()) == ["demo", "demo.tar"]
    assert_nothing_left(tmp_path)


def test_second_build_without_force_refuses_once_the_first_is_done(tmp_path):
    out = tmp_path / "out"
    d = custom_project(tmp_path, "project", 1, out, gate=True)
    with builds_stopped_at_end() as start_build:
        first = start_build(d)
        wait_for(lambda: (d / "started-1").exists(), "the first build reached its postinst", first)
        second = start_build(d)
        # the first may end only once the second waits for it (under load, starting takes a while)
        said = until_waiting(second)
        (d / "gate").touch()
        _, rest = second.communicate(timeout=120)
        stderr = "".join(said) + rest
        assert first.wait(timeout=60) == 0
    assert second.returncode == 1
    assert stderr.splitlines()[0].startswith(WAITING)
    assert (
        stderr.splitlines()[-1]
        == f"error: output {out / 'demo.tar'} already exists (use -f to rebuild, or `kosi clean`)"
    )
    assert version_in(out / "demo.tar") == "1"
    assert_nothing_left(tmp_path)


def test_different_projects_sharing_caches_build_at_once(tmp_path):
    """Two projects, one workspace, incremental cache and package cache directory: neither waits."""
    a = custom_project(tmp_path, "a", 1, tmp_path / "out-a", gate=True)
    b = custom_project(tmp_path, "b", 2, tmp_path / "out-b", gate=True)
    builds = [start(a), start(b)]

    def both_running() -> None:
        wait_for(lambda: (a / "started-1").exists() and (b / "started-2").exists(), "both builds run", *builds)
        (a / "gate").touch()
        (b / "gate").touch()

    all_succeed(builds, 120, both_running)
    assert version_in(tmp_path / "out-a/demo.tar") == "1"
    assert version_in(tmp_path / "out-b/demo.tar") == "2"
    assert kosi(a, "-f", "build").returncode == 0
    assert_nothing_left(tmp_path)


@pytest.mark.image
def test_two_debian_projects_sharing_package_cache_and_tools_tree(tmp_path):
    """Real images: two projects built at the same time with one package cache (a private copy
    of the shared one) and the default tools tree both succeed, each with its own content."""
    from tests.installers.test_package_cache_faults import seed

    cache = tmp_path / "pkgcache"
    seed(cache)
    projects = []
    for name in ("a", "b"):
        d = tmp_path / name
        (d / "mkosi.extra/etc").mkdir(parents=True)
        (d / "mkosi.extra/etc/project").write_text(f"{name}\n")
        (d / "mkosi.conf").write_text(
            "[Distribution]\nDistribution=debian\nRelease=trixie\n\n"
            "[Output]\nFormat=directory\nOutput=image\n\n"
            "[Content]\nPackages=hostname\nBootable=no\n\n"
            f"[Build]\nPackageCacheDirectory={cache}\nWorkspaceDirectory={tmp_path / 'ws'}\n"
            f"CacheDirectory={tmp_path / 'cache'}\n"
        )
        projects.append(d)
    all_succeed([start(d, "-f") for d in projects], 1200)
    for d in projects:
        assert (d / "image/etc/project").read_text() == f"{d.name}\n"
        assert (d / "image/usr/bin/hostname").is_file()
    again = kosi(projects[0], "-f", "build")
    assert again.returncode == 0, again.stderr[-3000:]
    assert_nothing_left(tmp_path)


def test_a_new_workspace_is_never_taken_for_an_orphan(tmp_path, monkeypatch):
    """Another build removing orphaned workspaces just while this one creates its own (before
    it holds the lock) leaves it alone: the lock file gets its name only once it is locked."""
    flock, cleaned = fcntl.flock, []

    def another_build_starts_first(fd, operation):
        if not cleaned:
            cleaned.append(workspaces.remove_orphans(tmp_path))
        flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", another_build_starts_first)
    workspace, fd = workspaces.create(tmp_path, "kosi-demo-")
    try:
        assert cleaned == [[]] and workspace.is_dir()
        assert not workspaces.owner_gone(workspace) and workspaces.remove_orphans(tmp_path) == []
    finally:
        os.close(fd)
    assert workspaces.remove_orphans(tmp_path) == [workspace]  # its owner is gone now


@pytest.mark.parametrize("kind", ["directory", "file"])
def test_a_new_partial_entry_is_never_taken_for_an_abandoned_one(tmp_path, monkeypatch, kind):
    """Another build sharing the cache directory cleans up abandoned partial entries just while
    this one creates its own, before it holds the lock: its entry stays."""
    lock, cleaned = atomic._lock, []

    def another_build_cleans_up_first(path, blocking):
        if not cleaned:
            cleaned.append(atomic.remove_abandoned(tmp_path))
        return lock(path, blocking)

    monkeypatch.setattr(atomic, "_lock", another_build_cleans_up_first)
    partial = atomic.partial_directory if kind == "directory" else atomic.partial_file
    with partial(tmp_path / "demo.cache") as entry:
        assert cleaned == [[]] and entry.exists() and entry.name.startswith(atomic.PARTIAL_PREFIX)
        assert atomic.remove_abandoned(tmp_path) == [] and entry.exists()
    assert list(tmp_path.iterdir()) == []
