"""Hostile files around the configuration: symlink loops, FIFOs, directories where files belong,
unreadable files and directories (as an ordinary user: root reads everything). Each ends in
one `error:` line naming the file, exit status 1, no traceback and no hang; symlink loops
inside mkosi.extra/ and mkosi.skeleton/ are copied into the image as the symlinks they are."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
# The pyenv interpreter running the tests lives under /root, which an ordinary user cannot enter.
SYSTEM_PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else shutil.which("python3")


def kosi(directory: Path, *argv: str, user: str | None = None, checkout: Path = REPO) -> subprocess.CompletedProcess:
    prefix = ["runuser", "-u", user, "--"] if user else []
    python = SYSTEM_PYTHON if user else sys.executable
    return subprocess.run(
        [*prefix, python, str(checkout / "bin/kosi"), "-C", str(directory), *argv],
        capture_output=True,
        text=True,
        timeout=120,  # a FIFO read would block forever
        env=dict(os.environ, NO_COLOR="1", HOME=str(directory)),
    )


def refused(result: subprocess.CompletedProcess, *words: str, build: bool = False) -> str:
    """Exit status 1, one `error:` line with `words` in it; nothing else but warnings (a build
    also shows its steps and the output of the one that failed)."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    others = [line for line in result.stderr.splitlines() if not line.startswith(("error: ", "warning: "))]
    assert len(errors) == 1 and (build or not others), result.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def base(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir(parents=True, exist_ok=True)
    return project


@pytest.mark.parametrize("verb", [("summary",), ("--json", "summary")])
def test_configuration_file_that_is_a_symlink_loop(tmp_path, verb):
    project = base(tmp_path)
    (project / "mkosi.conf").symlink_to("mkosi.conf")
    refused(kosi(project, *verb), "mkosi.conf", "symbolic links")
    (project / "mkosi.conf").unlink()
    (project / "mkosi.conf").symlink_to("nowhere")  # dangling: no configuration file, as in mkosi 27.1
    assert kosi(project, *verb).returncode == 0


def test_configuration_file_that_is_a_fifo_or_a_directory(tmp_path):
    project = base(tmp_path)
    os.mkfifo(project / "mkosi.conf")
    refused(kosi(project, "summary"), "mkosi.conf", "not a regular file")
    (project / "mkosi.conf").unlink()
    (project / "mkosi.conf.d").mkdir()
    os.mkfifo(project / "mkosi.conf.d/10-fifo.conf")
    refused(kosi(project, "summary"), "10-fifo.conf", "not a regular file")
    (project / "mkosi.conf.d/10-fifo.conf").unlink()
    (project / "mkosi.conf.d/20-dir.conf").mkdir()
    (project / "mkosi.conf.d/20-dir.conf/mkosi.conf").write_text("[Output]\nImageId=nested\n")
    result = kosi(project, "summary")  # a directory in mkosi.conf.d is read as a configuration directory
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr


def test_configuration_directory_that_is_a_symlink_loop(tmp_path):
    project = base(tmp_path)
    (project / "mkosi.conf.d").symlink_to("mkosi.conf.d")
    result = kosi(project, "summary")
    assert "Traceback" not in result.stderr
    if result.returncode:
        refused(result, "mkosi.conf.d")
    (project / "mkosi.conf.d").unlink()
    (project / "mkosi.conf.d").mkdir()
    (project / "mkosi.conf.d/loop.conf").symlink_to("loop.conf")
    refused(kosi(project, "summary"), "loop.conf")


def test_include_loops_and_hostile_include_targets(tmp_path):
    project = base(tmp_path)
    (project / "a.conf").write_text("[Include]\nInclude=b.conf\n")
    (project / "b.conf").write_text("[Include]\nInclude=a.conf\n")
    (project / "mkosi.conf").write_text("[Include]\nInclude=a.conf\n")
    result = kosi(project, "summary")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    (project / "loop.conf").symlink_to("loop.conf")
    (project / "mkosi.conf").write_text("[Include]\nInclude=loop.conf\n")
    refused(kosi(project, "summary"), "mkosi.conf:2:")
    os.mkfifo(project / "fifo.conf")
    (project / "mkosi.conf").write_text("[Include]\nInclude=fifo.conf\n")
    refused(kosi(project, "summary"), "fifo.conf")


def test_symlink_loops_in_extra_and_skeleton_are_copied_as_symlinks(tmp_path):
    project = base(tmp_path)
    out = tmp_path / "out"
    (project / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=custom\n\n[Output]\nFormat=tar\nCompressOutput=no\nImageId=loops\n"
        f"OutputDirectory={out}\n\n[Build]\nWorkspaceDirectory={tmp_path}\nCacheDirectory={tmp_path / 'cache'}\n"
    )
    for tree in ("mkosi.extra", "mkosi.skeleton"):
        (project / tree / "etc").mkdir(parents=True)
        (project / tree / f"etc/{tree}-self").symlink_to(f"{tree}-self")
        (project / tree / f"etc/{tree}-a").symlink_to(f"{tree}-b")
        (project / tree / f"etc/{tree}-b").symlink_to(f"{tree}-a")
        (project / tree / f"etc/{tree}-up").symlink_to("..")
    result = kosi(project, "build")
    assert result.returncode == 0, result.stderr
    with tarfile.open(out / "loops.tar") as archive:
        links = {m.name.removeprefix("./"): m.linkname for m in archive.getmembers() if m.issym()}
    for tree in ("mkosi.extra", "mkosi.skeleton"):
        assert links[f"etc/{tree}-self"] == f"{tree}-self"
        assert links[f"etc/{tree}-a"] == f"{tree}-b"
        assert links[f"etc/{tree}-up"] == ".."


@pytest.mark.parametrize("tree", ["mkosi.extra", "mkosi.skeleton"])
def test_extra_or_skeleton_that_is_a_symlink_loop(tmp_path, tree):
    project = base(tmp_path)
    (project / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=custom\n\n[Output]\nFormat=tar\nCompressOutput=no\n"
        f"OutputDirectory={tmp_path / 'out'}\n\n[Build]\nWorkspaceDirectory={tmp_path}\n"
    )
    (project / tree).symlink_to(tree)
    for verb in (("summary",), ("build",)):
        result = kosi(project, *verb)
        assert "Traceback" not in result.stderr, result.stderr
        if result.returncode:
            refused(result, tree, build=verb == ("build",))


unprivileged = pytest.mark.skipif(
    os.getuid() != 0 or not shutil.which("runuser"), reason="needs root to become an ordinary user (runuser)"
)


@unprivileged
def test_unreadable_configuration_as_an_ordinary_user(readable_checkout):
    """Permission checks mean nothing to root: these run kosi as nobody."""
    tmp_path = Path(tempfile.mkdtemp(prefix="kosi-unreadable-", dir="/var/tmp"))  # pytest's is root's alone
    try:
        _unreadable_configuration(tmp_path, readable_checkout)
    finally:
        shutil.rmtree(tmp_path)


def _unreadable_configuration(tmp_path: Path, readable_checkout: Path) -> None:
    os.chmod(tmp_path, 0o755)
    project = base(tmp_path)
    os.chmod(project, 0o755)
    (project / "mkosi.conf").write_text("[Output]\nImageId=x\n")
    os.chmod(project / "mkosi.conf", 0o000)
    refused(kosi(project, "summary", user="nobody", checkout=readable_checkout), "mkosi.conf", "ermission denied")

    os.chmod(project / "mkosi.conf", 0o644)
    (project / "mkosi.conf.d").mkdir()
    (project / "mkosi.conf.d/10.conf").write_text("[Output]\nImageId=y\n")
    os.chmod(project / "mkosi.conf.d", 0o000)
    refused(kosi(project, "summary", user="nobody", checkout=readable_checkout), "mkosi.conf.d")
    os.chmod(project / "mkosi.conf.d", 0o755)

    os.chmod(project, 0o000)  # the configuration directory itself
    result = kosi(project, "--json", "summary", user="nobody", checkout=readable_checkout)
    os.chmod(project, 0o755)
    refused(result, str(project))


@pytest.fixture
def build_user():
    """A throwaway user with a subordinate id range, for unprivileged builds."""
    import uuid

    if not shutil.which("useradd") or not shutil.which("newuidmap"):
        pytest.skip("needs useradd and newuidmap (package uidmap)")
    name = f"kosih{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["useradd", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/bin/sh", name], check=True
    )
    ids = [Path("/etc/subuid"), Path("/etc/subgid")]
    try:
        for path in ids:
            with path.open("a") as f:
                f.write(f"{name}:500000:65536\n")
        yield name
    finally:
        subprocess.run(["userdel", name], check=False)
        for path in ids:
            path.write_text(
                "".join(line for line in path.read_text().splitlines(True) if not line.startswith(f"{name}:"))
            )


