"""`kosi vm` with the host's services: RuntimeTrees=/BindUser=/RuntimeBuildSources= through
virtiofsd, ForwardJournal= through systemd-journal-remote, the guest's exit status; and
credentials that must reach the guest byte for byte.

The pure parts (command lines, credentials) are tested from hand-made Configs; one real boot
of the shared VM image proves a runtime tree is mounted in the guest and its journal arrives
on the host.
"""

from __future__ import annotations

import base64
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from kosi.errors import KosiError
from kosi.run import credentials, firmware, journal_forward, notify, qemu, virtiofs
from kosi.run.toolsenv import runtime_prefix
from kosi.tools.tree import location
from kosi.verbs import genkey
from tests.run.test_commands import NO_KVM, arg_after, gpt_image, make_config
from tests.run.vm_support import boot_vm, needs_root

# --- virtiofs -------------------------------------------------------------------------------------


def test_runtime_trees_become_tagged_shares_and_fstab_lines(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "src").mkdir()
    config = make_config(tmp_path, RuntimeTrees=f"{tmp_path}/a:/mnt/x {tmp_path}/src:rel {tmp_path}/src")
    shares = virtiofs.runtime_shares(config)
    assert [(s.source, s.target, s.tag) for s in shares] == [
        (tmp_path / "a", "/mnt/x", "kosi-0"),
        (tmp_path / "src", "/root/src/rel", "kosi-1"),
        (tmp_path / "src", "/root/src", "kosi-2"),
    ]
    assert virtiofs.fstab_extra(shares[:1]) == b"kosi-0 /mnt/x virtiofs defaults 0 0\n"
    assert virtiofs.fstab_escape("/mnt/a b") == "/mnt/a\\040b"


def test_bind_user_and_build_sources_shares(tmp_path):
    home = tmp_path / "home/alice"
    home.mkdir(parents=True)
    (tmp_path / "build").mkdir()
    user = virtiofs.BoundUser("alice", 1234, 1300, home)
    config = make_config(tmp_path, BindUser="yes", RuntimeBuildSources="yes", BuildDirectory=str(tmp_path / "build"))
    shares = virtiofs.runtime_shares(config, user)
    assert [(s.source, s.target, s.why) for s in shares] == [
        (home, str(home), "BindUser"),
        (tmp_path, "/work/src", "RuntimeBuildSources"),
        (tmp_path / "build", "/work/build", "RuntimeBuildSources"),
    ]
    assert virtiofs.sysusers_extra(user) == f'g alice 1300\nu alice 1234:1300 "alice" {home} /bin/sh\n'.encode()
    (tmp_path / "file").write_text("")
    with pytest.raises(KosiError, match="RuntimeTrees=.*not a directory"):
        virtiofs.runtime_shares(make_config(tmp_path, RuntimeTrees=f"{tmp_path}/file:/x"))
    missing = make_config(tmp_path, RuntimeTrees=f"{tmp_path}/gone:/x")  # read without looking, as mkosi
    with pytest.raises(KosiError, match="RuntimeTrees=.*gone: no such file or directory"):
        virtiofs.runtime_shares(missing)


