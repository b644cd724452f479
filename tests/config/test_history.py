"""History= and -R/--rerun-build-scripts, with real (Distribution=custom) builds, as mkosi 27.1
behaves: the record is the command line's settings in .mkosi-private/history/latest.json;
later non-building verbs and -R reuse it; -R reruns the build scripts on the cached image."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HISTORY = Path(".mkosi-private/history/latest.json")


def kosi(directory: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(REPO / "bin/kosi"), *args], cwd=directory, capture_output=True,
                            text=True)  # fmt: skip
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def summary(directory: Path, *args: str) -> dict:
    return json.loads(kosi(directory, *args, "--json", "summary").stdout)["Images"][-1]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    d = tmp_path / "p"
    (d / "mkosi.skeleton/usr/lib").mkdir(parents=True)
    (d / "mkosi.skeleton/usr/lib/os-release").write_text("ID=test\n")
    (d / "mkosi.builddir").mkdir()
    (d / "mkosi.cache").mkdir()
    (d / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=custom\n[Output]\nFormat=directory\n"
        "[Content]\nPackages=a\n[Build]\nHistory=yes\nIncremental=yes\n"
    )
    script = d / "mkosi.build"
    script.write_text('#!/bin/sh\nset -e\necho "$FOO" >> "$BUILDDIR/runs"\nmkdir -p "$DESTDIR/opt"\n'
                      'echo "$FOO" > "$DESTDIR/opt/stamp"\n')  # fmt: skip
    script.chmod(0o755)
    return d


def runs(d: Path) -> list[str]:
    return [line for path in sorted((d / "mkosi.builddir").rglob("runs")) for line in path.read_text().splitlines()]


def test_history_records_the_command_line_and_later_verbs_reuse_it(project):
    d = project
    kosi(d, "--image-version=5", "--environment=FOO=bar", "-p", "vim", "--ram=4G", "build")
    record = json.loads((d / HISTORY).read_text())
    # the command line's own settings only (Packages=a of mkosi.conf is not in it), as JSON
    assert record == {"Environment": {"FOO": "bar"}, "ImageVersion": "5", "Packages": ["vim"], "RAM": 4294967296}

    image = summary(d)
    assert image["ImageVersion"] == "5" and image["Environment"] == {"FOO": "bar"}
    assert image["Packages"] == ["a", "vim"]
    assert image["RAM"] == 2147483648, "a [Runtime] setting is not taken back"

    changed = kosi(d, "--image-version=7", "--release=r", "--json", "summary")
    image = json.loads(changed.stdout)["Images"][-1]
    assert image["ImageVersion"] == "5" and "ignoring --image-version" in changed.stderr
    assert image["Release"] == "r", "a setting the record does not name comes from the command line"
    same = kosi(d, "--image-version=5", "summary")
    assert "ignoring" not in same.stderr
    assert summary(d, "-f")["ImageVersion"] is None, "-f ignores the record"


def test_build_ignores_and_rewrites_history_clean_removes_it(project):
    d = project
    kosi(d, "--image-version=5", "build")
    kosi(d, "build")  # not the recorded version: a new image, a new (empty) record
    assert (d / "image_5").is_dir() and (d / "image").is_dir()
    assert json.loads((d / HISTORY).read_text()) == {}
    kosi(d, "--image-version=6", "--history=no", "build")
    assert json.loads((d / HISTORY).read_text()) == {}, "History=no leaves the record alone"
    kosi(d, "clean")
    assert not (d / HISTORY).exists()


def test_rerun_build_scripts_on_the_cached_image_with_the_recorded_settings(project):
    d = project
    kosi(d, "--image-version=5", "--environment=FOO=first", "build")
    stamp = d / "image_5/opt/stamp"
    assert stamp.read_text() == "first\n" and runs(d) == ["first"]
    record = (d / HISTORY).read_text()

    rerun = kosi(d, "-R", "--environment=FOO=second", "build")
    assert "ignoring --environment" in rerun.stderr
    assert runs(d) == ["first", "first"], "the build scripts ran again, with the recorded environment"
    assert stamp.read_text() == "first\n", "the image is not rebuilt"
    assert (d / HISTORY).read_text() == record, "-R writes no new record"
    assert sorted(p.name for p in d.iterdir() if p.name.startswith("image")) == ["image_5"]

    (d / "mkosi.conf").write_text((d / "mkosi.conf").read_text() + "[Content]\nPackages=b\n")
    stale = kosi(d, "-R", "build", ok=False)
    assert stale.returncode == 1 and "cached image" in stale.stderr and "Traceback" not in stale.stderr


def test_rerun_needs_incremental_and_a_built_image(project):
    d = project
    unbuilt = kosi(d, "-R", "build", ok=False)
    assert unbuilt.returncode == 1 and "must be built once" in unbuilt.stderr
    kosi(d, "--incremental=no", "build")
    no_cache = kosi(d, "-R", "build", ok=False)  # the record says Incremental=no
    assert no_cache.returncode == 1 and "Incremental=" in no_cache.stderr


def test_unreadable_history_is_one_line(project):
    d = project
    (d / HISTORY).parent.mkdir(parents=True)
    (d / HISTORY).write_text('{"Bogus": 1}')
    result = kosi(d, "summary", ok=False)
    assert result.returncode == 1 and "Bogus" in result.stderr and "Traceback" not in result.stderr
    (d / HISTORY).write_text("garbage")
    result = kosi(d, "summary", ok=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