@unprivileged
@pytest.mark.parametrize("tree", ["mkosi.extra", "mkosi.skeleton"])
def test_unreadable_file_in_extra_or_skeleton(tree, build_user, readable_checkout):
    """An ordinary user's build (root of a user namespace) meets a file it may not read: root's,
    mode 0600. One line names the file; no workspace is left."""
    tmp_path = Path(tempfile.mkdtemp(prefix="kosi-unreadable-", dir="/var/tmp"))
    try:
        os.chmod(tmp_path, 0o755)
        project = base(tmp_path)
        (project / "mkosi.conf").write_text(
            "[Distribution]\nDistribution=custom\n\n[Output]\nFormat=tar\nCompressOutput=no\n\n"
            f"[Build]\nWorkspaceDirectory={tmp_path / 'ws'}\n"
        )
        (project / tree / "etc").mkdir(parents=True)
        (project / tree / "etc/readable").write_text("fine\n")
        (tmp_path / "ws").mkdir()
        subprocess.run(["chown", "-R", build_user, str(project), str(tmp_path / "ws")], check=True)
        secret = project / tree / "etc/secret"
        secret.write_text("root's\n")
        os.chmod(secret, 0o600)  # root's: outside the user's namespace, so unreadable there too
        result = kosi(project, "build", user=build_user, checkout=readable_checkout)
        refused(result, str(secret), "ermission denied", build=True)
        assert list((tmp_path / "ws").iterdir()) == []
    finally:
        shutil.rmtree(tmp_path)