def test_virtiofsd_is_sandboxed_and_qemu_gets_shared_memory_and_devices(tmp_path):
    share = virtiofs.Share(tmp_path, "/mnt/kosi-rt", "kosi-0", "RuntimeTrees")
    cmd = virtiofs.virtiofsd_command(share, 5)
    assert cmd[0] == "/usr/libexec/virtiofsd" and "--fd=5" in cmd and f"--shared-dir={tmp_path}" in cmd
    assert "--sandbox=namespace" in cmd and "--seccomp=kill" in cmd

    image = gpt_image(tmp_path / "image.raw", esp=True)
    user = virtiofs.BoundUser("alice", 1234, 1300, Path("/home/alice"))
    facts = qemu.HostFacts(
        NO_KVM, shares=[(share, tmp_path / "kosi-0.sock")], bound_user=user, journal_address="10.0.2.2:4711"
    )
    config = make_config(tmp_path, RAM="1G", Credentials="fstab.extra=mine")
    cmd = qemu.qemu_command(config, image, facts, tmp_path).cmd
    assert arg_after(cmd, "-object") == ["memory-backend-memfd,id=mem,size=1024M,share=on"]
    assert arg_after(cmd, "-numa") == ["node,memdev=mem"] and arg_after(cmd, "-m") == ["1024M"]
    assert f"socket,id=kosi-0-sock,path={tmp_path}/kosi-0.sock" in arg_after(cmd, "-chardev")
    assert "vhost-user-fs-pci,queue-size=1024,chardev=kosi-0-sock,tag=kosi-0" in arg_after(cmd, "-device")
    creds = smbios_credentials(cmd)
    assert creds["fstab.extra"] == b"kosi-0 /mnt/kosi-rt virtiofs defaults 0 0\nmine"  # ours, then the user's
    assert creds["sysusers.extra"].startswith(b"g alice 1300\n")
    assert creds["journal.forward_to_socket"] == b"10.0.2.2:4711"
    assert "vmm.notify_socket" not in creds  # no vsock: nothing to send the exit status to
    cmdline = [value for value in arg_after(cmd, "-smbios") if "kernel-cmdline-extra" in value]
    assert "rd.systemd.mask=systemd-networkd.service" in cmdline[0]  # over TCP: no network in the initrd

    plain = qemu.qemu_command(make_config(tmp_path), image, qemu.HostFacts(NO_KVM), tmp_path).cmd
    assert "-numa" not in plain and "fstab.extra" not in smbios_credentials(plain)


def smbios_credentials(cmd: list[str]) -> dict[str, bytes]:
    result = {}
    for value in arg_after(cmd, "-smbios"):
        text = value.removeprefix("type=11,value=").replace(",,", ",")
        if text.startswith("io.systemd.credential.binary:"):
            name, _, data = text.removeprefix("io.systemd.credential.binary:").partition("=")
            result[name] = base64.b64decode(data)
        elif text.startswith("io.systemd.credential:"):
            name, _, data = text.removeprefix("io.systemd.credential:").partition("=")
            result[name] = data.encode()
    return result


# --- ForwardJournal= and the exit status --------------------------------------------------------


def test_journal_forwarding_over_tcp_or_vsock(tmp_path):
    tcp = journal_forward.plan_forwarding(vsock=False, user_networking=True, port=4711)
    assert (tcp.listen, tcp.guest_address) == ("127.0.0.1:4711", "10.0.2.2:4711")
    vsock = journal_forward.plan_forwarding(vsock=True, user_networking=True, port=4711)
    assert (vsock.listen, vsock.guest_address) == ("vsock::4711", "vsock:2:4711")
    with pytest.raises(KosiError, match="RuntimeNetwork=user"):
        journal_forward.plan_forwarding(vsock=False, user_networking=False, port=1)
    assert journal_forward.journal_remote_command(tcp, tmp_path / "vm.journal") == [
        "/usr/lib/systemd/systemd-journal-remote",
        "--listen-raw=127.0.0.1:4711",
        f"--output={tmp_path}/vm.journal",
        "--split-mode=none",
    ]
    assert journal_forward.output_options(tmp_path / "logs") == [f"--output={tmp_path}/logs", "--split-mode=host"]


def test_notify_messages_give_the_exit_status():
    messages = notify.parse_messages(b"READY=1\nSTATUS=going down\nEXIT_STATUS=3\n")
    assert messages["STATUS"] == "going down" and notify.exit_status(messages) == 3
    assert notify.exit_status(notify.parse_messages(b"READY=1")) is None


