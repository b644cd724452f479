"""Build-level differential tests, part 2: the same Debian trixie project built by mkosi 27.1
and by kosi, compared by installed packages, file list, and each common file's type, owner
and mode. Every difference is either fixed or listed in KNOWN (and docs/compatibility.md).
One build per tool per case, shared by the tests of the module.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from tests.compat.builds import BUILD_TRACES, KOSI, differences, installed, mkosi_command, mkosi_project, run_build

pytestmark = pytest.mark.image

CONF = """\
[Distribution]
Distribution=debian
Release=trixie

[Output]
Format=directory
Output=image

[Content]
Packages=apt
"""

#: paths only one tool writes, with the reason (docs/compatibility.md, "Build outputs and
#: image contents")
KNOWN = {
    **BUILD_TRACES,
    # apt's record of automatically installed packages: kosi's apt keeps its state outside the image
    "var/lib/apt/extended_states": "mkosi only",
}


def scan(root: Path) -> dict[str, tuple[str, int, int, int]]:
    """path -> (type, mode, uid, gid) of every entry below root."""
    entries = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory, name)
            st = path.lstat()
            kind = "l" if stat.S_ISLNK(st.st_mode) else "d" if stat.S_ISDIR(st.st_mode) else "f"
            entries[str(path.relative_to(root))] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    return entries


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    command, env = mkosi_command()
    theirs = tmp_path_factory.mktemp("mkosi")
    mkosi_project(theirs, CONF)
    run_build(command, env, theirs)
    ours = tmp_path_factory.mktemp("kosi")
    (ours / "mkosi.conf").write_text(CONF)
    run_build(KOSI, {}, ours)
    yield theirs / "image", ours / "image"
    shutil.rmtree(theirs, ignore_errors=True)
    shutil.rmtree(ours, ignore_errors=True)


def test_same_packages(built):
    theirs, ours = built
    assert installed(ours / "var/lib/dpkg/status") == installed(theirs / "var/lib/dpkg/status")


def tree_differences(theirs: Path, ours: Path, known) -> list[str]:
    """What differs between mkosi's tree and kosi's (entries, types, modes, owners), leaving out
    the paths `known(path)` accepts."""
    a, b = scan(theirs), scan(ours)
    return differences(a, b, {path for path in set(a) | set(b) if known(path)})


def test_same_files_owners_and_modes(built):
    theirs, ours = built
    report = tree_differences(theirs, ours, lambda p: p in KNOWN)
    assert not report, "\n".join(report[:80])
