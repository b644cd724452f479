"""Real builds of bootable outputs: a Format=uki image with UKI profiles, a devicetree and the
host's microcode only (MicrocodeHost=yes), and a Format=esp image with all microcode.

Both images install Debian's microcode packages from non-free-firmware; the devicetree is a
real one compiled with dtc and put where kernel packages install theirs.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tests.boot.pe_cpio import cpio_members, pe_sections, section

MICROCODE = "kernel/x86/microcode/"

COMMON = """\
[Distribution]
Distribution=debian
Release=trixie
Repositories=non-free-firmware

[Output]
Format={format}
CompressOutput=no

[Content]
Bootable=yes
Packages=systemd udev linux-image-amd64 systemd-boot intel-microcode amd64-microcode
KernelCommandLine=quiet
MicrocodeHost={host}
"""

BOARD_DTS = """\
/dts-v1/;
/ {
    compatible = "kosi,test-board";
    model = "kosi test board";
    #address-cells = <1>;
    #size-cells = <1>;
    memory@80000000 { device_type = "memory"; reg = <0x80000000 0x10000000>; };
};
"""

# Kernel packages put dtbs under /usr/lib/modules/<kver>/dtb; the kernel version is only known
# once the package is installed, so a post-installation script moves the extra tree's dtb there.
POSTINST = """\
#!/bin/sh
set -e
for modules in "$BUILDROOT"/usr/lib/modules/*/; do
    mkdir -p "$modules/dtb/kosi"
    cp "$BUILDROOT/usr/share/kosi-test/board.dtb" "$modules/dtb/kosi/board-test.dtb"
done
"""

PROFILES = {
    "10-debug.conf": '[UKIProfile]\nProfile=ID=debug TITLE="Debug mode"\nCmdline=systemd.log_level=debug\n',
    "20-rescue.conf": "[UKIProfile]\nProfile=ID=rescue\n        TITLE=Rescue\nCmdline=systemd.unit=rescue.target\n",
}


def build_or_fail(directory: Path, kosi_build) -> None:
    (directory / "mkosi.output").mkdir(exist_ok=True)
    result = kosi_build(directory)
    (directory / "build.log").write_text(result.stdout)
    if result.returncode != 0:
        pytest.fail(f"building {directory.name} failed:\n{result.stdout[-4000:]}")


@pytest.fixture(scope="session")
def board_dtb(tmp_path_factory) -> bytes:
    if shutil.which("dtc") is None:
        pytest.fail("dtc is missing: install device-tree-compiler (setup.sh does)")
    directory = tmp_path_factory.mktemp("dtb")
    (directory / "board.dts").write_text(BOARD_DTS)
    subprocess.run(
        ["dtc", "-I", "dts", "-O", "dtb", "-o", str(directory / "board.dtb"), str(directory / "board.dts")], check=True
    )
    return (directory / "board.dtb").read_bytes()


@pytest.fixture(scope="session")
def uki_project(tmp_path_factory, kosi_build, board_dtb) -> Path:
    """Format=uki with two profiles, Devicetrees=kosi/board-*.dtb and MicrocodeHost=yes."""
    directory = tmp_path_factory.mktemp("uki-real")
    (directory / "mkosi.conf").write_text(COMMON.format(format="uki", host="yes") + "Devicetrees=kosi/board-*.dtb\n")
    (directory / "mkosi.uki-profiles").mkdir()
    for name, text in PROFILES.items():
        (directory / "mkosi.uki-profiles" / name).write_text(text)
    (directory / "mkosi.extra/usr/share/kosi-test").mkdir(parents=True)
    (directory / "mkosi.extra/usr/share/kosi-test/board.dtb").write_bytes(board_dtb)
    (directory / "mkosi.postinst").write_text(POSTINST)
    (directory / "mkosi.postinst").chmod(0o755)
    build_or_fail(directory, kosi_build)
    return directory


@pytest.fixture(scope="session")
def uki_bytes(uki_project) -> bytes:
    return (uki_project / "mkosi.output/image.efi").read_bytes()


@pytest.fixture(scope="session")
def esp_project(tmp_path_factory, kosi_build) -> Path:
    """Format=esp with MicrocodeHost=no: every microcode update of both vendors."""
    directory = tmp_path_factory.mktemp("esp-real")
    (directory / "mkosi.conf").write_text(
        COMMON.format(format="esp", host="no") + "\n[Output]\nSplitArtifacts=uki,os-release\n"
    )
    build_or_fail(directory, kosi_build)
    return directory


def host_cpu() -> tuple[str, int, int, int]:
    fields: dict[str, str] = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields["vendor_id"], int(fields["cpu family"]), int(fields["model"]), int(fields["stepping"])


def intel_signature(family: int, model: int, stepping: int) -> int:
    """CPUID leaf 1 EAX as Intel microcode headers record it."""
    ext_family = max(family - 0xF, 0)
    base_family = min(family, 0xF)
    return (ext_family << 20) | ((model >> 4) << 16) | (base_family << 8) | ((model & 0xF) << 4) | stepping


@pytest.mark.image
def test_uki_profiles(uki_bytes):
    """Base profile (ukify's ID=main) then one per mkosi.uki-profiles/ file, in name order, each
    with its .profile text and its command line extending the base one."""
    sections = pe_sections(uki_bytes)
    names = [name for name, _ in sections]
    first = names.index(".profile")
    assert {".linux", ".initrd", ".ucode", ".dtb", ".cmdline", ".osrel", ".uname"} <= set(names[:first])
    profiles = [(i, content.decode()) for i, (name, content) in enumerate(sections) if name == ".profile"]
    assert [text.split("\n")[0] for _, text in profiles] == ["ID=main", "ID=debug", "ID=rescue"]
    assert "TITLE=Debug mode" in profiles[1][1] and "TITLE=Rescue" in profiles[2][1]
    base_cmdline = sections[names.index(".cmdline")][1].decode().strip("\0 \n")
    assert "quiet" in base_cmdline and "systemd.log_level" not in base_cmdline
    for (start, _), extra in zip(profiles[1:], ("systemd.log_level=debug", "systemd.unit=rescue.target"), strict=True):
        own = [content.decode().strip("\0 \n") for name, content in sections[start + 1 :] if name == ".cmdline"][0]
        assert own == f"{base_cmdline} {extra}"
    # the profiles carry only what differs: no second kernel or initrd
    assert names.count(".linux") == 1 and names.count(".initrd") == 1


@pytest.mark.image
def test_uki_profiles_as_ukify_sees_them(uki_project, default_tools_tree):
    """ukify's own reading of the result agrees: three profiles, the last two with their command
    lines (its JSON output folds repeated sections into one key, so read the text)."""
    from kosi.tools.command import tools_command

    uki = uki_project / "mkosi.output/image.efi"
    text = subprocess.run(
        [*tools_command(default_tools_tree, [uki.parent]), "ukify", "inspect", str(uki)],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    ).stdout
    blocks = [block.split("\n", 1) for block in ("\n" + text).split("\n.")[1:]]
    order = [(head.rstrip(":"), body) for head, body in blocks]
    profiles = [i for i, (name, _) in enumerate(order) if name == "profile"]
    assert len(profiles) == 3
    assert "ID=debug" in order[profiles[1]][1] and "systemd.log_level=debug" in order[profiles[1] + 1][1]
    assert "ID=rescue" in order[profiles[2]][1] and "systemd.unit=rescue.target" in order[profiles[2] + 1][1]


@pytest.mark.image
def test_uki_devicetree_is_the_compiled_dtb(uki_bytes, board_dtb):
    assert section(uki_bytes, ".dtb") == board_dtb
    assert ".dtbauto" not in [name for name, _ in pe_sections(uki_bytes)]


@pytest.mark.image
def test_microcode_host_only(uki_bytes, esp_uki_bytes):
    """MicrocodeHost=yes: the .ucode cpio holds only the host vendor's file, with only the
    update for this CPU, which is part of what MicrocodeHost=no includes."""
    vendor, family, model, stepping = host_cpu()
    only = cpio_members(section(uki_bytes, ".ucode"))
    every = cpio_members(section(esp_uki_bytes, ".ucode"))
    assert set(every) == {MICROCODE + "GenuineIntel.bin", MICROCODE + "AuthenticAMD.bin"}
    assert list(only) == [MICROCODE + vendor + ".bin"]
    ours = only[MICROCODE + vendor + ".bin"]
    assert 0 < len(ours) < len(every[MICROCODE + vendor + ".bin"]) and ours in every[MICROCODE + vendor + ".bin"]
    if vendor == "GenuineIntel":
        # every update in the file is for this CPU: the header's processor signature (offset 12)
        # matches, and updates follow each other by their total size (offset 32)
        offset = 0
        while offset < len(ours):
            signature = struct.unpack_from("<I", ours, offset + 12)[0]
            total = struct.unpack_from("<I", ours, offset + 32)[0]
            assert signature == intel_signature(family, model, stepping)
            offset += total or 2048


@pytest.fixture(scope="session")
def esp_partition(esp_project) -> tuple[Path, int, dict]:
    image = esp_project / "mkosi.output/image.raw"
    table = json.loads(
        subprocess.run(["sfdisk", "--json", str(image)], stdout=subprocess.PIPE, text=True, check=True).stdout
    )["partitiontable"]
    return image, table["sectorsize"], table


@pytest.fixture(scope="session")
def esp_uki_bytes(esp_partition, tmp_path_factory) -> bytes:
    image, sector, table = esp_partition
    offset = table["partitions"][0]["start"] * sector
    listing = subprocess.run(
        ["mdir", "-b", "-/", "-i", f"{image}@@{offset}", "::/EFI/Linux"], stdout=subprocess.PIPE, text=True, check=True
    ).stdout.split()
    ukis = [name.rsplit("/", 1)[-1] for name in listing if name.endswith(".efi")]
    assert len(ukis) == 1, listing
    target = tmp_path_factory.mktemp("esp-uki") / "uki.efi"
    subprocess.run(["mcopy", "-i", f"{image}@@{offset}", f"::/EFI/Linux/{ukis[0]}", str(target)], check=True)
    return target.read_bytes()


@pytest.mark.image
def test_esp_split_artifacts(esp_project, esp_uki_bytes):
    """SplitArtifacts=uki copies out the UKI that is in the ESP."""
    output = esp_project / "mkosi.output"
    assert (output / "image.efi").read_bytes() == esp_uki_bytes
    assert "ID=debian" in (output / "image.osrelease").read_text()


@pytest.mark.image
def test_esp_image_holds_only_the_esp(esp_partition):
    _, _, table = esp_partition
    assert table["label"] == "gpt"
    assert [p["type"].lower() for p in table["partitions"]] == ["c12a7328-f81f-11d2-ba4b-00a0c93ec93b"]


@pytest.mark.image
def test_esp_image_boots_systemd_boot_and_a_uki(esp_partition, esp_uki_bytes, tmp_path):
    """systemd-boot (the default Bootloader=) as the fallback loader, the UKI in EFI/Linux with the
    image itself as its initrd, and nothing else: not the kernel package's files from /boot."""
    image, sector, table = esp_partition
    offset = table["partitions"][0]["start"] * sector
    top = subprocess.run(
        ["mdir", "-b", "-i", f"{image}@@{offset}", "::/"], stdout=subprocess.PIPE, text=True, check=True
    ).stdout.split()
    assert sorted(name.strip("/").rsplit("/", 1)[-1].lower() for name in top) == ["efi", "loader"]
    fallback = tmp_path / "bootx64.efi"
    subprocess.run(["mcopy", "-i", f"{image}@@{offset}", "::/EFI/BOOT/BOOTX64.EFI", str(fallback)], check=True)
    assert b"systemd-boot" in fallback.read_bytes()
    names = [name for name, _ in pe_sections(esp_uki_bytes)]
    assert {".linux", ".initrd", ".ucode", ".osrel"} <= set(names)
    # the image as initrd: a zstd-compressed cpio of the whole root (kernel modules included),
    # whose /init -> systemd the image has of its own, as mkosi 27.1 makes it
    initrd = section(esp_uki_bytes, ".initrd")
    assert initrd[:4] == b"\x28\xb5\x2f\xfd"
    listing = subprocess.run(
        "zstd -dcq 2>/dev/null | cpio -t --quiet 2>/dev/null", shell=True, input=initrd, stdout=subprocess.PIPE
    ).stdout.split()
    assert b"usr/lib/os-release" in listing and b"usr/bin/systemctl" in listing
    assert any(name.startswith(b"usr/lib/modules/") and name.endswith(b"/modules.dep") for name in listing)
    assert b"init" in listing and b"usr/lib/systemd/systemd" in listing


@pytest.mark.image
@pytest.mark.vm
def test_uki_image_boots_from_memory(uki_project):
    """The Format=uki output boots: its initrd is the whole image, systemd starts from the /init
    link and reaches multi-user (the marker unit) in the base profile, not in the later ones."""
    from tests.run.vm_support import boot_vm

    returncode, output, _ = boot_vm(uki_project)
    assert returncode == 0 and "KOSI-BOOT-OK" in output, output[-3000:]


@pytest.mark.image
@pytest.mark.vm
def test_esp_image_boots_through_systemd_boot(esp_project):
    """UEFI firmware starts systemd-boot from the ESP image, which starts the UKI, whose initrd
    (the image) reaches multi-user."""
    from tests.run.vm_support import boot_vm

    returncode, output, _ = boot_vm(esp_project, timeout=600)
    assert returncode == 0 and "KOSI-BOOT-OK" in output, output[-3000:]
