"""Caches that are never poisoned, with real builds (Distribution=custom: no network, a second
or two each): an Incremental= cache write that fails (a full file system) or is killed is
never used, a corrupt cache is rebuilt with the reason shown, and a full workspace or cache
ends in one line naming the path and the space. After each fault: previous outputs
byte-identical, nothing left behind (workspaces, partial cache entries, mounts, loop
devices, processes), and the next build succeeds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pipeline.test_faults import KOSI, kosi, needs_root, quiet_build_in_background, snapshot, tmpfs

REPO = KOSI.parent.parent


def project(tmp_path: Path, *, version: int = 1, files: int = 0, payload: int = 0) -> Path:
    """A custom image with Incremental=yes whose prepare script (cached) counts its runs."""
    d = tmp_path / "project"
    d.mkdir(exist_ok=True)
    (d / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=custom\n\n[Output]\nFormat=tar\nCompressOutput=no\nImageId=demo\n"
        f"OutputDirectory={tmp_path / 'out'}\n\n[Build]\nIncremental=yes\n"
        f"WorkspaceDirectory={tmp_path / 'ws'}\nCacheDirectory={tmp_path / 'cache'}\n"
        f"PackageCacheDirectory={tmp_path / 'pkgcache'}\n"
    )
    if payload:
        (d / "payload").write_bytes(os.urandom(payload))  # incompressible
    script = d / "mkosi.prepare"
    script.write_text(
        "#!/bin/sh\nset -e\n"
        f'echo {version} >> "$SRCDIR/prepared"\n'
        f'echo {version} > "$BUILDROOT/version"\n'
        + (f'mkdir "$BUILDROOT/many"; cd "$BUILDROOT/many"; seq 1 {files} | xargs touch\n' if files else "")
        + ('cp "$SRCDIR/payload" "$BUILDROOT/payload"\n' if payload else "")
    )
    script.chmod(0o755)
    return d


def prepare_runs(d: Path) -> int:
    path = d / "prepared"
    return len(path.read_text().splitlines()) if path.exists() else 0


def stamp(tmp_path: Path) -> Path:
    [path] = (tmp_path / "cache").glob("*.json")
    return path


def assert_nothing_left(tmp_path: Path, mounts: tuple[Path, ...] = ()) -> None:
    """No workspace, partial cache entry, mount, loop device or process of the builds remains."""
    ws = tmp_path / "ws"
    assert not ws.exists() or not list(ws.iterdir()), f"workspace left: {list(ws.iterdir())}"
    partial = [p for p in tmp_path.rglob(".kosi-*") if "project" not in p.parts]
    assert not partial, f"partial entries left: {partial}"
    allowed = {str(m) for m in mounts}
    mounted = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4].startswith(str(tmp_path)) and line.split()[4] not in allowed
    ]
    assert not mounted, f"mounts left: {mounted}"
    loops = subprocess.run(["losetup", "-n", "-O", "BACK-FILE"], capture_output=True, text=True).stdout
    assert str(tmp_path) not in loops, f"loop devices left: {loops}"
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        assert str(tmp_path).encode() not in cmdline or int(pid) == os.getpid(), f"process left: {cmdline!r}"


def one_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def cache_line(result: subprocess.CompletedProcess) -> str:
    """What the build says about the cached image (the first line that speaks of it)."""
    return next(
        line for line in result.stderr.splitlines() if "cache" in line and not line.startswith(("removing", "‣"))
    )


def test_cache_is_used_and_stamped(tmp_path):
    d = project(tmp_path)
    first = kosi(d, "build")
    assert first.returncode == 0, first.stderr
    assert cache_line(first).startswith("no cached image yet")
    recorded = json.loads(stamp(tmp_path).read_text())
    # (boot and efi: every whole-OS image gets them, as with mkosi)
    assert recorded["entries"] == ["boot", "efi", "version"] and recorded["build"] is False
    again = kosi(d, "-f", "build")
    assert again.returncode == 0, again.stderr
    assert cache_line(again).startswith("reusing cached image")
    assert prepare_runs(d) == 1
    assert_nothing_left(tmp_path)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("garbled stamp", "cache corrupt: its stamp demo.json is unreadable (JSONDecodeError)"),
        ("stamp of another key", "cache corrupt: its stamp demo.json does not match its own key"),
        ("stamp without inputs", "cache corrupt: its stamp demo.json is garbled"),
        ("no stamp", "cache incomplete: no stamp (its last write was interrupted or failed)"),
        ("tree missing", "cache corrupt: demo.cache is missing"),
        ("tree emptied", "cache corrupt: demo.cache is not the tree that was saved"),
    ],
)
def test_corrupt_incremental_cache_is_rebuilt_with_the_reason(tmp_path, damage, reason):
    d = project(tmp_path)
    (d / "mkosi.conf").write_text((d / "mkosi.conf").read_text() + "CacheKey=demo\n")
    assert kosi(d, "build").returncode == 0
    before = snapshot(tmp_path / "out")
    tree = tmp_path / "cache/demo.cache"
    path = tmp_path / "cache/demo.json"
    value = json.loads(path.read_text())
    if damage == "garbled stamp":
        path.write_text(path.read_text()[:40])
    elif damage == "stamp of another key":
        path.write_text(json.dumps(dict(value, key="0" * 12)))
    elif damage == "stamp without inputs":
        path.write_text(json.dumps({"key": value["key"]}))
    elif damage == "no stamp":
        path.unlink()
    elif damage == "tree missing":
        subprocess.run(["rm", "-rf", str(tree)], check=True)
    elif damage == "tree emptied":
        (tree / "version").unlink()

    again = kosi(d, "-f", "build")
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    assert cache_line(again) == f"{reason}; rebuilding it (key {value['key']})"
    assert prepare_runs(d) == 2  # rebuilt
    assert snapshot(tmp_path / "out") != before  # published anew
    assert json.loads(path.read_text()) == value  # and the cache is whole again
    third = kosi(d, "-f", "build")
    assert "reusing cached image" in third.stderr and prepare_runs(d) == 2
    assert_nothing_left(tmp_path)


@needs_root
def test_full_cache_file_system_fails_in_one_line_and_is_never_used(tmp_path):
    d = project(tmp_path, payload=1 << 20)
    with tmpfs(tmp_path / "cache", "3M") as cache:
        assert kosi(d, "build").returncode == 0
        before = snapshot(tmp_path / "out")
        old = stamp(tmp_path).read_text()

        project(tmp_path, version=2, payload=4 << 20)  # 4 MiB cannot be cached in 3 MiB
        error = one_error(kosi(d, "-f", "build"))
        assert error.startswith(f"error: no space left on device for {cache}/"), error
        assert "saving the cached image needs 4.0 MiB" in error and f"free in {cache}" in error, error
        assert snapshot(tmp_path / "out") == before
        assert not list(cache.glob("*.json")), "the old stamp must go before its tree is replaced"
        assert_nothing_left(tmp_path, mounts=(cache,))
        assert old

        subprocess.run(["mount", "-o", "remount,size=64M", str(cache)], check=True)
        again = kosi(d, "-f", "build")
        assert again.returncode == 0, again.stderr
        assert cache_line(again).startswith("cache incomplete: no stamp"), again.stderr
        assert json.loads(stamp(tmp_path).read_text())["entries"] == ["boot", "efi", "payload", "version"]
        third = kosi(d, "-f", "build")
        assert "reusing cached image" in third.stderr, third.stderr
        assert_nothing_left(tmp_path, mounts=(cache,))


@needs_root
def test_full_workspace_fails_in_one_line(tmp_path):
    d = project(tmp_path)
    assert kosi(d, "build").returncode == 0
    before = snapshot(tmp_path / "out")
    with tmpfs(tmp_path / "ws", "2M") as ws:
        project(tmp_path, version=2, payload=4 << 20)  # a script fills the workspace
        error = one_error(kosi(d, "-f", "build"))
        assert snapshot(tmp_path / "out") == before
        assert_nothing_left(tmp_path, mounts=(ws,))

        project(tmp_path, version=3)  # a step of kosi's own fills it
        (d / "mkosi.extra").mkdir()
        (d / "mkosi.extra/payload").write_bytes(os.urandom(4 << 20))
        error = one_error(kosi(d, "-f", "build"))
        assert error.startswith(f"error: no space left on device for {ws}/kosi-main-"), error
        assert error.endswith(f"/root/payload: step 'copy extra trees' ran out of space, 0 B free in {ws}"), error
        assert snapshot(tmp_path / "out") == before
        assert_nothing_left(tmp_path, mounts=(ws,))

        project(tmp_path, version=2, payload=4 << 20)
        (d / "mkosi.extra/payload").unlink()
        error = one_error(kosi(d, "-f", "build"))
        # the script's own message (cp: ...: No space left on device) went to the terminal
        assert error.startswith(
            f"error: no space left on device for {ws}: step 'run prepare scripts (final)' failed with 0 B free"
            " (prepare script "
        ), error
        assert snapshot(tmp_path / "out") == before
        assert_nothing_left(tmp_path, mounts=(ws,))
    again = kosi(d, "-f", "build")
    assert again.returncode == 0, again.stderr
    assert_nothing_left(tmp_path)


def test_killed_cache_write_is_never_used(tmp_path):
    """SIGKILL while the cached image is copied: no stamp, so the next build rebuilds it (and
    says why), and removes the partial copy the killed build left."""
    d = project(tmp_path, files=1000)
    assert kosi(d, "build").returncode == 0
    before = snapshot(tmp_path / "out")
    cache = tmp_path / "cache"

    project(tmp_path, version=2, files=1000)
    build = quiet_build_in_background(d)
    try:
        deadline = time.monotonic() + 120
        while not list(cache.glob(".kosi-partial-*")):
            assert build.poll() is None, "the build ended before its cache write could be interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.002)
    finally:
        os.killpg(build.pid, signal.SIGKILL)
        build.wait()
    [partial] = list(cache.glob(".kosi-partial-*"))
    assert not list(cache.glob("*.json"))
    assert snapshot(tmp_path / "out") == before

    again = kosi(d, "-f", "build")
    assert again.returncode == 0, again.stderr
    assert cache_line(again).startswith("cache incomplete: no stamp"), again.stderr
    assert prepare_runs(d) == 3
    assert not partial.exists()
    assert (tmp_path / "out/demo.tar").exists() and snapshot(tmp_path / "out") != before
    third = kosi(d, "-f", "build")
    assert "reusing cached image" in third.stderr and prepare_runs(d) == 3
    assert_nothing_left(tmp_path)


# ---- the default tools tree and the default initrd: committed by rename, stamped ----------------
# Building a real one takes minutes (tests/boot/test_tools_tree.py, image tests): here the
# builder is a stand-in that writes a tree, fails or hangs; what is tested is everything
# around it — the partial name, the commit, the stamp, the lock and the clean-up.

TOOLS_SCRIPT = """
import sys, time, types
from pathlib import Path
import kosi.tools.tree, kosi.verbs.build as build
from kosi.config.model import Config, Project

