"""A program kosi needs and cannot find is named in one line with the Debian package that has it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kosi.errors import KosiError
from kosi.sandbox import run, sandbox_command
from kosi.tools.packages import DEBIAN_PACKAGES, missing_program

REPO = Path(__file__).resolve().parent.parent.parent


def test_the_table_names_a_package_for_every_program():
    assert all(package and package == package.strip() for package in DEBIAN_PACKAGES.values())
    assert missing_program("zstd") == "zstd is not installed: install the Debian package zstd, or use ToolsTree=default"
    assert "Debian package btrfs-progs" in missing_program("/usr/sbin/mkfs.btrfs")
    tree = missing_program("mkfs.erofs", Path("/var/cache/tools"))
    assert tree == (
        "mkfs.erofs is not installed in the tools tree /var/cache/tools (Debian package erofs-utils): "
        "add erofs-utils to ToolsTreePackages="
    )


def test_every_program_the_steps_look_up_is_in_the_table():
    """The programs kosi's steps look for by name (find_tool, ImageTool.program) all have a package."""
    import re

    names = set()
    for path in (REPO / "kosi").rglob("*.py"):
        text = path.read_text()
        names |= set(re.findall(r'find_tool\(\s*"([^"]+)"', text))
        names |= set(re.findall(r'program = "([^"]+)"', text))
        names |= set(re.findall(r'missing_reason\(\s*"([^"]+)"', text))
    assert names, "the pattern no longer finds anything"
    assert sorted(names - set(DEBIAN_PACKAGES)) == []


@pytest.mark.skipif(os.getuid() != 0, reason="sandboxes need root (or become_root())")
def test_missing_in_the_sandbox_names_the_package():
    absent = [
        name
        for name in sorted(DEBIAN_PACKAGES)
        if not any(Path(f"/usr/{d}/{name}").exists() for d in ("bin", "sbin", "lib/systemd"))
    ]
    if not absent:
        pytest.skip("the host has every program of the table")
    with pytest.raises(KosiError) as error:
        run([absent[0], "--help"], sandbox=sandbox_command(), stderr=subprocess.PIPE)
    assert str(error.value) == missing_program(absent[0])
    # a command's own exit status 127 is not taken for a missing program
    with pytest.raises(KosiError, match="sh failed with exit status 127"):
        run(["sh", "-c", "exit 127"], sandbox=sandbox_command())


def path_without(tmp_path: Path, *missing: str) -> str:
    """A PATH with every program of the host's /usr/bin and /usr/sbin except `missing`."""
    directory = tmp_path / "path"
    directory.mkdir()
    for source in (Path("/usr/sbin"), Path("/usr/bin")):
        for program in source.iterdir():
            if program.name not in missing and not (directory / program.name).exists():
                os.symlink(program, directory / program.name)
    return str(directory)


def test_build_without_a_compressor_names_its_package(tmp_path):
    """A real build whose output is compressed with zstd, on a host without zstd."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=custom\n\n[Output]\nFormat=tar\nCompressOutput=zstd\n"
        f"OutputDirectory={tmp_path / 'out'}\n\n[Build]\nWorkspaceDirectory={tmp_path}\n"
        f"CacheDirectory={tmp_path / 'cache'}\n"
    )
    result = subprocess.run(
        [sys.executable, str(REPO / "bin/kosi"), "-C", str(project), "build"],
        capture_output=True,
        text=True,
        env=dict(os.environ, PATH=path_without(tmp_path, "zstd"), NO_COLOR="1"),
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if "zstd" in line]
    assert line.endswith(missing_program("zstd")), result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
