"""genkey, bump (and --auto-bump's hooks), dependencies and init, run for real."""

from __future__ import annotations

import getpass
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest
from verbs_helpers import kosi, write

from kosi.config.model import Config, Project
from kosi.errors import KosiError
from kosi.verbs import bump, init
from kosi.verbs.dependencies import host_tools_distribution, tools_tree_packages

needs_openssl = pytest.mark.skipif(not shutil.which("openssl"), reason="openssl is not installed")


@needs_openssl
def test_genkey_makes_a_private_key_and_a_certificate_with_the_common_name(tmp_path: Path):
    kosi("genkey", "--genkey-common-name", "Test Signer", "--genkey-valid-days", "10", cwd=tmp_path)
    key, cert = tmp_path / "mkosi.key", tmp_path / "mkosi.crt"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    subject = subprocess.run(
        ["openssl", "x509", "-noout", "-subject", "-in", str(cert)], capture_output=True, text=True, check=True
    ).stdout
    assert "CN = Test Signer" in subject
    # the key and the certificate belong together
    modulus = [
        subprocess.run(
            ["openssl", kind, "-noout", "-modulus", "-in", str(path)], capture_output=True, text=True, check=True
        ).stdout
        for kind, path in (("rsa", key), ("x509", cert))
    ]
    assert modulus[0] == modulus[1]
    days = subprocess.run(
        ["openssl", "x509", "-noout", "-checkend", str(11 * 86400), "-in", str(cert)], capture_output=True, text=True
    )
    assert days.returncode == 1  # expires within 11 days


@needs_openssl
def test_genkey_refuses_to_overwrite_without_force(tmp_path: Path):
    kosi("genkey", cwd=tmp_path)
    before = (tmp_path / "mkosi.key").read_bytes()
    result = kosi("genkey", cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "mkosi.key" in result.stderr and "-f" in result.stderr
    assert (tmp_path / "mkosi.key").read_bytes() == before
    kosi("-f", "genkey", cwd=tmp_path)
    assert (tmp_path / "mkosi.key").read_bytes() != before
    subject = subprocess.run(
        ["openssl", "x509", "-noout", "-subject", "-in", str(tmp_path / "mkosi.crt")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"CN = mkosi of {getpass.getuser()}" in subject


@pytest.mark.parametrize("old, new", [
    ("1.2.3", "1.2.4"), ("1", "2"), ("0.9", "0.10"), ("2024.09", "2024.10"), ("1.2~rc1", "1.2~rc2"), ("v7", "v8"),
    ("1.9.9", "1.9.10"), ("007", "008"),
])  # fmt: skip
def test_bump_rules(old: str, new: str):
    assert bump.bumped(old) == new


def test_bump_refuses_versions_without_numbers():
    with pytest.raises(KosiError, match="no number"):
        bump.bumped("latest")


def test_bump_verb_writes_the_file(tmp_path: Path):
    write(tmp_path / "mkosi.conf", "[Output]\nFormat=directory\n")
    write(tmp_path / "mkosi.version", "1.2.3\n")
    kosi("bump", cwd=tmp_path)
    assert (tmp_path / "mkosi.version").read_text() == "1.2.4\n"
    kosi("-C", str(tmp_path), "bump")
    assert (tmp_path / "mkosi.version").read_text() == "1.2.5\n"


def test_bump_without_a_version_file_or_with_a_script_fails(tmp_path: Path):
    result = kosi("bump", cwd=tmp_path, check=False)
    assert result.returncode == 1 and "mkosi.version does not exist" in result.stderr
    script = write(tmp_path / "mkosi.version", "#!/bin/sh\necho 5\n")
    script.chmod(0o755)
    result = kosi("bump", cwd=tmp_path, check=False)
    assert result.returncode == 1 and "executable" in result.stderr
    assert script.read_text() == "#!/bin/sh\necho 5\n"


def test_auto_bump_uses_the_new_version_and_writes_it_only_on_commit(tmp_path: Path):
    write(tmp_path / "mkosi.version", "3.1\n")
    main = Config({"ImageVersion": "3.1"}, directory=tmp_path)
    sub = Config({}, image="initrd", directory=tmp_path)
    pending = bump.auto_bump_begin(Project(images=[sub, main]))
    assert main.values["ImageVersion"] == "3.2" and sub.values["ImageVersion"] == "3.2"
    assert (tmp_path / "mkosi.version").read_text() == "3.1\n"  # a failed build leaves it alone
    bump.auto_bump_commit(pending)
    assert (tmp_path / "mkosi.version").read_text() == "3.2\n"


def test_auto_bump_before_loading_reaches_specifiers(tmp_path: Path):
    from kosi.config.cli_args import parse_command_line
    from kosi.config.loader import load_project

    write(tmp_path / "mkosi.conf", "[Output]\nImageId=img\nOutput=%i_%v\nFormat=directory\n")
    write(tmp_path / "mkosi.version", "1.9\n")
    args = parse_command_line(["-C", str(tmp_path), "--auto-bump", "build"])
    pending = bump.auto_bump_begin(args)
    project = load_project(args)
    assert project.main["ImageVersion"] == "1.10" and project.main["Output"] == "img_1.10"
    assert (tmp_path / "mkosi.version").read_text() == "1.9\n"
    bump.auto_bump_commit(pending)
    assert (tmp_path / "mkosi.version").read_text() == "1.10\n"


def test_dependencies_lists_the_tools_tree_packages():
    out = kosi("dependencies").stdout.splitlines()
    table = tools_tree_packages(host_tools_distribution())
    assert out == list(dict.fromkeys([*table["base"], *table["package-manager"]]))
    with_runtime = kosi("dependencies", "--", "--profile", "runtime").stdout.splitlines()
    assert with_runtime[: len(out)] == out and set(table["runtime"]) <= set(with_runtime)
    assert "qemu-system-x86" in with_runtime and "qemu-system-x86" not in out
    result = kosi("dependencies", "--", "--profile", "bogus", check=False)
    assert result.returncode == 1 and "bogus" in result.stderr


@pytest.mark.skipif(not shutil.which("systemd-tmpfiles"), reason="systemd-tmpfiles is not installed")
def test_init_dropin_ages_out_old_package_files(tmp_path: Path):
    root = tmp_path / "root"
    cache = Path("/var/cache/kosi/packages")
    dropin = root / "etc/tmpfiles.d/kosi.conf"
    assert init.install(dropin, cache) is True
    assert init.install(dropin, cache) is False  # idempotent
    packages = root / cache.relative_to("/")
    packages.mkdir(parents=True)
    old, fresh = packages / "old.deb", packages / "fresh.deb"
    old.write_text("old")
    fresh.write_text("fresh")
    ancient = time.time() - 200 * 86400
    os.utime(old, (ancient, ancient))
    subprocess.run(["systemd-tmpfiles", "--clean", f"--root={root}", str(dropin)], check=True)
    assert not old.exists() and fresh.exists()