cache, mode = Path(sys.argv[1]), sys.argv[2]
kosi.tools.tree.cache_root = lambda: cache

def builder(config, destination, args):
    (destination / "usr/bin").mkdir(parents=True)
    (destination / "usr/bin/tool").write_text(mode)
    if mode == "fail":
        raise build.KosiError("package 'nonexistent' not found")
    if mode == "hang":
        (cache / "started").touch()
        time.sleep(600)

build.build_tree = builder
config = Config({"Distribution": "debian", "Release": "trixie", "Format": "disk", "ToolsTree": "default"},
                directory=cache)
print(build.ensure_tools_tree(Project(images=[config]), types.SimpleNamespace(verb="build", force=0)))
"""


def tools_tree(cache: Path, mode: str, **options) -> subprocess.CompletedProcess | subprocess.Popen:
    argv = [sys.executable, "-c", TOOLS_SCRIPT, str(cache), mode]
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
    if options.get("background"):
        return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return subprocess.run(argv, env=env, capture_output=True, text=True)


def test_failed_or_killed_tools_tree_build_is_never_used(tmp_path):
    cache = tmp_path / "cache"
    good = tools_tree(cache, "good")
    assert good.returncode == 0, good.stderr
    tree = Path(good.stdout.strip())
    assert tree.parent == cache / "tools" and (tree / "usr/bin/tool").read_text() == "good"
    assert "building the default tools tree" in good.stderr
    assert "building" not in tools_tree(cache, "good").stderr  # reused

    # A rebuild that fails (-fff forces it here) keeps nothing half-built: no stamp, no partial.
    script = TOOLS_SCRIPT.replace("force=0", "force=3")
    failed = subprocess.run(
        [sys.executable, "-c", script, str(cache), "fail"],
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1 and "package 'nonexistent' not found" in failed.stderr
    assert not tree.with_name(tree.name + ".json").exists()
    rebuilt = tools_tree(cache, "good")
    assert "(it has no stamp: its last build was interrupted or failed)" in rebuilt.stderr, rebuilt.stderr
    assert_nothing_left(tmp_path)

    # SIGKILL while the tree is built: the next run removes the partial tree and builds it again.
    tree.with_name(tree.name + ".json").unlink()
    hung = tools_tree(cache, "hang", background=True)
    try:
        deadline = time.monotonic() + 60
        while not (cache / "started").exists():
            assert hung.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        hung.kill()
        hung.wait()
    [partial] = (cache / "tools").glob(".kosi-partial-*")
    again = tools_tree(cache, "good")
    assert again.returncode == 0, again.stderr
    assert "it has no stamp" in again.stderr and not partial.exists()
    assert (tree / "usr/bin/tool").read_text() == "good"
    assert json.loads(tree.with_name(tree.name + ".json").read_text())["distribution"] == "debian"
    assert_nothing_left(tmp_path)


def test_second_tools_tree_build_waits_and_reuses(tmp_path):
    cache = tmp_path / "cache"
    hung = tools_tree(cache, "hang", background=True)
    try:
        deadline = time.monotonic() + 60
        while not (cache / "started").exists():
            assert hung.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        waiting = subprocess.Popen(
            [sys.executable, "-c", TOOLS_SCRIPT, str(cache), "good"],
            env=dict(os.environ, PYTHONPATH=str(REPO)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert waiting.stderr is not None
        line = waiting.stderr.readline()
        assert line.startswith("waiting for another kosi that builds the tools tree"), line
    finally:
        hung.kill()  # the lock goes with it: the waiting one builds the tree
        hung.wait()
    _, stderr = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, stderr
    assert "building the default tools tree" in stderr
    assert_nothing_left(tmp_path)


def test_failed_default_initrd_is_never_used(tmp_path, monkeypatch):
    from kosi.boot import initrd
    from kosi.config.model import Config
    from kosi.errors import KosiError
    from kosi.pipeline.context import Context

    monkeypatch.setattr(initrd, "cache_root", lambda: tmp_path / "cache")
    config = Config({"Distribution": "debian", "Release": "trixie", "Architecture": "x86-64"}, directory=tmp_path)
    built: list[str] = []

    def builder(config, destination, args, tools=None, fail=False):
        (destination / "usr/lib/systemd").mkdir(parents=True)
        (destination / "usr/lib/systemd/systemd").write_text("init")
        built.append(str(destination))
        if fail:
            raise KosiError("package 'systemd' not found")

    (tmp_path / "ws").mkdir()
    context = Context(
        config=config,
        workspace=tmp_path / "ws",
        package_cache=tmp_path,
        build_tree=lambda c, d, a, tools=None: builder(c, d, a, fail=True),
    )
    with pytest.raises(KosiError):
        initrd.default_initrd(context)
    assert [p.name for p in (tmp_path / "cache/initrd").iterdir() if p.suffix != ".lock"] == []
    context.build_tree = builder
    cached = initrd.default_initrd(context)
    assert cached.stat().st_size > 0 and len(built) == 2
    assert initrd.default_initrd(context) == cached and len(built) == 2  # reused
    assert_nothing_left(tmp_path)
