""".ci/commit-subjects: subjects over 72 characters after the base commit fail the lint; without
git, a repository or the base commit it skips and says why."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / ".ci/commit-subjects"

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", **env},
    ).stdout.strip()


def check(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = repo / ".ci/commit-subjects"
    script.parent.mkdir(exist_ok=True)
    shutil.copy2(SCRIPT, script)
    return subprocess.run([str(script), *args], capture_output=True, text=True, check=False)


def test_long_subjects_after_the_base_fail_and_older_ones_do_not(tmp_path):
    git(tmp_path, "init", "-q")
    git(tmp_path, "commit", "-q", "--allow-empty", "-m", "x" * 90 + " (history: not checked)")
    base = git(tmp_path, "rev-parse", "HEAD")
    git(tmp_path, "commit", "-q", "--allow-empty", "-m", "a" * 72 + "\n\n" + "the body may be long " * 10)
    assert check(tmp_path, base).returncode == 0
    git(tmp_path, "commit", "-q", "--allow-empty", "-m", "b" * 73)
    result = check(tmp_path, base)
    assert result.returncode == 1 and "73 characters" in result.stderr


def test_skips_without_a_repository_or_the_base(tmp_path):
    result = check(tmp_path)
    assert result.returncode == 0 and "not a git repository" in result.stdout
    git(tmp_path, "init", "-q")
    git(tmp_path, "commit", "-q", "--allow-empty", "-m", "c" * 80)
    result = check(tmp_path, "cea6a50")
    assert result.returncode == 0 and "not an ancestor" in result.stdout
