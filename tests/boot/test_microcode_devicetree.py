"""Which microcode updates and devicetrees go into boot files (pure selection logic on real
directory trees; the real builds are in test_uki_real.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kosi.boot import devicetree, microcode
from kosi.errors import KosiError

INTEL_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 207
stepping\t: 2

processor\t: 1
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 1
stepping\t: 1
"""


def firmware(root: Path) -> None:
    intel = root / microcode.FIRMWARE / "intel-ucode"
    amd = root / microcode.FIRMWARE / "amd-ucode"
    intel.mkdir(parents=True)
    amd.mkdir(parents=True)
    for name in ("06-cf-02", "06-8f-08"):
        (intel / name).write_bytes(name.encode())
    for name in (
        "microcode_amd.bin",
        "microcode_amd_fam17h.bin",
        "microcode_amd_fam19h.bin",
        "README",
        "microcode_amd_fam19h.bin.asc",
    ):
        (amd / name).write_bytes(name.encode())


def test_host_cpu_reads_the_first_processor():
    assert microcode.host_cpu(INTEL_CPUINFO) == microcode.CPU("GenuineIntel", 6, 207, 2)
    assert microcode.host_cpu("processor : 0\nisa : rv64\n") is None


@pytest.mark.parametrize(
    "cpu, name",
    [
        (microcode.CPU("GenuineIntel", 6, 207, 2), "06-cf-02"),
        (microcode.CPU("AuthenticAMD", 0x19, 1, 1), "microcode_amd_fam19h.bin"),
        (microcode.CPU("AuthenticAMD", 0x10, 1, 1), "microcode_amd.bin"),
        (microcode.CPU("CentaurHauls", 6, 1, 1), None),
    ],
)
def test_update_file_names(cpu, name):
    assert microcode.host_update_name(cpu) == name


def test_all_updates_or_only_the_hosts(tmp_path):
    firmware(tmp_path)
    every = microcode.select_updates(tmp_path, only_host=False)
    assert [p.name for p in every["GenuineIntel"]] == ["06-8f-08", "06-cf-02"]
    assert [p.name for p in every["AuthenticAMD"]] == [
        "microcode_amd.bin",
        "microcode_amd_fam17h.bin",
        "microcode_amd_fam19h.bin",
    ]
    amd = microcode.select_updates(tmp_path, only_host=True, cpu=microcode.CPU("AuthenticAMD", 0x17, 49, 0))
    assert {v: [p.name for p in f] for v, f in amd.items()} == {"AuthenticAMD": ["microcode_amd_fam17h.bin"]}
    assert microcode.select_updates(tmp_path, only_host=True, cpu=microcode.CPU("GenuineIntel", 6, 1, 1)) == {}


def test_vendor_files_concatenate_the_updates(tmp_path):
    firmware(tmp_path)
    microcode.stage_tree(microcode.select_updates(tmp_path, only_host=False), tmp_path / "tree")
    target = tmp_path / "tree/kernel/x86/microcode"
    assert (target / "GenuineIntel.bin").read_bytes() == b"06-8f-0806-cf-02"
    assert sorted(p.name for p in target.iterdir()) == ["AuthenticAMD.bin", "GenuineIntel.bin"]


def dtbs(root: Path, kver: str) -> None:
    for relative in (
        f"usr/lib/modules/{kver}/dtb/vendor/a.dtb",
        f"usr/lib/modules/{kver}/dtb/vendor/b.dtb",
        f"usr/lib/linux-image-{kver}/vendor/a.dtb",
        f"usr/lib/linux-image-{kver}/other/c.dtb",
    ):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(relative.encode())


def test_devicetree_patterns_search_the_kernel_directories(tmp_path):
    dtbs(tmp_path, "6.12")
    found = devicetree.find_devicetrees(tmp_path, "6.12", ["vendor/*.dtb", "other/c.dtb"])
    # the modules directory comes first, so its vendor/a.dtb shadows linux-image's
    assert [str(p.relative_to(tmp_path)) for p in found] == [
        "usr/lib/modules/6.12/dtb/vendor/a.dtb",
        "usr/lib/modules/6.12/dtb/vendor/b.dtb",
        "usr/lib/linux-image-6.12/other/c.dtb",
    ]
    assert devicetree.ukify_arguments(found[:1]) == [f"--devicetree={found[0]}"]
    assert devicetree.ukify_arguments(found[:2]) == [f"--devicetree-auto={p}" for p in found[:2]]
    with pytest.raises(KosiError, match="Devicetrees=nothing/\\*.dtb"):
        devicetree.find_devicetrees(tmp_path, "6.12", ["nothing/*.dtb"])


def test_type1_entry_names_the_devicetree(tmp_path):
    from kosi.boot import systemd_boot

    dtbs(tmp_path / "root", "6.12")
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(b"kernel")
    esp = tmp_path / "esp"
    entry = systemd_boot.write_type1_entry(esp, "debian", "6.12", kernel, [], "rw", "Debian")
    found = devicetree.find_devicetrees(tmp_path / "root", "6.12", ["other/c.dtb"])
    devicetree.add_to_type1_entry(entry, esp, found)
    assert "devicetree /debian/6.12/c.dtb\noptions rw" in entry.read_text()
    assert (esp / "debian/6.12/c.dtb").read_bytes() == found[0].read_bytes()
    with pytest.raises(KosiError, match="one devicetree"):
        devicetree.add_to_type1_entry(entry, esp, devicetree.find_devicetrees(tmp_path / "root", "6.12", ["vendor/*"]))
