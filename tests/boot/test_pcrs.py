"""SignExpectedPcr='s decision (the real signing is in test_pcrs_real.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kosi.boot.pcrs import check_pcr_keys, measure_can_sign, want_signed_pcrs
from kosi.config.model import Config
from kosi.config.values import Feature
from kosi.errors import KosiError


def tools_tree(tmp_path: Path, libtss2: bool) -> Path:
    tree = tmp_path / ("with" if libtss2 else "without")
    measure = tree / "usr/lib/systemd/systemd-measure"
    measure.parent.mkdir(parents=True)
    measure.write_text("#!/bin/sh\n")
    measure.chmod(0o755)
    if libtss2:
        (tree / "usr/lib/x86_64-linux-gnu").mkdir(parents=True)
        (tree / "usr/lib/x86_64-linux-gnu/libtss2-esys.so.0").write_text("")
    return tree


def config(tmp_path: Path, mode: Feature, keys: bool = True) -> Config:
    values: dict = {"SignExpectedPcr": mode}
    if keys:
        (tmp_path / "k.key").write_text("k")
        (tmp_path / "k.crt").write_text("c")
        values |= {"SignExpectedPcrKey": tmp_path / "k.key", "SignExpectedPcrCertificate": tmp_path / "k.crt"}
    return Config(values)


def test_auto_signs_only_when_systemd_measure_can(tmp_path):
    able, unable = tools_tree(tmp_path, True), tools_tree(tmp_path, False)
    assert measure_can_sign(able) and not measure_can_sign(unable)
    assert want_signed_pcrs(config(tmp_path, Feature.auto), able)
    assert not want_signed_pcrs(config(tmp_path, Feature.auto), unable)
    assert not want_signed_pcrs(config(tmp_path, Feature.auto, keys=False), able)
    assert not want_signed_pcrs(config(tmp_path, Feature.disabled), able)


def test_yes_fails_in_one_line_without_libtss2_or_keys(tmp_path):
    with pytest.raises(KosiError, match="SignExpectedPcr=yes needs systemd-measure with libtss2"):
        want_signed_pcrs(config(tmp_path, Feature.enabled), tools_tree(tmp_path, False))
    with pytest.raises(KosiError, match="SignExpectedPcrKey= is not set"):
        check_pcr_keys(config(tmp_path / "none", Feature.enabled, keys=False))
    check_pcr_keys(config(tmp_path, Feature.enabled))
