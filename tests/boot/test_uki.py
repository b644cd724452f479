"""UnifiedKernelImageFormat= specifiers and UKI profile files."""

from __future__ import annotations

import pytest

from kosi.boot.uki import default_format, entry_name, read_profile
from kosi.errors import KosiError


def test_delayed_specifiers():
    assert entry_name("&e-&k", "debian", "6.12", "rw") == "debian-6.12"
    assert entry_name("&e-&k-&h", "debian", "6.12", "roothash=abc rw") == "debian-6.12-abc"
    assert entry_name("a&&b", "x", "y", "") == "a&b"
    with pytest.raises(KosiError, match="&q"):
        entry_name("&q", "x", "y", "")


def test_default_format_adds_roothash_and_tries(tmp_path):
    assert default_format("rw", tmp_path) == "&e-&k"
    assert default_format("usrhash=1 rw", tmp_path) == "&e-&k-&h"
    (tmp_path / "etc/kernel").mkdir(parents=True)
    (tmp_path / "etc/kernel/tries").write_text("3\n")
    assert default_format("rw", tmp_path) == "&e-&k+3"


def test_profile_file(tmp_path):
    good = tmp_path / "debug.conf"
    good.write_text("[UKIProfile]\nProfile=ID=debug TITLE=Debug\nCmdline=systemd.log_level=debug\n")
    assert read_profile(good) == ("ID=debug\nTITLE=Debug", "systemd.log_level=debug")
    bad = tmp_path / "bad.conf"
    bad.write_text("[UKIProfile]\nProfile=TITLE=x\n")
    with pytest.raises(KosiError, match="ID="):
        read_profile(bad)
