"""Arch Linux's pacman.conf repositories and postmarketOS's /etc/apk/repositories equal what
mkosi 27.1 writes for the same settings (plus Format=directory): captured with
tests/installers/capture_mkosi.py, which runs the oracle's build with fake pacman and apk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kosi.config.model import Config
from kosi.distributions import get
from kosi.installers.pacman import Pacman

ORACLE = json.loads((Path(__file__).parent / "data/mkosi-27.1-pacman-apk-repositories.json").read_text())


def config(settings: dict) -> Config:
    values: dict = dict(settings)
    if "Repositories" in values:
        values["Repositories"] = values["Repositories"].split(",")
    if "RepositoryKeyCheck" in values:
        values["RepositoryKeyCheck"] = values["RepositoryKeyCheck"] == "yes"
    return Config(values, directory=Path("/nonexistent"))


@pytest.mark.parametrize("case", sorted(c for c in ORACLE if ORACLE[c]["settings"]["Distribution"] == "arch"))
def test_pacman_repositories_equal_mkosi_27_1s(case):
    """Sections in order, Server= lines (Mirror=, LocalMirror=, Snapshot=, arm64's alarm), SigLevel=."""
    expected = ORACLE[case]
    c = config(expected["settings"])
    assert [f"{r.name} {r.url}" for r in get("arch").repositories(c)] == expected["repositories"]
    assert Pacman().siglevel(c) == expected["siglevel"]


@pytest.mark.parametrize("case", sorted(c for c in ORACLE if ORACLE[c]["settings"]["Distribution"] == "postmarketos"))
def test_apk_repositories_equal_mkosi_27_1s(case):
    """Alpine's edge main/community/testing, postmarketOS's systemd repository and its own, in
    order; Mirror= replaces the postmarketOS mirror only; LocalMirror= is the one repository.
    (mkosi 27.1 ignores Snapshot=; kosi refuses it, docs/compatibility.md.)"""
    expected = ORACLE[case]
    settings = {k: v for k, v in expected["settings"].items() if k != "Snapshot"}
    assert [r.url for r in get("postmarketos").repositories(config(settings))] == expected["repositories"]
