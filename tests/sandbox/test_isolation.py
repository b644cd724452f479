"""The sandbox for real: namespaces, mounts and what a tool can see and write."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kosi.errors import KosiError
from kosi.sandbox import Mount, apivfs_mounts, chroot_command, run, sandbox_command

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="mount namespaces need root (or become_root())")

BUSYBOX = shutil.which("busybox")


def sandboxed(script: str, **options) -> subprocess.CompletedProcess:
    return run(
        ["sh", "-c", script],
        sandbox=sandbox_command(**options),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        check=False,
    )


def test_usr_is_read_only_and_host_state_invisible():
    assert Path("/var/lib/dpkg/status").exists()  # the host has it, the sandbox must not
    result = sandboxed(
        "touch /usr/kosi-probe; touch /kosi-probe; ls /var/lib/dpkg; cat /etc/hostname; "
        "test -x /usr/bin/sh && test -e /etc/passwd && echo ok"
    )
    err = result.stderr.decode()
    assert "'/usr/kosi-probe': Read-only file system" in err
    assert "'/kosi-probe': Read-only file system" in err
    assert "/var/lib/dpkg" in err and "No such file" in err
    assert "/etc/hostname" in err
    assert result.stdout.decode().strip() == "ok"
    assert not Path("/usr/kosi-probe").exists()


def test_writes_only_to_bound_directories(tmp_path):
    (tmp_path / "rw").mkdir()
    (tmp_path / "ro").mkdir()
    (tmp_path / "hidden").mkdir()
    result = sandboxed(
        f"echo data > {tmp_path}/rw/out; echo data > {tmp_path}/ro/out; ls {tmp_path}/hidden; "
        "echo t > /tmp/x && echo t > /var/tmp/x && echo tmp-ok",
        mounts=[Mount(tmp_path / "rw", str(tmp_path / "rw")), Mount(tmp_path / "ro", str(tmp_path / "ro"), "ro-bind")],
    )
    assert (tmp_path / "rw/out").read_text() == "data\n"
    assert not (tmp_path / "ro/out").exists()
    assert "Read-only file system" in result.stderr.decode()
    assert "hidden" in result.stderr.decode()  # not mounted, so not there
    assert "tmp-ok" in result.stdout.decode()


def test_no_network_leaves_only_loopback():
    offline = sandboxed("cat /proc/net/dev; cat /sys/class/net/lo/operstate 2>/dev/null || true")
    interfaces = [line.split(":")[0].strip() for line in offline.stdout.decode().splitlines() if ":" in line]
    assert interfaces == ["lo"]
    online = sandboxed("cat /proc/net/dev", network=True)
    assert len([line for line in online.stdout.decode().splitlines() if ":" in line]) > 1
    assert "nameserver" in sandboxed("cat /etc/resolv.conf", network=True).stdout.decode()
    assert sandboxed("cat /etc/resolv.conf").returncode != 0


def test_loopback_is_up_offline():
    # Python's socket module binds 127.0.0.1, which fails unless lo is up.
    result = run(
        ["python3", "-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print('bound')"],
        sandbox=sandbox_command(),
        stdout=subprocess.PIPE,
    )
    assert result.stdout.strip() == b"bound"


def test_minimal_dev_and_proc():
    result = sandboxed("ls /dev; echo x > /dev/null; head -c 4 /dev/urandom | wc -c; test -d /proc/self && echo proc")
    out = result.stdout.decode().split()
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm"} <= set(out)
    assert "vda" not in out and "loop-control" not in out and "fuse" not in out
    assert "4" in out and "proc" in out
    assert "loop-control" in sandboxed("ls /dev", devices=["loop"]).stdout.decode().split()


def test_working_directory(tmp_path):
    assert sandboxed("pwd", mounts=[Mount(tmp_path, "/src")], workdir="/src").stdout.decode().strip() == "/src"
    # By default the caller's directory is kept when it is mounted.
    result = run(
        ["pwd"], sandbox=sandbox_command(mounts=[Mount(tmp_path, str(tmp_path))]), cwd=tmp_path, stdout=subprocess.PIPE
    )
    assert result.stdout.decode().strip() == str(tmp_path)


def test_overlay_mount(tmp_path):
    lower1, lower2, upper, work = (tmp_path / n for n in ("lower1", "lower2", "upper", "work"))
    for d in (lower1, lower2, upper, work):
        d.mkdir()
    (lower1 / "a").write_text("top\n")
    (lower2 / "a").write_text("bottom\n")
    (lower2 / "b").write_text("b\n")
    result = sandboxed(
        "cat /merged/a /merged/b; echo new > /merged/c; rm /merged/b",
        mounts=[Mount.overlay([lower1, lower2], "/merged", upperdir=upper, workdir=work)],
    )
    assert result.stdout.decode() == "top\nb\n"
    assert (upper / "c").read_text() == "new\n"
    assert (lower2 / "b").exists()  # deleted only in the overlay (a whiteout in upper)
    readonly = sandboxed("cat /merged/a; touch /merged/x", mounts=[Mount.overlay([lower1, lower2], "/merged")])
    assert readonly.stdout.decode() == "top\n" and "Read-only" in readonly.stderr.decode()


def test_tools_tree_usr_replaces_host(tmp_path):
    tools = tmp_path / "tools"
    (tools / "usr/bin").mkdir(parents=True)
    (tools / "etc").mkdir()
    (tools / "etc/passwd").write_text("root:x:0:0:tools tree root:/root:/bin/sh\n")
    shutil.copy(BUSYBOX, tools / "usr/bin/busybox")
    for applet in ("sh", "cat", "ls"):
        (tools / "usr/bin" / applet).symlink_to("busybox")
    (tools / "bin").symlink_to("usr/bin")
    result = run(
        ["sh", "-c", "cat /etc/passwd; ls /usr/bin"], sandbox=sandbox_command(tools=tools), stdout=subprocess.PIPE
    )
    out = result.stdout.decode()
    assert "tools tree root" in out
    assert "apt-get" not in out and "busybox" in out


@pytest.fixture
def busybox_root(tmp_path):
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    (root / "etc").mkdir()
    shutil.copy(BUSYBOX, root / "usr/bin/busybox")
    for applet in ("sh", "cat", "ls", "touch", "id", "mount", "grep", "stat"):
        (root / "usr/bin" / applet).symlink_to("busybox")
    (root / "bin").symlink_to("usr/bin")
    # Like a Debian image with systemd-resolved: an absolute symlink into /run.
    (root / "etc/resolv.conf").symlink_to("/run/systemd/resolve/stub-resolv.conf")
    return root


@pytest.mark.skipif(BUSYBOX is None, reason="needs busybox (apt-get install busybox-static)")
def test_chroot_into_image_root(busybox_root, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    result = run(
        [
            "sh",
            "-c",
            "ls /; cat /etc/resolv.conf; touch /sys/x; grep -c . /proc/self/mounts; "
            "echo hi > /work/out; echo img > /img-file; touch /run/r /tmp/t",
        ],
        sandbox=chroot_command(busybox_root, network=True, mounts=[Mount(work, "/work")]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        check=False,
    )
    out = result.stdout.decode().split()
    assert {"proc", "dev", "sys", "run", "tmp", "usr", "work"} <= set(out)
    assert "nameserver" in result.stdout.decode()
    assert "/sys/x: Read-only file system" in result.stderr.decode()
    assert (work / "out").read_text() == "hi\n"
    assert (busybox_root / "img-file").read_text() == "img\n"  # the image root itself is writable
    # API file systems and the resolv.conf copy vanish with the command.
    assert not any(any((busybox_root / d).iterdir()) for d in ("proc", "run", "tmp", "dev"))
    assert not (busybox_root / "run/systemd").exists()


@pytest.mark.skipif(BUSYBOX is None, reason="needs busybox (apt-get install busybox-static)")
def test_apivfs_mounts_for_package_managers(busybox_root):
    # A host tool working on an image root from outside (like dpkg --root) sees its /proc and /dev.
    result = run(
        [
            "sh",
            "-c",
            f"ls {busybox_root}/dev; test -d {busybox_root}/proc/self && echo proc; "
            f"touch {busybox_root}/tmp/x && echo tmp",
        ],
        sandbox=sandbox_command(mounts=apivfs_mounts(busybox_root)),
        stdout=subprocess.PIPE,
    )
    out = result.stdout.decode().split()
    assert "null" in out and "proc" in out and "tmp" in out
    assert not (busybox_root / "tmp/x").exists()


def test_failure_names_tool_and_its_error_line(tmp_path):
    script = tmp_path / "fake-apt"
    script.write_text(
        "#!/bin/sh\necho 'Reading package lists...' >&2\necho 'E: Unable to locate package foo' >&2\n"
        "echo 'some trailing note' >&2\nexit 100\n"
    )
    script.chmod(0o755)
    with pytest.raises(KosiError) as e:
        run(
            [str(script), "install", "-y", "foo"],
            sandbox=sandbox_command(mounts=[Mount(tmp_path, str(tmp_path))]),
            tee_stderr=True,
        )
    assert str(e.value) == "fake-apt failed with exit status 100: E: Unable to locate package foo"


def test_missing_command_and_bad_mount():
    with pytest.raises(KosiError, match=r"^no-such-tool is not installed: install it"):
        run(["no-such-tool"], sandbox=sandbox_command(), stderr=subprocess.PIPE)
    with pytest.raises(KosiError, match=r"exit status 125.*kosi-sandbox: .*/nonexistent"):
        run(["true"], sandbox=sandbox_command(mounts=[Mount("/nonexistent", "/x")]), stderr=subprocess.PIPE)