def test_notify_listener_collects_messages_per_connection(tmp_path):
    """The listener's loop for real, on an AF_UNIX stream socket (this host has no vsock
    transport; only the socket's family differs)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp_path / "notify"))
    server.listen(4)
    with notify.serving(server) as listener:
        for message in (b"READY=1\n", b"STATUS=bye\nEXIT_STATUS=5"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(str(tmp_path / "notify"))
                client.sendall(message)
        deadline = time.monotonic() + 5
        while "EXIT_STATUS" not in listener.messages and time.monotonic() < deadline:
            time.sleep(0.05)
        assert notify.exit_status(listener.messages) == 5 and listener.messages["READY"] == "1"


# --- credentials and firmware variables ------------------------------------------------------------


def test_binary_credential_files_arrive_byte_for_byte(tmp_path):
    blob = bytes(range(256)) + b"\xff\xfe\n\x00end"
    (tmp_path / "blob.bin").write_bytes(blob)
    local = tmp_path / "mkosi.credentials"
    local.mkdir()
    (local / "local.bin").write_bytes(blob[::-1])
    script = local / "made"
    script.write_bytes(b"#!/bin/sh\nprintf '\\377\\000x'\n")
    script.chmod(0o755)
    config = make_config(tmp_path, Credentials=f"{tmp_path}/blob.bin")
    creds = credentials.runtime_credentials(config)
    assert creds["blob.bin"] == blob
    assert creds["local.bin"] == blob[::-1] and creds["made"] == b"\xff\x00x"
    # and over SMBIOS to the guest
    image = gpt_image(tmp_path / "image.raw", esp=True)
    sent = smbios_credentials(qemu.qemu_command(config, image, qemu.HostFacts(NO_KVM), tmp_path).cmd)
    assert sent["blob.bin"] == blob and sent["made"] == b"\xff\x00x"


def test_firmware_variables_words(tmp_path):
    default = firmware.UefiFirmware(Path("/c.fd"), Path("/vars.fd"), False, False, "test")
    cert = tmp_path / "mkosi.crt"
    cert.write_text("CERT")
    assert firmware.variables_plan(None, default, Path("/"), None) == (Path("/vars.fd"), [])
    with pytest.raises(KosiError, match="FirmwareVariables=.*mine.fd: no such file"):  # read without looking
        firmware.variables_plan(tmp_path / "mine.fd", default, Path("/"), None)
    (tmp_path / "mine.fd").write_bytes(b"VARS")
    assert firmware.variables_plan(tmp_path / "mine.fd", default, Path("/"), None) == (tmp_path / "mine.fd", [])
    assert firmware.variables_plan("microsoft", default, Path("/t"), None) == (
        Path("/t/usr/share/OVMF/OVMF_VARS_4M.ms.fd"),
        [],
    )
    template, options = firmware.variables_plan("custom", default, Path("/"), cert)
    assert template == Path("/vars.fd") and options[:2] == ["--enroll-cert", str(cert)] and "--no-microsoft" in options
    template, options = firmware.variables_plan("microsoft-mok", default, Path("/"), cert)
    assert template.name == "OVMF_VARS_4M.ms.fd" and options == ["--add-mok", firmware.KOSI_OWNER_GUID, str(cert)]
    with pytest.raises(KosiError, match="FirmwareVariables=custom.*SecureBootCertificate="):
        firmware.variables_plan("custom", default, Path("/"), None)


def test_firmware_variables_custom_runs_virt_fw_vars_or_says_it_is_missing(tmp_path):
    cert = tmp_path / "mkosi.crt"
    genkey.generate(tmp_path, "kosi-sb", 1, force=False)  # writes `cert`
    image = gpt_image(tmp_path / "image.raw", esp=True)
    config = make_config(tmp_path, FirmwareVariables="custom", SecureBootCertificate=str(cert))
    if shutil.which("virt-fw-vars") is None:
        with pytest.raises(KosiError, match="needs virt-fw-vars"):
            qemu.qemu_command(config, image, qemu.HostFacts(NO_KVM), tmp_path)
        return
    qemu.qemu_command(config, image, qemu.HostFacts(NO_KVM), tmp_path)
    printed = subprocess.run(
        ["virt-fw-vars", "-i", str(tmp_path / "ovmf_vars.fd"), "-p"], capture_output=True, text=True
    )
    assert "PK " in printed.stdout and "db " in printed.stdout


# --- for real -------------------------------------------------------------------------------------

RUNTIME_CHECK_UNIT = """\
[Unit]
Description=kosi runtime tree check
After=multi-user.target
RequiresMountsFor=/mnt/kosi-rt

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo KOSI-RT "$$(cat /mnt/kosi-rt/hello.txt)" >/dev/ttyS0'
ExecStart=/bin/sh -c 'echo KOSI-JOURNAL-MARKER-7731 from the guest'
"""
# With BindUser=: the user exists in the guest with the host's IDs and owns the shared home.
BIND_USER_CHECK = """\
ExecStart=/bin/sh -c 'echo KOSI-USER "$$(stat -c %%U:%%u {home})" "$$(getent passwd {name})" >/dev/ttyS0'
"""


def host_user_with_home() -> pwd.struct_passwd | None:
    """A non-root user of this host whose home directory exists, for BindUser= (root's home is
    never shared)."""
    for entry in pwd.getpwall():
        if 1000 <= entry.pw_uid < 60000 and Path(entry.pw_dir).is_dir() and entry.pw_dir != "/":
            return entry
    return None


@needs_root
@pytest.mark.vm
def test_vm_mounts_runtime_tree_binds_user_and_forwards_its_journal(vm_project, tmp_path, monkeypatch):
    """One boot: the runtime tree is mounted through virtiofsd at /mnt/kosi-rt, a unit prints a
    file of it to the serial console (and, where the host has a non-root user, that user's
    shared home and guest account: BindUser= for the user behind sudo), and the guest's
    journal (with the unit's output) lands in the ForwardJournal= file on the host."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "hello.txt").write_text("runtime-tree-content-4242\n")
    extra = tmp_path / "credentials"
    extra.mkdir()
    unit = RUNTIME_CHECK_UNIT
    options = ["--firmware=linux", f"--runtime-tree={tree}:/mnt/kosi-rt"]
    user = host_user_with_home()
    if user is not None:
        monkeypatch.setenv("SUDO_USER", user.pw_name)
        unit = unit.replace("/mnt/kosi-rt\n", f"/mnt/kosi-rt {user.pw_dir}\n") + BIND_USER_CHECK.format(
            home=user.pw_dir, name=user.pw_name
        )
        options.append("--bind-user=yes")
    (extra / "systemd.extra-unit.kosi-rt-check.service").write_text(unit)
    # Before the marker unit, whose poweroff would otherwise race with this check.
    (extra / "systemd.unit-dropin.kosi-test-marker.service").write_text(
        "[Unit]\nWants=kosi-rt-check.service\nAfter=kosi-rt-check.service\n"
    )
    journal = tmp_path / "forwarded/vm.journal"
    status, output, elapsed = boot_vm(vm_project, *options, f"--forward-journal={journal}", f"--credential={extra}")
    assert "KOSI-RT runtime-tree-content-4242" in output, output[-3000:]
    assert "KOSI-BOOT-OK via-smbios" in output and status == 0
    if user is not None:
        owner = f"KOSI-USER {user.pw_name}:{user.pw_uid} {user.pw_name}:x:{user.pw_uid}:{user.pw_gid}:"
        assert owner in output, output[-3000:]
    # A stalled journald (its forwarding connection hanging) shows as a timed out flush.
    assert "Failed to start systemd-journal-flush" not in output
    # The tools tree's journalctl: the host's v252 may not read files written by v257.
    tools = location() / "debian-trixie"
    read = subprocess.run(
        [
            *runtime_prefix(tools if tools.is_dir() else None),
            "journalctl",
            f"--file={journal}",
            "--no-pager",
            "-o",
            "cat",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )
    assert "KOSI-JOURNAL-MARKER-7731 from the guest" in read.stdout, (read.stderr, read.stdout[-2000:])
    assert "kosi runtime tree check" in read.stdout  # systemd's own messages about the unit, too
    print(f"runtime tree + forwarded journal boot: {elapsed:.1f}s")
