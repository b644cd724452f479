"""A disk whose root partition has signed verity, built and booted for real.

The root is an erofs partition with its verity hash and signature partitions (mkosi.repart/,
Verity=signed, `kosi genkey`'s key). repart learns the root hash only when it writes the
root, so kosi writes the disk in two runs, as mkosi does: the UKI gets roothash= on its
command line (and the hash in its name, &h), and the ESP holding it is added afterwards.
The VM boots it: the initrd sets up the verity device from roothash=, the root is mounted
from it, read-only, and the marker unit reaches the serial console.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from tests.conftest import BOOTABLE_CONF
from tests.boot.pe_cpio import section
from tests.run.boot_checks import enable_unit, genkey_and_build
from tests.run.vm_support import KOSI, boot_vm, needs_root

REPART = {
    "00-esp.conf": "[Partition]\nType=esp\nFormat=vfat\nCopyFiles=/boot:/\nCopyFiles=/efi:/\nSizeMinBytes=512M\nSizeMaxBytes=512M\n",
    "10-root.conf": (
        "[Partition]\nType=root\nFormat=erofs\nCopyFiles=/\nExcludeFiles=/boot/\nExcludeFiles=/efi/\n"
        "Verity=data\nVerityMatchKey=root\nMinimize=best\n"
    ),
    "11-root-verity.conf": "[Partition]\nType=root-verity\nVerity=hash\nVerityMatchKey=root\nMinimize=best\n",
    "12-root-verity-sig.conf": "[Partition]\nType=root-verity-sig\nVerity=signature\nVerityMatchKey=root\n",
}
# Runs before the marker (which powers the VM off) and the serial getty (which hangs up the
# console's writers): what / is mounted from, as the guest sees it.
ROOT_CHECK_UNIT = """\
[Unit]
Description=kosi verity root check
Before=serial-getty@ttyS0.service kosi-test-marker.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo KOSI-ROOT $$(findmnt -no SOURCE,FSTYPE,OPTIONS /) $$(grep -o "roothash=[0-9a-f]*" /proc/cmdline) >/dev/ttyS0'

[Install]
WantedBy=multi-user.target
"""


@pytest.fixture(scope="module")
def verity_project(tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("verityboot")
    conf = BOOTABLE_CONF.replace("SplitArtifacts=", "SplitArtifacts=roothash,")
    (project / "mkosi.conf").write_text(conf + "\n[Validation]\nVerity=signed\n")
    (project / "mkosi.repart").mkdir()
    for name, text in REPART.items():
        (project / "mkosi.repart" / name).write_text(text)
    enable_unit(project, "kosi-root-check.service", ROOT_CHECK_UNIT)
    genkey_and_build(project)
    return project


def uki_command_line(uki: Path) -> str:
    return section(uki.read_bytes(), ".cmdline").decode().strip("\0 \n")


@needs_root
@pytest.mark.image
def test_uki_carries_the_root_hash_of_the_signed_root(verity_project):
    out = verity_project / "mkosi.output"
    roothash = (out / "image.roothash").read_text().strip()
    assert len(roothash) == 64
    table = json.loads(
        subprocess.run(["sfdisk", "--json", str(out / "image.raw")], stdout=subprocess.PIPE, check=True).stdout
    )["partitiontable"]["partitions"]
    names = [p["name"] for p in table]
    assert names == ["esp", "root-x86-64", "root-x86-64-verity", "root-x86-64-verity-sig"], names
    # repart derives the data and hash partitions' UUIDs from the root hash: the hash is this disk's
    root = next(p for p in table if p["name"] == "root-x86-64")
    assert root["uuid"].replace("-", "").lower() == roothash[:32]
    uki = out / "image.efi"
    cmdline = uki_command_line(uki).split()
    assert f"roothash={roothash}" in cmdline and "rw" not in cmdline, cmdline
    # the UKI in the ESP is the one named after the hash (&e-&k-&h), the first run's is gone
    listing = subprocess.run(
        [*KOSI, "-C", str(verity_project), "box", "--", "mdir", "-b", "-i", f"{out / 'image.raw'}@@1M", "::/EFI/Linux"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    entries = [line.rsplit("/", 1)[-1] for line in listing.stdout.split() if line.endswith(".efi")]
    assert len(entries) == 1 and entries[0].endswith(f"-{roothash}.efi"), listing.stdout
    # the signature partition signs that hash (systemd-dissect checks it against the certificate)
    shown = subprocess.run(
        [*KOSI, "-C", str(verity_project), "box", "--", "systemd-dissect", "--no-pager", str(out / "image.raw")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert any(line.split()[1:2] == ["root"] and " signed " in line for line in shown.stdout.splitlines()), shown.stdout


@needs_root
@pytest.mark.vm
def test_signed_verity_root_boots_to_the_marker(verity_project):
    status, output, elapsed = boot_vm(verity_project)
    assert "KOSI-BOOT-OK" in output, output[-4000:]
    roothash = (verity_project / "mkosi.output/image.roothash").read_text().strip()
    line = next((l for l in output.splitlines() if "KOSI-ROOT " in l and "findmnt" not in l), "")
    # / comes from the verity device set up from roothash=, read-only, erofs
    assert "/dev/mapper/root erofs ro" in line, output[-4000:]
    assert line.split()[-1] == f"roothash={roothash}", line
    print(f"boot of the signed verity root: {elapsed:.1f}s")
