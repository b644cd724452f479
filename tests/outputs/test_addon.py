"""Format=addon: a UKI PE addon built by the tools tree's ukify, its sections read back.

The Debian addon carries CPU microcode from Debian's packages (.ucode), KernelCommandLine=
(.cmdline) and the tree (.initrd, zstd-compressed as CompressOutput= defaults); the quick one
(Distribution=custom) a devicetree from the tree's kernel directory (.dtb).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.boot.pe_cpio import cpio_members, pe_sections, section

REPO = Path(__file__).resolve().parents[2]
KOSI = [sys.executable, str(REPO / "bin/kosi")]
MICROCODE = "kernel/x86/microcode/"

DEBIAN = """\
[Distribution]
Distribution=debian
Release=trixie
Repositories=non-free-firmware

[Output]
Format=addon

[Content]
Packages=intel-microcode amd64-microcode
KernelCommandLine=systemd.log_level=debug "kosi.test=two words"
"""

#: a flattened devicetree header (magic, sizes) and nothing else: ukify copies .dtb as it is
FAKE_DTB = bytes.fromhex("d00dfeed00000038000000380000003800000038000000110000001000000000000000000000000000000000")


@pytest.fixture(scope="module")
def debian_addon(tmp_path_factory, kosi_build) -> bytes:
    project = tmp_path_factory.mktemp("addon")
    (project / "mkosi.conf").write_text(DEBIAN)
    (project / "mkosi.output").mkdir()
    result = kosi_build(project)
    (project / "build.log").write_text(result.stdout)
    assert result.returncode == 0, result.stdout[-4000:]
    assert (project / "mkosi.output/image").resolve() == project / "mkosi.output/image.efi"
    return (project / "mkosi.output/image.efi").read_bytes()


@pytest.mark.image
def test_debian_addon_sections(debian_addon):
    names = [name for name, _ in pe_sections(debian_addon)]
    assert ".linux" not in names and ".osrel" not in names  # an addon, not a UKI
    assert {".cmdline", ".initrd", ".ucode", ".sbat"} <= set(names)
    assert section(debian_addon, ".cmdline").rstrip(b"\0") == b'systemd.log_level=debug "kosi.test=two words"'
    assert b"systemd-addon" in section(debian_addon, ".sdmagic")
    ucode = cpio_members(section(debian_addon, ".ucode"))
    assert set(ucode) == {MICROCODE + "GenuineIntel.bin", MICROCODE + "AuthenticAMD.bin"}
    assert all(len(data) > 1000 for data in ucode.values())
    initrd = section(debian_addon, ".initrd")
    assert initrd[:4] == b"\x28\xb5\x2f\xfd"  # zstd, CompressOutput='s default for an addon
    tree = subprocess.run(["zstd", "-dc"], input=initrd, stdout=subprocess.PIPE, check=True).stdout
    assert "usr/lib/os-release" in cpio_members(tree)


CUSTOM = """\
[Distribution]
Distribution=custom

[Output]
Format=addon
CompressOutput=no

[Content]
Devicetrees=kosi/board.dtb
KernelCommandLine=quiet

[Build]
ToolsTree=default
"""


@pytest.mark.image
def test_custom_addon_with_devicetree(tmp_path, default_tools_tree):
    modules = tmp_path / "mkosi.extra/usr/lib/modules/6.1.0-test"
    (modules / "dtb/kosi").mkdir(parents=True)
    (modules / "vmlinuz").write_bytes(b"not a kernel")
    (modules / "dtb/kosi/board.dtb").write_bytes(FAKE_DTB)
    (tmp_path / "mkosi.conf").write_text(CUSTOM)
    result = subprocess.run(
        [*KOSI, "-C", str(tmp_path), "-f", "build"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert result.returncode == 0, result.stdout
    addon = (tmp_path / "image.efi").read_bytes()
    assert section(addon, ".dtb") == FAKE_DTB
    assert section(addon, ".cmdline").rstrip(b"\0") == b"quiet"
    assert "usr/lib/modules/6.1.0-test/dtb/kosi/board.dtb" in cpio_members(section(addon, ".initrd"))
    assert ".ucode" not in [name for name, _ in pe_sections(addon)]  # no microcode in the tree
