"""Command lines of the runtime verbs, built from hand-made Config objects (pure logic)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from kosi.config.cli_args import parse_command_line
from kosi.config.loader import load_project
from kosi.config.model import Config
from kosi.config.settings import SETTINGS_BY_NAME
from kosi.config.values import Origin
from kosi.errors import KosiError
from kosi.run import credentials, drives, firmware, kernel, nspawn, qemu, registration, vsock
from kosi.run.kvm import KvmVerdict
from kosi.verbs import genkey

NO_KVM = KvmVerdict(False, False, "KVM cannot run guests here (emulation failure)")
GOOD_KVM = KvmVerdict(True, True, "")


def make_config(tmp_path: Path, **values) -> Config:
    """A Config whose values are what the loader would store: each text is parsed by the
    setting's own type from the table (paths relative to tmp_path)."""
    texts = {"Format": "disk", "Output": "image", "OutputDirectory": str(tmp_path), "ToolsTree": "no", **values}
    origin = Origin(file="test.conf", line=1, directory=tmp_path)
    parsed = {name: SETTINGS_BY_NAME[name].type.parse(name, text, origin) for name, text in texts.items()}
    return Config(parsed, directory=tmp_path)


def gpt_image(path: Path, *, esp: bool) -> Path:
    """A small GPT disk made with sfdisk, with or without an ESP."""
    with path.open("wb") as f:
        f.truncate(8 * 1024 * 1024)
    kind = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" if esp else "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
    subprocess.run(
        ["sfdisk", "-q", str(path)], input=f"label: gpt\nstart=2048, size=4096, type={kind}\n", text=True, check=True
    )
    return path


def arg_after(cmd: list[str], flag: str) -> list[str]:
    return [cmd[i + 1] for i, word in enumerate(cmd[:-1]) if word == flag]


# --- qemu ---------------------------------------------------------------------------------------


def test_qemu_without_kvm_uses_tcg_and_plain_uefi_with_one_reason(tmp_path):
    image = gpt_image(tmp_path / "image.raw", esp=True)
    config = make_config(
        tmp_path,
        CPUs="3",
        RAM="1G",
        Credentials="kosi.hello=world,again",
        KernelCommandLineExtra="quiet x=1",
        QemuArgs="-device virtio-balloon",
    )
    plan = qemu.qemu_command(config, image, qemu.HostFacts(NO_KVM), tmp_path, arguments=["-snapshot"])
    cmd = plan.cmd
    assert plan.accel == "tcg" and plan.firmware.kind == "uefi"
    assert arg_after(cmd, "-accel") == ["tcg"] and arg_after(cmd, "-cpu") == ["max"]
    assert arg_after(cmd, "-machine") == ["q35,smm=off"]
    assert arg_after(cmd, "-smp") == ["3"] and arg_after(cmd, "-m") == ["1024M"]
    assert any("emulation failure" in note for note in plan.notes)
    pflash = arg_after(cmd, "-drive")
    assert any("OVMF_CODE_4M.fd" in d and "readonly=on" in d for d in pflash)
    assert (tmp_path / "ovmf_vars.fd").exists()  # a copy, never the template itself
    smbios = arg_after(cmd, "-smbios")
    assert "type=11,value=io.systemd.credential:kosi.hello=world,,again" in smbios  # comma doubled
    assert any("io.systemd.credential:firstboot.locale=C.UTF-8" in s for s in smbios)
    extra = [s for s in smbios if "kernel-cmdline-extra" in s]
    assert extra and extra[0].endswith("console=ttyS0 systemd.firstboot=no quiet x=1")
    assert cmd[-3:] == ["-device", "virtio-balloon", "-snapshot"]  # QemuArgs=, then the words after --
    assert any(f"file={image}" in d for d in pflash)


def test_qemu_auto_firmware_with_working_kvm_is_secure_boot(tmp_path):
    image = gpt_image(tmp_path / "image.raw", esp=True)
    plan = qemu.qemu_command(make_config(tmp_path), image, qemu.HostFacts(GOOD_KVM), tmp_path)
    assert plan.accel == "kvm" and plan.firmware.kind == "uefi-secure-boot"
    assert arg_after(plan.cmd, "-machine") == ["q35,smm=on"]
    assert any("secboot" in d for d in arg_after(plan.cmd, "-drive"))
    assert "driver=cfi.pflash01,property=secure,value=on" in arg_after(plan.cmd, "-global")
    assert plan.notes == []


