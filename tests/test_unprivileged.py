"""A real build by an ordinary user: `kosi build` as a throwaway user with a subordinate id range.

kosi becomes root of a user namespace (the user is uid 0, its subuid range uids 1..65536), so
dpkg can give files to system users and groups; on disk the output belongs to the user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
import uuid
from pathlib import Path

import pytest

# The pyenv interpreter running the tests lives under /root, which an ordinary user cannot enter.
PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else shutil.which("python3")
SHARED_CACHE = Path("/var/tmp/kosi-test-pkgcache")  # debs other image tests already downloaded
SUBIDS = (300000, 65536)

pytestmark = [
    pytest.mark.image,
    pytest.mark.skipif(
        os.getuid() != 0 or not shutil.which("useradd") or not shutil.which("newuidmap"),
        reason="needs root (to create a throwaway user) and newuidmap (package uidmap)",
    ),
]


def _remove_lines(path: Path, user: str) -> None:
    path.write_text(
        "".join(line for line in path.read_text().splitlines(keepends=True) if not line.startswith(f"{user}:"))
    )


@pytest.fixture(scope="module")
def user_build(readable_checkout):
    name = f"kosib{uuid.uuid4().hex[:8]}"
    home = Path(tempfile.mkdtemp(prefix="kosi-unpriv-", dir="/var/tmp"))
    subprocess.run(["useradd", "--no-create-home", "--home-dir", str(home), "--shell", "/bin/sh", name], check=True)
    try:
        for path in (Path("/etc/subuid"), Path("/etc/subgid")):
            with path.open("a") as f:
                f.write(f"{name}:{SUBIDS[0]}:{SUBIDS[1]}\n")
        project = home / "project"
        (project / "mkosi.extra/usr/share/kosi").mkdir(parents=True)
        (project / "mkosi.extra/usr/share/kosi/extra-file").write_text("from mkosi.extra\n")
        (project / "mkosi.conf").write_text(
            "[Distribution]\nDistribution=debian\nRelease=trixie\n\n"
            "[Output]\nFormat=tar\nCompressOutput=no\nOutput=unprivileged\n\n"
            # passwd: /etc/shadow (group shadow) is no longer in the essential set mkosi installs
            "[Content]\nPackages=passwd\n\n"
            "[Build]\nPackageCacheDirectory=../pkgcache\n"
        )
        cache = home / "pkgcache"
        cache.mkdir()
        if (SHARED_CACHE / "debian~trixie~amd64").is_dir():  # saves the downloads
            subprocess.run(
                ["cp", "-a", "--reflink=auto", str(SHARED_CACHE / "debian~trixie~amd64"), str(cache)], check=True
            )
        subprocess.run(["chown", "-R", f"{name}:{name}", str(home)], check=True)
        result = subprocess.run(
            ["runuser", "-u", name, "--", "env", f"HOME={home}", PYTHON, str(readable_checkout / "bin/kosi"), "build"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        yield name, project, result
    finally:
        subprocess.run(["userdel", name], check=False)
        for path in (Path("/etc/subuid"), Path("/etc/subgid")):
            _remove_lines(path, name)
        shutil.rmtree(home, ignore_errors=True)


def test_unprivileged_build_succeeds(user_build):
    _, _, result = user_build
    assert result.returncode == 0, result.stderr[-3000:]


def test_output_belongs_to_the_user_and_files_to_image_users(user_build):
    name, project, result = user_build
    assert result.returncode == 0, result.stderr[-3000:]
    output = project / "unprivileged.tar"
    uid = int(subprocess.run(["id", "-u", name], stdout=subprocess.PIPE, text=True, check=True).stdout)
    assert output.stat().st_uid == uid
    with tarfile.open(output) as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers()}
    extra = members["usr/share/kosi/extra-file"]
    assert (extra.uid, extra.gid) == (0, 0)
    shadow = members["etc/shadow"]
    assert (shadow.uid, shadow.gid) == (0, 42), "the shadow group of the image is lost"
    # Nothing may belong to the unmapped "nobody" (65534) or to the user's host ids.
    strays = [n for n, m in members.items() if m.uid in (65534, uid) or m.gid == 65534]
    assert not strays, strays[:5]
