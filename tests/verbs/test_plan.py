"""`kosi plan`: what a build would do, from the same steps the build runs, without side effects."""

from __future__ import annotations

import json

from tests.verbs.verbs_helpers import kosi, write

CONF = """\
[Distribution]
Distribution=debian
Release=trixie

[Output]
Format=directory
OutputDirectory=out

[Content]
Packages=systemd

[Build]
Incremental=yes
CacheDirectory=cache
"""


def test_plan_text_shows_runs_skips_and_conditions(tmp_path):
    write(tmp_path / "mkosi.conf", CONF)
    out = kosi("-C", str(tmp_path), "plan").stdout
    lines = {
        line.split(". ", 1)[1].rsplit("  ", 1)[0].strip(): line.rsplit("  ", 1)[1]
        for line in out.splitlines()
        if line.strip()[:3].strip().rstrip(".").isdigit()
    }
    assert lines["install distribution and packages"] == "run"
    assert lines["reuse cached image"] == "skip: no cached image yet"
    assert lines["run build scripts"] == "skip: no build scripts"
    assert lines["systemctl preset-all"] == "run, unless image has no systemctl"
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()  # no side effects


def test_plan_json_and_existing_output(tmp_path):
    write(tmp_path / "mkosi.conf", CONF)
    (tmp_path / "out/image").mkdir(parents=True)
    data = json.loads(kosi("-C", str(tmp_path), "plan", "--json").stdout)
    image = data["Images"][0]
    assert image["image"] == "main" and image["format"] == "directory"
    assert image["blocked"] == f"output {tmp_path / 'out/image'} exists (use -f)"
    assert {"tree", "why", "build"} <= set(data["ToolsTree"])
    forced = json.loads(kosi("-C", str(tmp_path), "-f", "plan", "--json").stdout)
    assert forced["Images"][0]["blocked"] is None


def test_plan_for_another_distribution_does_not_blame_the_tools_tree(tmp_path):
    # ToolsTreeDistribution= defaults to the host's distribution (manual, mkosi 27.1), so a
    # Fedora image on a Debian host gets a Debian tools tree; whatever `plan` then says about
    # Fedora itself, it is not that there is no Fedora tools tree.
    write(tmp_path / "mkosi.conf", "[Output]\nFormat=disk\n")
    result = kosi("-C", str(tmp_path), "-d", "fedora", "plan", check=False)
    assert "ToolsTree" not in result.stdout + result.stderr


def test_plan_json_names_first_packages_and_the_default_initrd(tmp_path):
    write(tmp_path / "mkosi.conf", CONF)
    image = json.loads(kosi("-C", str(tmp_path), "plan", "--json").stdout)["Images"][0]
    assert image["first-packages"] == ["?essential"]  # Debian's essential set, before Packages=
    initrd = image["default-initrd"]  # Bootable=auto: the default initrd, once a kernel is found
    assert {"systemd", "udev"} <= set(initrd["packages"])
    bootless = json.loads(kosi("-C", str(tmp_path), "--bootable=no", "plan", "--json").stdout)["Images"][0]
    assert bootless["default-initrd"] is None
    (tmp_path / "initrd.cpio").write_bytes(b"")
    own = json.loads(kosi("-C", str(tmp_path), "--initrd", "initrd.cpio", "plan", "--json").stdout)["Images"][0]
    assert own["default-initrd"] is None  # Initrds= names only a file of the user's
    based = json.loads(kosi("-C", str(tmp_path), "--base-tree", "initrd.cpio", "plan", "--json").stdout)["Images"][0]
    assert based["first-packages"] == []  # BaseTrees= brings the base system