def test_qemu_secure_boot_refused_when_kvm_lacks_smm(tmp_path):
    image = gpt_image(tmp_path / "image.raw", esp=True)
    config = make_config(tmp_path, Firmware="uefi-secure-boot", KVM="yes")
    with pytest.raises(KosiError, match="System Management Mode"):
        qemu.qemu_command(config, image, qemu.HostFacts(KvmVerdict(True, False, "no SMM")), tmp_path)


def test_qemu_auto_firmware_without_esp_boots_the_kernel_directly(tmp_path):
    image = gpt_image(tmp_path / "image.raw", esp=False)
    boot = kernel.DirectBoot(tmp_path / "vmlinuz", tmp_path / "initrd", ["root=LABEL=root", "rw"])
    config = make_config(tmp_path, KernelCommandLineExtra="kosi.stay", Console="read-only")
    plan = qemu.qemu_command(config, image, qemu.HostFacts(NO_KVM), tmp_path, direct_boot=boot)
    assert plan.firmware.kind == "linux"
    assert arg_after(plan.cmd, "-kernel") == [str(tmp_path / "vmlinuz")]
    assert arg_after(plan.cmd, "-initrd") == [str(tmp_path / "initrd")]
    assert arg_after(plan.cmd, "-append") == ["root=LABEL=root rw console=ttyS0 systemd.firstboot=no kosi.stay"]
    assert not any("kernel-cmdline-extra" in s for s in arg_after(plan.cmd, "-smbios"))

    # Without root= in the UKI's command line, the root partition is named: no EFI variable
    # tells gpt-auto which disk we booted from.
    bare = kernel.DirectBoot(tmp_path / "vmlinuz", None, ["rw"])
    partuuid = json.loads(
        subprocess.run(["sfdisk", "--json", str(image)], stdout=subprocess.PIPE, text=True, check=True).stdout
    )["partitiontable"]["partitions"][0]["uuid"].lower()
    named = qemu.qemu_command(config, image, qemu.HostFacts(NO_KVM), tmp_path, direct_boot=bare)
    assert arg_after(named.cmd, "-append")[0].startswith(f"rw root=PARTUUID={partuuid} console=ttyS0")

    noinitrd = qemu.qemu_command(
        make_config(tmp_path, Firmware="linux-noinitrd"), image, qemu.HostFacts(NO_KVM), tmp_path, direct_boot=boot
    )
    assert "-initrd" not in noinitrd.cmd


def test_qemu_bios_removable_memory_network_vsock(tmp_path):
    image = gpt_image(tmp_path / "image.raw", esp=False)
    config = make_config(
        tmp_path, Firmware="bios", Removable="yes", RAM="512M", MaxMem="2G", RuntimeNetwork="none", KVM="no"
    )
    plan = qemu.qemu_command(config, image, qemu.HostFacts(GOOD_KVM, vsock_cid=42), tmp_path)
    assert plan.accel == "tcg" and "-kernel" not in plan.cmd and "if=pflash" not in " ".join(plan.cmd)
    assert "usb-storage,drive=root,removable=on,bootindex=1" in arg_after(plan.cmd, "-device")
    assert "vhost-vsock-pci,guest-cid=42" in arg_after(plan.cmd, "-device")
    assert arg_after(plan.cmd, "-m") == ["512M,slots=2,maxmem=2048M"]
    assert arg_after(plan.cmd, "-nic") == ["none"]

    forwarded = qemu.qemu_command(
        make_config(tmp_path, Firmware="bios"), image, qemu.HostFacts(NO_KVM, ssh_port=2222), tmp_path
    )
    assert arg_after(forwarded.cmd, "-nic") == ["user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:2222-:22"]
    # Without vsock the guest needs an address for the forwarded port: networkd gets one as a credential.
    smbios = arg_after(forwarded.cmd, "-smbios")
    assert any(
        s.startswith("type=11,value=io.systemd.credential.binary:network.network.99-kosi-user-networking=")
        for s in smbios
    )
    assert any("systemd.wants=systemd-networkd.service" in s for s in smbios)
    assert not any("network.network" in s for s in arg_after(plan.cmd, "-smbios"))


