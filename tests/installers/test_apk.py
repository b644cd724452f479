"""postmarketOS and the apk backend, as far as they can be tested without apk (not packaged for
Debian): the repositories, the refusal before anything runs, apk's detection, the manifest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kosi.config.model import Config
from kosi.distributions import get
from kosi.errors import KosiError
from kosi.installers.apk import Apk, installed_packages

REPO = Path(__file__).resolve().parents[2]


def pmos(**values) -> Config:
    return Config({"Distribution": "postmarketos", **values}, directory=Path("/nonexistent"))


def test_repositories_edge_release_mirror_and_local():
    urls = [r.url for r in get("postmarketos").repositories(pmos())]
    assert urls == [  # mkosi 27.1's /etc/apk/repositories (tests/installers/capture_mkosi.py)
        "https://dl-cdn.alpinelinux.org/alpine/edge/main",
        "https://dl-cdn.alpinelinux.org/alpine/edge/community",
        "https://dl-cdn.alpinelinux.org/alpine/edge/testing",
        "https://mirror.postmarketos.org/postmarketos/extra-repos/systemd/main",
        "https://mirror.postmarketos.org/postmarketos/main",
    ]
    arm = [r.url for r in get("postmarketos").repositories(pmos(Architecture="arm64", Mirror="http://m.example/pmos"))]
    assert arm == [*urls[:3], "http://m.example/pmos/extra-repos/systemd/main", "http://m.example/pmos/main"]
    release = [r.url for r in get("postmarketos").repositories(pmos(Release="v25.06", Mirror="http://m.example/"))]
    assert release == [  # a kosi extension: mkosi 27.1 builds only edge
        "https://dl-cdn.alpinelinux.org/alpine/v3.22/main",
        "https://dl-cdn.alpinelinux.org/alpine/v3.22/community",
        "http://m.example/extra-repos/systemd/v25.06",
        "http://m.example/v25.06",
    ]
    assert [r.url for r in get("postmarketos").repositories(pmos(LocalMirror="file:///srv/pmos"))] == [
        "file:///srv/pmos"
    ]
    with pytest.raises(KosiError, match=r"Release=stable: postmarketOS releases are edge or vYY.MM"):
        get("postmarketos").repositories(pmos(Release="stable"))


def test_build_without_apk_stops_before_anything_in_one_line(tmp_path):
    (tmp_path / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=postmarketos\n[Output]\nFormat=directory\n"
        f"[Build]\nWorkspaceDirectory={tmp_path / 'ws'}\n"
    )
    (tmp_path / "ws").mkdir()
    env = {"PATH": "/usr/bin:/bin"}  # apk-tools is not packaged for Debian: not on this PATH
    result = subprocess.run(
        [sys.executable, str(REPO / "bin/kosi"), "-C", str(tmp_path), "build"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: Distribution=postmarketos needs apk (apk-tools), which is not on PATH: apk-tools is not packaged "
        "for Debian; install it, or name a tools tree that has it with ToolsTree="
    ]
    assert not any((tmp_path / "ws").iterdir())  # nothing ran: not even a workspace
    assert not (tmp_path / "image").exists()


def test_apk_is_looked_for_in_the_given_tools_tree(tmp_path):
    tools = tmp_path / "tools"
    (tools / "usr/bin").mkdir(parents=True)
    with pytest.raises(KosiError, match=rf"which is not in the tools tree {tools}"):
        Apk.check_available(pmos(ToolsTree=str(tools)))
    (tools / "usr/bin/apk").write_text("#!/bin/sh\n")
    Apk.check_available(pmos(ToolsTree=str(tools)))  # found: no error


def test_manifest_from_apks_database(tmp_path):
    db = tmp_path / "lib/apk/db"
    db.mkdir(parents=True)
    (db / "installed").write_text(
        "C:Q1abc=\nP:musl\nV:1.2.5-r0\nA:x86_64\nS:400000\nI:700000\no:musl\n\n"
        "P:busybox-binsh\nV:1.36.1-r2\nA:x86_64\nI:1\no:busybox\nF:bin\nR:sh\n\n"
    )
    assert installed_packages(tmp_path) == [
        {
            "type": "apk",
            "name": "busybox-binsh",
            "version": "1.36.1-r2",
            "architecture": "x86_64",
            "size": 1,
            "source": "busybox",
        },
        {
            "type": "apk",
            "name": "musl",
            "version": "1.2.5-r0",
            "architecture": "x86_64",
            "size": 700000,
            "source": "musl",
        },
    ]
