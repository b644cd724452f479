"""Format=disk: default partition definitions, repart errors, and one real bootable image."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from kosi.config.cli_args import parse_command_line
from kosi.config.loader import load_project
from kosi.config.model import Config
from kosi.config.values import Feature
from kosi.errors import KosiError
from kosi.outputs import disk
from kosi.pipeline.context import Context

ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
ROOT_X86_64_TYPE = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
BIOS_BOOT_TYPE = "21686148-6449-6E6F-744E-656564454649"


def context(tmp_path: Path, **values) -> Context:
    config = Config({"Distribution": "debian", "Release": "trixie", "Format": "disk", **values}, directory=tmp_path)
    return Context(config=config, workspace=tmp_path / "ws", package_cache=tmp_path / "cache")


def loaded_context(directory: Path, conf: str) -> Context:
    """A context for the main image of a real mkosi.conf, loaded as `kosi build` loads it."""
    (directory / "mkosi.conf").write_text(conf)
    config = load_project(parse_command_line(["-C", str(directory), "build"])).main
    return Context(config=config, workspace=directory / "ws", package_cache=directory / "cache")


def test_default_definitions_follow_bootable_and_bios(tmp_path):
    plain = disk.default_or_configured_definitions(context(tmp_path, Bootable=Feature.disabled))[0]
    assert sorted(p.name for p in plain.iterdir()) == ["10-root.conf"]
    assert "Format=ext4" in (plain / "10-root.conf").read_text()
    both = disk.default_or_configured_definitions(context(tmp_path, Bootable=Feature.enabled, BiosBootloader="grub"))[0]
    assert sorted(p.name for p in both.iterdir()) == ["00-esp.conf", "05-bios.conf", "10-root.conf"]
    assert "CopyFiles=/boot:/" in (both / "00-esp.conf").read_text()
    # Bootable=auto: the ESP only when the boot steps found a kernel
    auto = context(tmp_path)
    assert sorted(p.name for p in disk.default_or_configured_definitions(auto)[0].iterdir()) == ["10-root.conf"]
    auto.state.kernels = ["6.12.0-1-amd64"]
    assert "00-esp.conf" in [p.name for p in disk.default_or_configured_definitions(auto)[0].iterdir()]


def test_repart_directory_replaces_defaults(tmp_path):
    (tmp_path / "mkosi.repart").mkdir()
    ctx = loaded_context(tmp_path, "[Output]\nFormat=disk\n\n[Content]\nBootable=yes\n")
    assert disk.default_or_configured_definitions(ctx) == [tmp_path / "mkosi.repart"]


def test_seed_and_sector_size_reach_repart(tmp_path):
    (tmp_path / "mkosi.seed").write_text("b3f1a5b6-8b3c-4a8e-9d2c-111111111111\n")
    ctx = loaded_context(tmp_path, "[Output]\nFormat=disk\nSectorSize=4096\n")
    command = disk.repart_command(ctx, tmp_path / "image.raw", [tmp_path], split=False)
    assert "--seed=b3f1a5b6-8b3c-4a8e-9d2c-111111111111" in command and "--sector-size=4096" in command
    unset = disk.repart_command(context(tmp_path), tmp_path / "image.raw", [tmp_path], split=True)
    assert any(a.startswith("--seed=") and a != "--seed=random" for a in unset)  # a random UUID by default
    assert "--split=yes" in unset
    assert not any(a.startswith("--sector-size") for a in unset)


def test_bad_seed_names_file_and_line(tmp_path):
    with pytest.raises(KosiError) as failure:
        loaded_context(tmp_path, "[Output]\nFormat=disk\nSeed=nope\n")
    assert "Seed=" in str(failure.value) and "UUID" in str(failure.value)
    assert failure.value.file and failure.value.file.endswith("mkosi.conf") and failure.value.line == 3


def test_full_partition_names_definition_and_setting(tmp_path):
    directory = tmp_path / "defs"
    directory.mkdir()
    (directory / "00-esp.conf").write_text("[Partition]\nType=esp\nFormat=vfat\n")
    (directory / "10-root.conf").write_text("[Partition]\nType=root\n")
    stderr = (
        "Copying in '/var/tmp/x' on block level into future partition 1.\n/var/tmp/x -> 10-root.conf 32M\n"
        "Formatting future partition 0.\nPreparing to populate vfat filesystem.\nDisk full\n"
        "(mcopy) failed with exit status 1.\n"
    )
    message = disk.explain_failure(stderr, [directory])
    assert "00-esp.conf" in message and "SizeMaxBytes=" in message and "\n" not in message


def partitions(image: Path) -> list[dict]:
    out = subprocess.run(["sfdisk", "--json", str(image)], stdout=subprocess.PIPE, check=True, text=True).stdout
    return json.loads(out)["partitiontable"]["partitions"]


@pytest.mark.image
def test_bootable_disk_image(bootable_disk_image: Path):
    table = partitions(bootable_disk_image)
    assert [p["type"] for p in table] == [ESP_TYPE, ROOT_X86_64_TYPE]
    assert table[0]["size"] * 512 == 512 * 1024 * 1024
    assert table[1]["size"] * 512 > 200 * 1024 * 1024
    esp = f"{bootable_disk_image}@@{table[0]['start'] * 512}"
    listing = subprocess.run(
        ["mdir", "-b", "-s", "-i", esp, "::"], stdout=subprocess.PIPE, text=True, check=True
    ).stdout.lower()
    assert "::/efi/boot/bootx64.efi" in listing
    assert "::/efi/systemd/systemd-bootx64.efi" in listing
    assert "::/loader/loader.conf" in listing
    ukis = [line for line in listing.splitlines() if line.startswith("::/efi/linux/") and line.endswith(".efi")]
    assert len(ukis) == 1, listing


@pytest.mark.image
def test_split_artifacts(bootable_disk_project: Path):
    out = bootable_disk_project / "mkosi.output"
    for name in (
        "image.efi",
        "image.vmlinuz",
        "image.initrd",
        "image.kernel-modules-initrd",
        "image.osrelease",
        "image.esp.raw",
        "image.root-x86-64.raw",
    ):
        assert (out / name).is_file(), name
    assert sorted(p.name for p in (out / "image.repart.d").iterdir()) == ["00-esp.conf", "10-root.conf"]
    assert "ID=debian" in (out / "image.osrelease").read_text()
    # the UKI is a PE file with the kernel, and the modules initrd has the virtio disk driver and depmod's index
    assert (out / "image.efi").read_bytes()[:2] == b"MZ"
    listing = subprocess.run(
        ["sh", "-c", f"zstd -dc {out / 'image.kernel-modules-initrd'} | cpio -t --quiet"],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    ).stdout
    assert "virtio_blk.ko" in listing and "/modules.dep" in listing
    initrd = subprocess.run(
        ["sh", "-c", f"zstd -dc {out / 'image.initrd'} | cpio -t --quiet"],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    ).stdout.split()
    initrd = {name.removeprefix("./") for name in initrd}
    assert "init" in initrd and "etc/initrd-release" in initrd and "usr/lib/systemd/systemd" in initrd


@pytest.mark.image
def test_bios_grub_image(tmp_path_factory, kosi_build, bootable_config):
    directory = tmp_path_factory.mktemp("bios")
    conf = bootable_config.replace("Bootable=yes\n", "Bootable=yes\nBiosBootloader=grub\n")
    # SplitArtifacts= left at its default (uki,kernel,initrd as mkosi 27.1), with Checksum=yes
    conf = conf.replace("SplitArtifacts=", "#SplitArtifacts=").replace(
        "[Content]", "[Validation]\nChecksum=yes\n\n[Content]"
    )
    (directory / "mkosi.conf").write_text(conf)
    (directory / "mkosi.output").mkdir()
    result = kosi_build(directory)
    assert result.returncode == 0, result.stdout[-3000:]
    image = directory / "mkosi.output/image.raw"
    out = directory / "mkosi.output"
    assert sorted(p.name for p in out.iterdir()) == [
        "image",
        "image.SHA256SUMS",
        "image.efi",
        "image.initrd",
        "image.raw",
        "image.vmlinuz",
    ]
    assert os.readlink(out / "image") == "image.raw"
    sums = sorted(line.split(" *")[1] for line in (out / "image.SHA256SUMS").read_text().splitlines())
    assert sums == ["image.efi", "image.initrd", "image.raw", "image.vmlinuz"]
    table = partitions(image)
    assert [p["type"] for p in table] == [ESP_TYPE, BIOS_BOOT_TYPE, ROOT_X86_64_TYPE]
    with open(image, "rb") as f:
        assert b"GRUB" in f.read(512)  # grub's boot.img in the MBR boot code
        f.seek(table[1]["start"] * 512)
        assert f.read(512).strip(b"\0")  # core.img embedded in the BIOS boot partition
    esp = f"{image}@@{table[0]['start'] * 512}"
    config = subprocess.run(
        ["mtype", "-i", esp, "::/grub/grub.cfg"], stdout=subprocess.PIPE, text=True, check=True
    ).stdout
    assert "linux /" in config and "initrd /" in config
    listing = subprocess.run(["mdir", "-b", "-s", "-i", esp, "::"], stdout=subprocess.PIPE, text=True).stdout.lower()
    assert "::/grub/i386-pc/normal.mod" in listing and "::/efi/boot/bootx64.efi" in listing


@pytest.mark.image
def test_full_esp_is_one_line_naming_the_partition(tmp_path, default_tools_tree):
    """A real repart failure (ESP content larger than the ESP) becomes one actionable line."""
    definitions = tmp_path / "mkosi.repart"
    definitions.mkdir()
    ctx = context(tmp_path, Bootable=Feature.enabled, RepartDirectories=[definitions])
    ctx.tools = default_tools_tree
    (ctx.root / "boot").mkdir(parents=True)
    (ctx.root / "boot/big").write_bytes(b"\1" * (3 * 1024 * 1024))
    (ctx.root / "usr").mkdir()
    (definitions / "00-esp.conf").write_text(
        "[Partition]\nType=esp\nFormat=vfat\nCopyFiles=/boot:/\nSizeMinBytes=2M\nSizeMaxBytes=2M\n"
    )
    (definitions / "10-root.conf").write_text("[Partition]\nType=root\nFormat=ext4\nCopyFiles=/usr\nMinimize=guess\n")
    ctx.staging.mkdir(parents=True)
    with pytest.raises(KosiError) as failure:
        disk.run_repart(ctx, ctx.staging / "image.raw")
    message = str(failure.value)
    assert "00-esp.conf" in message and "SizeMaxBytes=" in message and "\n" not in message


@pytest.mark.image
def test_uki_output(tmp_path_factory, kosi_build):
    """Format=uki: the UKI itself is the output, with kernel, initrd and os-release sections."""
    directory = tmp_path_factory.mktemp("uki")
    (directory / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=debian\nRelease=trixie\n\n[Output]\nFormat=uki\nCompressOutput=no\n\n"
        "[Content]\nPackages=systemd\n         udev\n         linux-image-amd64\n"
        "KernelCommandLine=quiet\n"
    )
    (directory / "mkosi.output").mkdir()
    result = kosi_build(directory)
    assert result.returncode == 0, result.stdout[-3000:]
    uki = (directory / "mkosi.output/image.efi").read_bytes()
    assert uki[:2] == b"MZ"
    for section in (b".linux", b".initrd", b".osrel", b".cmdline", b".uname"):
        assert section in uki[:4096], section
    assert b"console=ttyS0" in uki and b"quiet" in uki
