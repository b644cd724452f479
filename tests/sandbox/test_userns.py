"""Unprivileged mode for real: a throwaway user becomes root of a user namespace with its subordinate ids."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from kosi.sandbox.userns import subordinate_range

# The pyenv interpreter running the tests lives under /root, which an ordinary user cannot enter.
PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable

pytestmark = pytest.mark.skipif(
    os.getuid() != 0 or not shutil.which("useradd") or not shutil.which("newuidmap"),
    reason="needs root (to create a throwaway user) and newuidmap (package uidmap)",
)


def _remove_lines(path: Path, user: str) -> None:
    path.write_text(
        "".join(line for line in path.read_text().splitlines(keepends=True) if not line.startswith(f"{user}:"))
    )


@pytest.fixture
def throwaway_user():
    """A user that exists only for this test, with (or without) a subordinate id range."""
    name = f"kosit{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["useradd", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/bin/sh", name], check=True
    )
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False)
        for path in (Path("/etc/subuid"), Path("/etc/subgid")):
            _remove_lines(path, name)


@pytest.fixture
def shared_dir():
    """A directory the throwaway user can reach (pytest's tmp_path sits below a 0700 directory)."""
    path = Path(tempfile.mkdtemp(prefix="kosi-userns-"))
    os.chmod(path, 0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def _as_user(user: str, code: str, cwd: Path, checkout: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["runuser", "-u", user, "--", "env", f"PYTHONPATH={checkout}", PYTHON, "-c", code],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


BECOME_ROOT = """
import json, os, sys
from kosi.errors import KosiError
from kosi.sandbox import become_root, run, sandbox_command, Mount
try:
    become_root()
except KosiError as e:
    print(e, file=sys.stderr)
    sys.exit(3)
work = sys.argv[-1] if len(sys.argv) > 1 else os.getcwd()
os.mkdir("owned")
os.chown("owned", 1000, 1000)
listing = run(["ls", "-ln", work], sandbox=sandbox_command(mounts=[Mount(work, work)]), stdout=-1).stdout.decode()
print(json.dumps({"uid": os.getuid(), "gid": os.getgid(), "uid_map": open("/proc/self/uid_map").read().split(),
                  "owned": os.stat("owned").st_uid, "listing": listing}))
"""


def test_become_root_maps_subordinate_ids(throwaway_user, shared_dir, readable_checkout):
    for path in (Path("/etc/subuid"), Path("/etc/subgid")):
        _remove_lines(path, throwaway_user)  # useradd may have added a range already; use ours
        with path.open("a") as f:
            f.write(f"{throwaway_user}:400000:65536\n")
    work = shared_dir / "work"
    work.mkdir()
    shutil.chown(work, throwaway_user)
    result = _as_user(throwaway_user, BECOME_ROOT, work, readable_checkout)
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout)
    host_uid = int(subprocess.run(["id", "-u", throwaway_user], stdout=subprocess.PIPE, check=True).stdout)
    assert state["uid"] == 0 and state["gid"] == 0
    assert state["uid_map"] == ["0", str(host_uid), "1", "1", "400000", "65536"]
    assert state["owned"] == 1000  # inside the namespace
    assert (work / "owned").stat().st_uid == 400000 + 999  # on the host: uid 1000 is subuid start + 999
    assert " 1000 1000 " in state["listing"]  # the sandbox in the namespace sees the same ids


def test_missing_subuid_range_gives_a_hint(throwaway_user, shared_dir, readable_checkout):
    for path in (Path("/etc/subuid"), Path("/etc/subgid")):
        _remove_lines(path, throwaway_user)
    result = _as_user(throwaway_user, BECOME_ROOT, shared_dir, readable_checkout)
    assert result.returncode == 3
    line = result.stderr.strip()
    assert line.count("\n") == 0
    assert f"subordinate id range for {throwaway_user} in /etc/subuid" in line
    assert f"'{throwaway_user}:100000:65536' to /etc/subuid and /etc/subgid" in line


def test_subordinate_range_parsing(tmp_path):
    subuid = tmp_path / "subuid"
    subuid.write_text("# comment\nalice:100000:65536\nbob:0:0\n1234:200000:1000\nbob:300000:10\n")
    assert subordinate_range(subuid, "alice", 1000) == (100000, 65536)
    assert subordinate_range(subuid, "carol", 1234) == (200000, 1000)  # by number
    assert subordinate_range(subuid, "bob", 1) == (300000, 10)  # empty ranges skipped
    assert subordinate_range(subuid, "dave", 1) is None
    assert subordinate_range(tmp_path / "missing", "alice", 1) is None
