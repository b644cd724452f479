"""Faults during real builds (Distribution=custom, so no network and a few seconds each):
a full output file system and SIGINT/SIGTERM mid-build. After each: previous outputs
byte-identical, one line and no traceback, no temporary file, workspace or process left,
and the next build succeeds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from kosi.errors import KosiError
from kosi.outputs import publish

REPO = Path(__file__).resolve().parent.parent.parent
KOSI = REPO / "bin" / "kosi"
# the slow script's sleep argument, unique to this run, to find its processes in /proc
MARKER = f"987.{os.getpid()}{int(time.time()) % 100000}"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs")


@contextmanager
def tmpfs(path: Path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "kosi-faults", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def project(tmp_path: Path, out: Path, extra_bytes: int, slow: bool = False) -> Path:
    d = tmp_path / "project"
    (d / "mkosi.extra").mkdir(parents=True, exist_ok=True)
    (d / "mkosi.extra/payload").write_bytes(os.urandom(extra_bytes))  # incompressible
    (d / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=custom\n\n[Output]\nFormat=tar\nCompressOutput=no\nImageId=demo\n"
        f"OutputDirectory={out}\n\n[Build]\nWorkspaceDirectory={tmp_path / 'ws'}\n"
        f"CacheDirectory={tmp_path / 'cache'}\nPackageCacheDirectory={tmp_path / 'pkgcache'}\n"
    )
    postinst = d / "mkosi.postinst"
    if slow:
        # A daemon that escapes the process group and session (setsid, then a double fork),
        # then the script blocks: stopping the build must stop both.
        postinst.write_text(
            f"#!/bin/sh\nsetsid sh -c 'sleep {MARKER} & exit 0' </dev/null >/dev/null 2>&1\n"
            f'touch "$SRCDIR/started"\nexec sleep {MARKER}\n'
        )
        postinst.chmod(0o755)
    elif postinst.exists():
        postinst.unlink()
    (d / "started").unlink(missing_ok=True)
    return d


def kosi(directory: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(KOSI), "-C", str(directory), *argv],
        text=True,
        capture_output=True,
        env=dict(os.environ, NO_COLOR="1"),
    )


def quiet_build_in_background(directory: Path) -> subprocess.Popen:
    """`kosi -f build` without output, in its own session (to be killed as a whole)."""
    return subprocess.Popen(
        [sys.executable, str(KOSI), "-C", str(directory), "-f", "build"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}


def marker_processes() -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if MARKER.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            pass
    return found


def leftover_mounts(under: Path) -> list[str]:
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(under) in line]


def leftover_loop_devices(tmp_path: Path) -> list[str]:
    listing = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    return [line for line in listing.splitlines() if str(tmp_path) in line]


def assert_clean(tmp_path: Path, out: Path) -> None:
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left in the output directory"
    ws = tmp_path / "ws"
    assert not ws.exists() or not list(ws.iterdir()), f"workspace left: {list(ws.iterdir())}"
    assert not leftover_mounts(ws)
    assert not leftover_loop_devices(tmp_path)


@needs_root
def test_full_output_file_system_keeps_previous_outputs(tmp_path):
    with tmpfs(tmp_path / "out", "6M") as out:
        d = project(tmp_path, out, 1 << 20)
        first = kosi(d, "build")
        assert first.returncode == 0, first.stderr
        before = snapshot(out)
        assert "demo.tar" in before

        project(tmp_path, out, 10 << 20)  # a 10 MiB image cannot fit into 6 MiB
        failed = kosi(d, "-f", "build")
        assert failed.returncode == 1, failed.stderr
        assert "Traceback" not in failed.stderr
        error = [line for line in failed.stderr.splitlines() if "no space left on device" in line]
        assert len(error) == 1, failed.stderr
        assert "demo.tar" in error[0] and "MiB free" in error[0] and "needs 10." in error[0], error[0]
        assert snapshot(out) == before
        assert_clean(tmp_path, out)

        subprocess.run(["mount", "-o", "remount,size=64M", str(out)], check=True)
        again = kosi(d, "-f", "build")
        assert again.returncode == 0, again.stderr
        assert (out / "demo.tar").stat().st_size > 10 << 20
        assert_clean(tmp_path, out)


@needs_root
def test_enospc_while_copying_leaves_nothing_behind(tmp_path, monkeypatch):
    """Space taken by someone else between the check and the copy: the copy itself fails."""
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "demo.tar").write_bytes(os.urandom(3 << 20))
    (staging / "demo.manifest").write_text("{}\n")
    with tmpfs(tmp_path / "out", "2M") as out:
        (out / "demo.tar").write_bytes(b"previous")
        monkeypatch.setattr(publish, "free_space", lambda directory: 1 << 40)
        with pytest.raises(KosiError, match=r"no space left on device for .*demo.tar: publishing needs 3.0 MiB"):
            publish.stage_next_to(sorted(staging.iterdir()), out)
        assert sorted(p.name for p in out.iterdir()) == ["demo.tar"]
        assert (out / "demo.tar").read_bytes() == b"previous"
    assert sorted(p.name for p in staging.iterdir()) == ["demo.manifest", "demo.tar"]


def test_same_file_system_is_a_rename(tmp_path):
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "demo.tar").write_bytes(b"new")
    inode = (staging / "demo.tar").stat().st_ino
    out = tmp_path / "out"
    out.mkdir()
    (out / "demo.tar").write_bytes(b"old")
    [(temporary, target)] = publish.stage_next_to([staging / "demo.tar"], out)
    assert temporary.parent == out and temporary.name.startswith(publish.TEMPORARY_PREFIX)
    assert temporary.stat().st_ino == inode  # moved, not copied
    assert (out / "demo.tar").read_bytes() == b"old"  # not replaced until every output is complete
    publish.replace(temporary, target)
    assert (out / "demo.tar").read_bytes() == b"new"
    assert os.listdir(out) == ["demo.tar"]


@pytest.mark.parametrize(("signum", "status", "group"), [(signal.SIGINT, 130, True), (signal.SIGTERM, 143, False)])
def test_interrupted_build_keeps_outputs_and_leaves_nothing(tmp_path, signum, status, group):
    out = tmp_path / "out"
    d = project(tmp_path, out, 4096)
    first = kosi(d, "build")
    assert first.returncode == 0, first.stderr
    before = snapshot(out)

    project(tmp_path, out, 8192, slow=True)
    # Its own session, like a terminal's foreground job, and a default SIGINT handler even
    # when this suite runs as a background job (where SIGINT is ignored and Python keeps it so).
    build = subprocess.Popen(
        [sys.executable, str(KOSI), "-C", str(d), "-f", "build"],
        text=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 60
        while not (d / "started").exists() or len(marker_processes()) < 2:
            assert build.poll() is None, build.stderr.read() if build.stderr else ""
            assert time.monotonic() < deadline, "the slow script never started"
            time.sleep(0.05)
        if group:  # Ctrl-C reaches the whole foreground process group
            os.killpg(build.pid, signum)
        else:  # kill(1) or systemd stopping a unit: only kosi itself
            build.send_signal(signum)
        _, stderr = build.communicate(timeout=60)
    finally:
        if build.poll() is None:
            os.killpg(build.pid, signal.SIGKILL)
            build.wait()
    assert build.returncode == status, stderr
    assert "Traceback" not in stderr
    # kosi waited for the whole sandbox before it exited, the daemon included
    assert not marker_processes(), "processes of the build left running"
    assert snapshot(out) == before
    assert_clean(tmp_path, out)

    project(tmp_path, out, 8192)
    again = kosi(d, "-f", "build")
    assert again.returncode == 0, again.stderr
    assert snapshot(out) != before


def test_sigkilled_build_workspace_is_removed_by_the_next_run(tmp_path):
    out = tmp_path / "out"
    d = project(tmp_path, out, 4096)
    assert kosi(d, "build").returncode == 0
    before = snapshot(out)
    project(tmp_path, out, 8192, slow=True)
    build = quiet_build_in_background(d)
    try:
        deadline = time.monotonic() + 60
        while not (d / "started").exists() or len(marker_processes()) < 2:
            assert build.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        build.kill()  # only kosi itself: its sandboxes die with it
        build.wait()
    [orphan] = list((tmp_path / "ws").iterdir())  # nothing could clean up after SIGKILL
    deadline = time.monotonic() + 5
    while marker_processes() and time.monotonic() < deadline:  # the kernel kills them, a moment later
        time.sleep(0.05)
    assert not marker_processes(), "processes of the killed build left running"
    assert snapshot(out) == before

    project(tmp_path, out, 8192)
    again = kosi(d, "-f", "build")
    assert again.returncode == 0, again.stderr
    assert not orphan.exists()
    assert f"removing {orphan}" in again.stderr
    assert_clean(tmp_path, out)


def test_workspaces_with_a_living_owner_or_no_lock_are_kept(tmp_path):
    from kosi.pipeline import workspace

    alive, fd = workspace.create(tmp_path, "kosi-alive-")
    # the owner is another process, still running, holding the lock
    holder = subprocess.Popen(["flock", "-o", str(alive / workspace.OWNER_FILE), "sleep", "30"])
    os.close(fd)
    try:
        deadline = time.monotonic() + 10
        while workspace.owner_gone(alive):  # until flock(1) holds it
            assert holder.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        foreign = tmp_path / "kosi-old-format"  # no lock file: never judged, whatever its age
        foreign.mkdir()
        os.utime(foreign, (0, 0))
        dead, fd = workspace.create(tmp_path, "kosi-dead-")
        os.close(fd)
        assert workspace.remove_orphans(tmp_path) == [dead]
        assert alive.exists() and foreign.exists() and not dead.exists()
    finally:
        holder.kill()
        holder.wait()
    assert workspace.remove_orphans(tmp_path) == [alive]
