"""The format and distribution registries: facts, discovery, replacement, refusal before building."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kosi import distributions
from kosi.config.model import Config
from kosi.config.settings import SETTINGS_BY_NAME
from kosi.distributions.base import REGISTRY, Distribution
from kosi.errors import KosiError
from kosi.outputs import format as formats
from kosi.verbs.build import check_buildable

REPO = Path(__file__).resolve().parent.parent

MKOSI_FORMATS = {"directory", "tar", "cpio", "disk", "uki", "esp", "oci", "sysext", "confext", "portable", "addon",
                 "none"}  # fmt: skip
MKOSI_DISTRIBUTIONS = {"fedora", "debian", "kali", "ubuntu", "postmarketos", "arch", "opensuse", "mageia", "centos",
                       "rhel", "rhel-ubi", "openmandriva", "rocky", "alma", "azure", "custom"}  # fmt: skip


def test_every_mkosi_format_and_distribution_is_registered_and_the_table_offers_them():
    assert set(formats.names()) == MKOSI_FORMATS
    assert set(distributions.names()) == MKOSI_DISTRIBUTIONS
    assert set(SETTINGS_BY_NAME["Format"].type.choices) == MKOSI_FORMATS
    assert set(SETTINGS_BY_NAME["Distribution"].type.choices) == MKOSI_DISTRIBUTIONS
    assert set(SETTINGS_BY_NAME["ToolsTreeDistribution"].type.choices) == MKOSI_DISTRIBUTIONS


def test_format_facts_drive_the_defaults():
    assert Config({"Format": "disk"}).output_extension == "raw"
    assert Config({"Format": "uki"}).output_extension == "efi"
    assert Config({"Format": "directory"}).output_extension == ""  # mkosi prints "" too
    assert Config({"Format": "tar", "Distribution": "debian"})["CompressOutput"] == "zstd"
    assert Config({"Format": "disk", "Distribution": "debian"})["CompressOutput"] == "none"
    assert Config({"Format": "oci", "Distribution": "debian"})["CompressOutput"] == "gzip"
    assert (
        Config({"Format": "tar", "Distribution": "centos", "Release": "8"})["CompressOutput"] == "zstd"
    )  # mkosi 27.1, although the manual says xz
    assert Config({"Format": "tar", "Distribution": "centos", "Release": "9"})["CompressOutput"] == "zstd"
    disk, sysext, cpio = formats.get("disk"), formats.get("sysext"), formats.get("cpio")
    assert disk.needs_repart and disk.boots_by_default and not disk.extension_image
    assert sysext.extension_image and sysext.needs_repart and not sysext.can_boot
    assert cpio.can_boot and not cpio.boots_by_default


def test_format_facts_drive_compression_vm_boots_and_layers():
    from kosi.outputs.naming import output_name

    def having(fact):
        return {name for name in formats.names() if getattr(formats.get(name), fact)}

    # CompressOutput= compresses the whole file of these formats only (as mkosi 27.1)
    assert having("compresses_output") == {"tar", "cpio", "disk", "sysext", "confext", "portable"}
    assert output_name(Config({"Format": "disk", "Output": "i", "CompressOutput": "zstd"})) == "i.raw.zst"
    assert output_name(Config({"Format": "uki", "Output": "i", "CompressOutput": "zstd"})) == "i.efi"
    assert having("vm_initrd") == {"cpio"} and having("vm_kernel") == {"uki"}
    assert having("image_is_initrd") == {"uki", "esp"} and having("output_is_uki") == {"uki"}
    assert having("layered_on_system") == {"sysext", "confext"} and having("portable_service") == {"portable"}
    assert having("extension_image") == {"sysext", "confext", "portable"}
    assert formats.get("sysext").extension_release == ("SYSEXT", "usr/lib")
    assert formats.get("confext").extension_release == ("CONFEXT", "etc")


def test_distribution_facts_drive_the_defaults():
    assert Config({"Distribution": "fedora"})["Release"] == "rawhide"  # as mkosi 27.1
    assert Config({"Distribution": "ubuntu"})["ToolsTreeDistribution"] == "debian"
    assert distributions.by_os_release_id("almalinux") == "alma"
    assert distributions.by_os_release_id("opensuse-leap") == "opensuse"
    assert distributions.by_os_release_id("custom") is None
    assert distributions.get("debian").installer == "apt"
    assert "systemd-repart" in distributions.get("kali").tools_tree_packages["base"]
    assert "udev" in distributions.get("ubuntu").initrd_packages


def unwritten_format() -> str:
    """A format kosi cannot write yet (the tests follow as formats get writers)."""
    name = next((n for n, c in formats.discover().items() if not c.has_writer()), None)
    if name is None:
        pytest.skip("kosi writes every format")
    return name


def unbuilt_distribution() -> str:
    name = next((n for n, c in distributions.discover().items() if not c.installer and n != "custom"), None)
    if name is None:
        pytest.skip("kosi builds every distribution")
    return name


def test_a_class_with_a_writer_replaces_a_planned_one_and_two_writers_conflict():
    name = unwritten_format()
    planned = formats.get(name)
    try:
        Written = type("Written", (formats.Format,), {"name": name, "write": lambda self: None})
        assert formats.get(name) is Written
        type("Planned", (formats.Format,), {"name": name})  # a planned entry met later does not undo it
        assert formats.get(name) is Written
        with pytest.raises(TypeError, match="written by both"):
            type("Again", (formats.Format,), {"name": name, "write": lambda self: None})
    finally:
        formats.discover()[name] = planned


def test_a_distribution_with_an_installer_replaces_a_planned_one():
    name = unbuilt_distribution()
    planned = distributions.get(name)
    try:
        built = type(
            "Built", (Distribution,), {"name": name, "pretty_name": name, "default_release": "1", "installer": "apt"}
        )
        assert distributions.get(name) is built
    finally:
        REGISTRY[name] = planned


def test_what_kosi_cannot_build_is_refused_in_one_line():
    check_buildable(Config({"Distribution": "debian", "Format": "disk"}))
    check_buildable(Config({"Distribution": "custom", "Format": "tar"}))
    fmt, distribution = unwritten_format(), unbuilt_distribution()
    with pytest.raises(KosiError, match=rf"^Format={fmt}: kosi cannot write this format yet \(it can write: .*disk"):
        check_buildable(Config({"Distribution": "debian", "Format": fmt}))
    with pytest.raises(KosiError, match=rf"^Distribution={distribution}: kosi cannot build it yet"):
        check_buildable(Config({"Distribution": distribution, "Format": "tar"}))


def test_summary_works_but_plan_refuses_an_unbuildable_configuration(tmp_path):
    fmt, distribution = unwritten_format(), unbuilt_distribution()
    (tmp_path / "mkosi.conf").write_text(f"[Distribution]\nDistribution={distribution}\n[Output]\nFormat={fmt}\n")

    def kosi(*argv):
        return subprocess.run(
            [sys.executable, str(REPO / "bin" / "kosi"), "-C", str(tmp_path), *argv],
            check=False,
            capture_output=True,
            text=True,
        )

    summary = kosi("summary")
    assert summary.returncode == 0 and fmt in summary.stdout and distribution in summary.stdout
    plan = kosi("plan")
    assert plan.returncode == 1 and "Traceback" not in plan.stderr
    assert (
        plan.stderr.strip()
        .splitlines()[-1]
        .endswith(f"Format={fmt}: kosi cannot write this format yet (it can write: {', '.join(writable())})")
    )


def writable() -> list[str]:
    return sorted(n for n, c in formats.discover().items() if c.has_writer())
