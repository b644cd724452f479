"""`kosi sysupdate`: systemd-sysupdate (from the tools tree) installs a freshly built tar image
into a target directory, with mkosi.sysupdate/ as its definitions and the output directory
as its transfer source."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KOSI = [sys.executable, str(REPO / "bin/kosi")]
PKGCACHE = Path("/var/tmp/kosi-test-pkgcache-pipeline")  # shared with the other pipeline image tests


def kosi(directory: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*KOSI, "-C", str(directory), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=900
    )


def test_without_definitions_says_what_to_add(tmp_path):
    (tmp_path / "mkosi.conf").write_text("[Output]\nFormat=tar\n")
    result = kosi(tmp_path, "sysupdate")
    assert result.returncode == 1
    assert "mkosi.sysupdate/" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="building images needs root")
@pytest.mark.image
def test_sysupdate_installs_the_built_version(tmp_path):
    PKGCACHE.mkdir(parents=True, exist_ok=True)
    target = tmp_path / "installed"
    target.mkdir()
    (tmp_path / "mkosi.conf").write_text(f"""\
[Distribution]
Distribution=debian
Release=trixie

[Output]
Format=tar
ImageId=kosi-su
ImageVersion=1.2
CompressOutput=no

[Build]
ToolsTree=default
PackageCacheDirectory={PKGCACHE}
""")
    (tmp_path / "mkosi.output").mkdir()
    (tmp_path / "mkosi.sysupdate").mkdir()
    (tmp_path / "mkosi.sysupdate/10-root.transfer").write_text(f"""\
[Transfer]
Verify=no

[Source]
Type=regular-file
Path=/
PathRelativeTo=explicit
MatchPattern=kosi-su_@v.tar

[Target]
Type=regular-file
Path={target}
MatchPattern=kosi-su_@v.tar
""")
    listed = kosi(tmp_path, "sysupdate", "--", "list")
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert "1.2" in listed.stdout
    updated = kosi(tmp_path, "sysupdate", "--", "update")
    assert updated.returncode == 0, updated.stderr[-3000:]
    installed = target / "kosi-su_1.2.tar"
    assert installed.is_file()
    with tarfile.open(installed) as archive:  # the image itself, not an empty placeholder
        assert any(name.lstrip("./") == "usr/lib/os-release" for name in archive.getnames())