def test_qemu_linux_setting_with_delayed_build_directory(tmp_path):
    """Linux=&b/... names a kernel in the final build directory (BuildDirectory=/BuildKey=)."""
    image = gpt_image(tmp_path / "image.raw", esp=True)
    (tmp_path / "build").mkdir()
    config = make_config(
        tmp_path,
        Firmware="uefi",
        Linux="&b/vmlinuz",
        BuildDirectory="build",
        BuildKey="k&&&d",
        Distribution="debian",
        KVM="no",
    )
    plan = qemu.qemu_command(config, image, qemu.HostFacts(NO_KVM), tmp_path)
    assert arg_after(plan.cmd, "-kernel") == [f"{tmp_path}/build/k&debian/vmlinuz"]
    with pytest.raises(KosiError, match="BuildDirectory="):
        qemu.linux_kernel(make_config(tmp_path, Linux="&b/vmlinuz"))
    assert qemu.linux_kernel(make_config(tmp_path)) is None


def test_firmware_descriptors_pick_code_and_variables():
    plain = firmware.find_uefi_firmware(secure_boot=False)
    secure = firmware.find_uefi_firmware(secure_boot=True)
    assert plain.code.name == "OVMF_CODE_4M.fd" and not plain.requires_smm
    assert "secboot" in secure.code.name and secure.requires_smm  # not the MS-enrolled one
    assert plain.variables and plain.variables.exists()
    with pytest.raises(KosiError, match="no UEFI firmware"):
        firmware.find_uefi_firmware(secure_boot=False, root=Path("/nonexistent"))


# --- credentials ----------------------------------------------------------------------------------


def test_credentials_from_settings_directory_and_scripts(tmp_path):
    local = tmp_path / "mkosi.credentials"
    local.mkdir()
    (local / "from.dir").write_text("dir value\n")
    script = tmp_path / "generated"
    script.write_text("#!/bin/sh\necho generated-$((6*7))\n")
    script.chmod(0o755)
    config = make_config(tmp_path, Credentials=f"a=1 {script} from.dir=overridden")
    creds = credentials.runtime_credentials(config)
    assert creds["a"] == b"1"
    assert creds["generated"] == b"generated-42\n"
    assert creds["from.dir"] == b"overridden"
    assert creds["firstboot.locale"] == b"C.UTF-8" and creds["firstboot.timezone"]
    with pytest.raises(KosiError, match="Credentials="):  # checked when the configuration is read
        make_config(tmp_path, Credentials="no/such/file")


def test_credentials_transport_smbios_binary_and_fw_cfg(tmp_path):
    big = b"x" * (credentials.SMBIOS_LIMIT + 1)
    args = credentials.qemu_credential_args({"text": b"v", "multi": b"a\nb", "big": big}, tmp_path)
    assert args[:2] == ["-smbios", "type=11,value=io.systemd.credential:text=v"]
    assert args[3] == "type=11,value=io.systemd.credential.binary:multi=" + base64.b64encode(b"a\nb").decode()
    assert args[4:] == ["-fw_cfg", f"name=opt/io.systemd.credentials/big,file={tmp_path}/big"]
    assert (tmp_path / "big").read_bytes() == big

    loaded = credentials.nspawn_credential_args({"one": b"1\n2"}, tmp_path / "n")
    assert loaded == [f"--load-credential=one:{tmp_path}/n/one"] and (tmp_path / "n/one").read_bytes() == b"1\n2"


def test_ssh_certificate_becomes_authorized_key(tmp_path):
    genkey.generate(tmp_path, "kosi", 1, force=False)
    (tmp_path / "mkosi.conf").write_text("[Distribution]\nDistribution=debian\n")
    config = load_project(parse_command_line(["-C", str(tmp_path), "summary"])).main  # assigns mkosi.crt
    assert config.ssh_certificate == tmp_path / "mkosi.crt"
    creds = credentials.runtime_credentials(config)
    assert creds["ssh.authorized_keys.root"].startswith(b"ssh-rsa ")
    assert "ssh.authorized_keys.root" not in credentials.runtime_credentials(make_config(tmp_path))


