"""Build-level differential tests, part 2: the same Debian trixie project built by mkosi 27.1
and by kosi, compared by installed packages, file list, and each common file's type, owner
and mode. Every difference is either fixed or listed in KNOWN (and docs/compatibility.md).

mkosi gets its apt sources in its sandbox tree (mkosi.sandbox/etc/apt/sources.list.d/
mkosi.sources), because it otherwise adds a debug repository this network cannot reach.
One build per tool per case, shared by the tests of the module.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.compat.test_build_outputs import mkosi_command

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.image

SOURCES = """\
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie trixie-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: trixie-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

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
    # deliberate: kosi removes what records when or where the build ran (reproducible images)
    "etc/.pwd.lock": "kosi removes",
    "var/cache/debconf/config.dat-old": "kosi removes",
    "var/cache/debconf/templates.dat-old": "kosi removes",
    "var/cache/ldconfig/aux-cache": "kosi removes",
    "var/lib/dpkg/diversions-old": "kosi removes",
    "var/lib/dpkg/lock": "kosi removes",
    "var/lib/dpkg/status-old": "kosi removes",
    "var/lib/dpkg/triggers/Lock": "kosi removes",
    "var/log/alternatives.log": "kosi removes",
    "var/log/apt": "kosi removes",
    "var/log/btmp": "kosi removes",
    "var/log/lastlog": "kosi removes",
    "var/log/wtmp": "kosi removes",
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


def packages(root: Path) -> set[str]:
    status = (root / "var/lib/dpkg/status").read_text()
    return {
        stanza.split("\n", 1)[0].removeprefix("Package: ")
        for stanza in status.split("\n\n")
        if "Status: install ok installed" in stanza
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    command, env = mkosi_command()
    theirs = tmp_path_factory.mktemp("mkosi")
    (theirs / "mkosi.conf").write_text(CONF)
    sources = theirs / "mkosi.sandbox/etc/apt/sources.list.d/mkosi.sources"
    sources.parent.mkdir(parents=True)
    sources.write_text(SOURCES)
    result = subprocess.run(
        [*command, "build"],
        cwd=theirs,
        env=dict(os.environ, **env),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"mkosi build failed:\n{result.stdout[-3000:]}")
    ours = tmp_path_factory.mktemp("kosi")
    (ours / "mkosi.conf").write_text(CONF)
    result = subprocess.run(
        [sys.executable, str(REPO / "bin/kosi"), "-C", str(ours), "build"],
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"kosi build failed:\n{result.stdout[-3000:]}")
    yield theirs / "image", ours / "image"
    shutil.rmtree(theirs, ignore_errors=True)
    shutil.rmtree(ours, ignore_errors=True)


def test_same_packages(built):
    theirs, ours = built
    assert packages(ours) == packages(theirs)


def tree_differences(theirs: Path, ours: Path, known) -> list[str]:
    """What differs between mkosi's tree and kosi's (entries, types, modes, owners), leaving out
    the paths `known(path)` accepts."""
    a, b = scan(theirs), scan(ours)
    only_mkosi = sorted(p for p in set(a) - set(b) if not known(p))
    only_kosi = sorted(p for p in set(b) - set(a) if not known(p))
    differing = sorted(p for p in set(a) & set(b) if a[p] != b[p] and not known(p))
    report = [f"only mkosi: {p}" for p in only_mkosi] + [f"only kosi: {p}" for p in only_kosi]
    return report + [f"{p}: mkosi {a[p]}, kosi {b[p]}" for p in differing]


def test_same_files_owners_and_modes(built):
    theirs, ours = built
    report = tree_differences(theirs, ours, lambda p: p in KNOWN)
    assert not report, "\n".join(report[:80])
