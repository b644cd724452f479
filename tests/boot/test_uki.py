"""UnifiedKernelImageFormat= specifiers and UKI profile files."""

from __future__ import annotations

import pytest

from kosi.boot.uki import default_format, entry_name, profile_files, read_profile
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
    good.write_text(
        '[UKIProfile]\nProfile=TITLE="Debug mode" ID=debug\nCmdline=systemd.log_level=debug\n'
        "        quiet\nSignExpectedPcr=no\n"
    )
    profile = read_profile(good)
    assert profile.text == "ID=debug\nTITLE=Debug mode"  # ID= first, quotes keep the space
    assert profile.cmdline == "systemd.log_level=debug quiet" and profile.sign_expected_pcr is False
    bad = tmp_path / "bad.conf"
    bad.write_text("[UKIProfile]\nProfile=TITLE=x\n")
    with pytest.raises(KosiError, match="ID="):
        read_profile(bad)
    typo = tmp_path / "typo.conf"
    typo.write_text("[UKIProfile]\nProfile=ID=a\nCmdLine=x\n")
    with pytest.raises(KosiError, match="CmdLine") as failure:
        read_profile(typo)
    assert failure.value.line == 3


def test_profile_directory_takes_conf_files_in_order(tmp_path):
    (tmp_path / "d").mkdir()
    for name in ("20-b.conf", "10-a.conf", "README"):
        (tmp_path / "d" / name).write_text("")
    single = tmp_path / "single.conf"
    assert [p.name for p in profile_files([tmp_path / "d", single])] == ["10-a.conf", "20-b.conf", "single.conf"]