# --- nspawn -----------------------------------------------------------------------------------------


def test_nspawn_shell_and_boot_command_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(registration, "machined_available", lambda: False)
    monkeypatch.setattr(registration, "systemd_is_init", lambda: False)
    root = tmp_path / "image"
    root.mkdir()
    src = tmp_path / "src"
    src.mkdir()
    config = make_config(
        tmp_path,
        Format="directory",
        RuntimeTrees=f"{src},{src}:/srv/x,src:rel",
        RuntimeNetwork="interface",
        Machine="my box!",
        UnitProperties="CPUQuota=50%",
        KernelCommandLineExtra="systemd.unit=rescue.target",
        Credentials="k=v",
    )
    shell = nspawn.nspawn_command(
        config,
        root,
        boot=False,
        arguments=["--bind=/tmp", "cat", "/etc/os-release"],
        credential_dir=tmp_path / "c",
        ephemeral=True,
        interactive=False,
    )
    assert shell[:4] == ["systemd-nspawn", "--machine=my-box", "--directory", str(root)]
    assert "--register=no" in shell and "--keep-unit" in shell  # no systemd as init here
    assert "--ephemeral" in shell and "--console=autopipe" in shell and "--boot" not in shell
    assert f"--bind={src}:/root/src" in shell and f"--bind={src}:/srv/x" in shell
    assert f"--bind={src}:/root/src/rel" in shell
    assert "--network-veth" in shell and "--property=CPUQuota=50%" in shell
    assert f"--load-credential=k:{tmp_path}/c/k" in shell
    assert shell[-3:] == ["--bind=/tmp", "cat", "/etc/os-release"]  # nspawn options, then the command

    boot = nspawn.nspawn_command(
        config, root, boot=True, arguments=["quiet"], credential_dir=tmp_path / "c", ephemeral=False
    )
    assert "--boot" in boot and "--ephemeral" not in boot
    assert boot[-2:] == ["quiet", "systemd.unit=rescue.target"]  # KernelCommandLineExtra= go to init

    disk = tmp_path / "disk.raw"
    disk.write_bytes(b"")
    assert nspawn.nspawn_command(
        make_config(tmp_path, RuntimeNetwork="none"),
        disk,
        boot=True,
        arguments=[],
        credential_dir=tmp_path / "c",
        ephemeral=False,
    )[2:4] == ["--image", str(disk)]


def test_register_yes_without_machined_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(registration, "machined_available", lambda: False)
    with pytest.raises(KosiError, match="Register=yes"):
        registration.registration_args(make_config(tmp_path, Register="yes"), "nspawn")
    monkeypatch.setattr(registration, "machined_available", lambda: True)
    assert registration.registration_args(make_config(tmp_path), "nspawn") == ["--register=yes"]


# --- drives, vsock, kernel --------------------------------------------------------------------------


def test_drives_files_shared_persistent_and_removed(tmp_path):
    values = [f"a:1M:{tmp_path}", f"b:2M:{tmp_path}::a", f"p:1K:{tmp_path}:cache.direct=on::persist"]
    config = make_config(tmp_path, Drives=" ".join(values))
    with drives.drive_args(config.drives, "vm1") as args:
        specs = arg_after(args, "-blockdev")
        shared = tmp_path / "mkosi-drive-vm1-a"
        assert shared.stat().st_size == 1024**2  # the first drive with a file ID decides its size
        assert specs[1].startswith("driver=raw,node-name=b,") and f"file.filename={shared}" in specs[1]
        assert specs[2].endswith(",cache.direct=on")
    assert not shared.exists() and (tmp_path / "mkosi-drive-vm1-p").exists()


