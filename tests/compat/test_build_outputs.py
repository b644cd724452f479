"""Build-level differential tests, part 1: what a build leaves in the output directory.

The same project is built by mkosi 27.1 and by kosi, and the output directories are compared:
names, file or directory, symlink targets, and the file names SHA256SUMS lists. The images
are Distribution=custom (a skeleton tree, no package manager), so each build takes seconds
and what is compared is the naming and the artifacts, not package installation (that is
tests/compat/test_build_debian.py). Disk cases use kosi's trixie tools tree for both tools.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.compat.builds import KOSI, listing, mkosi_command

pytestmark = pytest.mark.image


def build(command: list[str], env: dict[str, str], directory: Path, conf: str, files: dict[str, str]) -> dict:
    shutil.rmtree(directory, ignore_errors=True)
    (directory / "skel/usr/lib").mkdir(parents=True)
    (directory / "skel/usr/lib/os-release").write_text("ID=test\nNAME=Test\n")
    (directory / "skel/etc").mkdir()
    (directory / "skel/etc/hello").write_text("hi\n")
    own = {"skel", "mkosi.conf"}
    for name, text in files.items():
        if name.endswith("/"):
            (directory / name).mkdir(parents=True)
        else:
            (directory / name).write_text(text)
            own.add(name)
    (directory / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=custom\n\n[Content]\nSkeletonTrees=skel\n\n" + conf
    )
    result = subprocess.run(
        command + ["build"],
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, **env),
        check=False,
    )
    if result.returncode != 0:
        return {"failed": result.stdout.strip().splitlines()[-1]}
    return listing(directory, own)


NSPAWN = {"mkosi.nspawn": "[Exec]\nBoot=yes\n"}
CASES = {
    "tar default": ("[Output]\nFormat=tar\n", {}),
    "tar versioned, checksum, nspawn": (
        (
            "[Output]\nFormat=tar\nImageId=x\nImageVersion=1.2\n"
            "SplitArtifacts=os-release\n\n[Validation]\nChecksum=yes\n"
        ),
        NSPAWN,
    ),
    "tar gzip into mkosi.output": ("[Output]\nFormat=tar\nCompressOutput=gz\nOutput=custom\n", {"mkosi.output/": ""}),
    "cpio xz in OutputDirectory": (
        "[Output]\nFormat=cpio\nCompressOutput=xz\nImageVersion=2\nOutputDirectory=out\n",
        {},
    ),
    "directory with manifest": (
        (
            "[Output]\nFormat=directory\nImageId=x\nManifestFormat=json,changelog\n"
            "SplitArtifacts=os-release\n\n[Validation]\nChecksum=yes\n"
        ),
        {"mkosi.output/": ""},
    ),
    "none": ("[Output]\nFormat=none\n", {}),
}
DISK_CASES = {
    "disk default": ("[Output]\nFormat=disk\n", {}),
    "disk compressed, every split artifact": (
        (
            "[Output]\nFormat=disk\nCompressOutput=zstd\nImageVersion=4\n"
            "SplitArtifacts=partitions,roothash,os-release,repart-definitions\n\n"
            "[Validation]\nChecksum=yes\n"
        ),
        {},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_named_as_mkosi(case, tmp_path):
    conf, files = CASES[case]
    compare(tmp_path, conf, files)


@pytest.mark.parametrize("case", sorted(DISK_CASES))
def test_disk_outputs_named_as_mkosi(case, tmp_path, tools_for_mkosi):
    conf, files = DISK_CASES[case]
    compare(tmp_path, conf + f"\n[Build]\nToolsTree={tools_for_mkosi}\n", files)


def compare(tmp_path: Path, conf: str, files: dict[str, str]) -> None:
    command, env = mkosi_command()
    theirs = build(command, env, tmp_path / "mkosi", conf, files)
    ours = build(KOSI, {}, tmp_path / "kosi", conf, files)
    differing = {
        k: (theirs.get(k), ours.get(k)) for k in sorted(set(theirs) | set(ours)) if theirs.get(k) != ours.get(k)
    }
    assert not differing, "\n".join(f"{k}: mkosi {m!r}, kosi {o!r}" for k, (m, o) in differing.items())