def test_vsock_cid_choice_and_runtime_file(tmp_path):
    image = tmp_path / "image.raw"
    cid = vsock.choose_cid("hash", image)
    assert cid == vsock.choose_cid("hash", image) and 3 <= cid < 0xFFFFFFFF
    assert vsock.choose_cid(make_config(tmp_path, VSockCID="016").vsock_cid, image) == 16
    vsock.write_runtime(image, vsock.RuntimeInfo("m", os.getpid(), None, 2222))
    assert vsock.read_runtime(image).ssh_port == 2222
    dead = subprocess.Popen(["true"])
    dead.wait()
    vsock.write_runtime(image, vsock.RuntimeInfo("m", dead.pid, 5, None))
    assert vsock.read_runtime(image) is None  # a VM that is gone is not connectable


def fake_uki(path: Path) -> Path:
    """A minimal PE file with .linux/.initrd/.cmdline sections, laid out like a UKI."""
    sections = {".linux": b"KERNEL", ".initrd": b"INITRD", ".cmdline": b"root=LABEL=r rw\0"}
    header = bytearray(0x200)
    header[:2] = b"MZ"
    struct.pack_into("<I", header, 0x3C, 0x40)
    header[0x40:0x44] = b"PE\0\0"
    struct.pack_into("<HH", header, 0x44, 0x8664, len(sections))
    struct.pack_into("<H", header, 0x40 + 20, 0)  # no optional header
    offset, body = 0x200, b""
    for index, (name, data) in enumerate(sections.items()):
        entry = 0x40 + 24 + index * 40
        header[entry : entry + 8] = name.encode().ljust(8, b"\0")
        struct.pack_into("<IIII", header, entry + 8, len(data), 0, len(data), offset + len(body))
        body += data
    path.write_bytes(bytes(header) + body)
    return path


def test_direct_boot_from_uki_and_split_artifacts(tmp_path):
    uki = fake_uki(tmp_path / "image.efi")
    boot = kernel.find_direct_boot(None, {"efi": uki}, tmp_path / "image.raw", tmp_path / "k")
    assert boot.kernel.read_bytes() == b"KERNEL" and boot.initrd.read_bytes() == b"INITRD"
    assert boot.cmdline == ["root=LABEL=r", "rw"]
    (tmp_path / "image.vmlinuz").write_bytes(b"K2")
    (tmp_path / "image.initrd").write_bytes(b"I1")
    (tmp_path / "image.kernel-modules-initrd").write_bytes(b"I2")
    artifacts = {
        "vmlinuz": tmp_path / "image.vmlinuz",
        "initrd": tmp_path / "image.initrd",
        "kernel-modules-initrd": tmp_path / "image.kernel-modules-initrd",
    }
    split = kernel.find_direct_boot(None, artifacts, tmp_path / "x", tmp_path / "s")
    # image.initrd already holds the kernel modules initrd: it is not appended a second time
    assert split.kernel == tmp_path / "image.vmlinuz" and split.initrd.read_bytes() == b"I1"
    assert (
        kernel.find_direct_boot(None, {**artifacts, "efi": uki}, tmp_path / "x", tmp_path / "u").kernel.read_bytes()
        == b"KERNEL"
    )
    with pytest.raises(KosiError, match="no kernel found"):
        kernel.find_direct_boot(None, {}, gpt_image(tmp_path / "plain.raw", esp=False), tmp_path / "k2")


def test_firmware_paths_seen_from_inside_the_tools_tree(tmp_path):
    """With a tools tree qemu sees the tree's /usr as /usr: the code file is named by that path,
    while the variables template is copied from the tree on the host."""
    tree = tmp_path / "tools"
    (tree / "usr/share/qemu").mkdir(parents=True)
    shutil.copytree("/usr/share/qemu/firmware", tree / "usr/share/qemu/firmware")
    shutil.copytree("/usr/share/OVMF", tree / "usr/share/OVMF")
    image = gpt_image(tmp_path / "image.raw", esp=True)
    plan = qemu.qemu_command(make_config(tmp_path), image, qemu.HostFacts(NO_KVM, tools_root=tree), tmp_path)
    assert "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd" in arg_after(plan.cmd, "-drive")
    assert (tmp_path / "ovmf_vars.fd").read_bytes() == (tree / "usr/share/OVMF/OVMF_VARS_4M.fd").read_bytes()
