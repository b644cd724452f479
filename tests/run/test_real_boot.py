"""shell, boot, vm and ssh for real: images built by kosi, booted in systemd-nspawn and qemu.

The marker proving a boot reached multi-user is a unit that prints KOSI-BOOT-OK on the
console; the container image ships it in mkosi.extra, the VM image receives it at run time
as credentials (systemd.extra-unit.*, systemd.unit-dropin.*), which also proves that
credentials reach the guest through SMBIOS.
"""

from __future__ import annotations

import os
import selectors
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from tests.run.vm_support import KOSI, MARKER_UNIT, POWEROFF, boot_vm, build, needs_root, stop_group, vm_command

CONTAINER_CONF = """\
[Distribution]
Distribution=debian
Release=trixie

[Output]
Format=directory

[Content]
Packages=systemd
         dbus
"""


@pytest.fixture(scope="session")
def container_project(tmp_path_factory) -> Path:
    if not shutil.which("systemd-nspawn"):
        pytest.skip("systemd-nspawn is not installed")
    directory = tmp_path_factory.mktemp("container")
    (directory / "mkosi.conf").write_text(CONTAINER_CONF)
    units = directory / "mkosi.extra/etc/systemd/system"
    (units / "multi-user.target.wants").mkdir(parents=True)
    (units / "kosi-marker.service").write_text(MARKER_UNIT + POWEROFF)
    (units / "multi-user.target.wants/kosi-marker.service").symlink_to("../kosi-marker.service")
    (directory / "mkosi.credentials").mkdir()
    (directory / "mkosi.credentials/kosi.marker").write_text("via-mkosi.credentials")
    build(directory)
    return directory


@needs_root
@pytest.mark.image
def test_shell_runs_the_command_and_returns_its_status(container_project):
    result = subprocess.run(
        [*KOSI, "-C", str(container_project), "shell", "--", "cat", "/etc/os-release"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "ID=debian" in result.stdout and "VERSION_CODENAME=trixie" in result.stdout
    status = subprocess.run(
        [*KOSI, "-C", str(container_project), "shell", "--", "sh", "-c", "exit 7"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=120,
    )
    assert status.returncode == 7


@needs_root
@pytest.mark.image
def test_boot_reaches_multi_user_with_credentials(container_project):
    started = time.monotonic()
    result = subprocess.run(
        [*KOSI, "-C", str(container_project), "boot"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert "KOSI-BOOT-OK via-mkosi.credentials" in result.stdout, result.stdout[-3000:]
    assert result.returncode == 0
    print(f"nspawn boot to marker and poweroff: {time.monotonic() - started:.1f}s")
    # The boot left its journal in the image: `kosi journalctl` reads it.
    journal = subprocess.run(
        [*KOSI, "-C", str(container_project), "journalctl", "--", "--no-pager", "-o", "cat"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )
    assert journal.returncode == 0, journal.stderr
    assert "kosi test marker" in journal.stdout


# --- VMs ---------------------------------------------------------------------------------------------


@needs_root
@pytest.mark.vm
def test_vm_direct_kernel_boot_reaches_multi_user(vm_project):
    status, output, elapsed = boot_vm(vm_project, "--firmware=linux")
    assert "KOSI-BOOT-OK via-smbios" in output, output[-3000:]
    assert status == 0
    assert "Command line:" in output and "systemd.firstboot=no" in output  # -append carried our extra words
    if not os.path.exists("/dev/kvm") or "using TCG" in output:
        assert output.count("using TCG") == 1  # one line saying why KVM is not used
    print(f"Firmware=linux boot to marker and poweroff: {elapsed:.1f}s")


@needs_root
@pytest.mark.vm
def test_vm_bios_grub_reaches_multi_user(vm_project):
    status, output, elapsed = boot_vm(vm_project, "--firmware=bios")
    assert "KOSI-BOOT-OK via-smbios" in output, output[-3000:]
    assert status == 0
    assert "Loading Linux" in output  # grub.cfg's entry, on the serial console
    print(f"Firmware=bios (grub) boot to marker and poweroff: {elapsed:.1f}s")


@needs_root
@pytest.mark.vm
def test_vm_uefi_boot_then_ssh_answers(vm_project):
    """UEFI boot (systemd-boot, UKI) to the marker, then `kosi ssh` runs commands in the guest:
    over vsock where the host has vhost-vsock, else over the port qemu forwards to the guest."""
    cmd = vm_command(vm_project, poweroff=False)
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    output = b""
    try:
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        deadline = started + 420
        while b"KOSI-BOOT-OK via-smbios" not in output and time.monotonic() < deadline and proc.poll() is None:
            if selector.select(timeout=1):
                output += os.read(proc.stdout.fileno(), 65536)
        text = output.decode(errors="replace")
        assert "KOSI-BOOT-OK via-smbios" in text, text[-3000:]
        boot_time = time.monotonic() - started
        answer = None
        for _ in range(30):  # sshd may still be starting when the marker prints
            answer = subprocess.run(
                [*KOSI, "-C", str(vm_project), "ssh", "--", "uname", "-a"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                timeout=60,
            )
            if answer.returncode == 0:
                break
            time.sleep(2)
        assert answer.returncode == 0 and answer.stdout.startswith("Linux "), answer.stderr
        subprocess.run(
            [*KOSI, "-C", str(vm_project), "ssh", "--", "systemctl", "poweroff"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
        assert proc.wait(timeout=180) == 0
        print(f"UEFI boot to marker: {boot_time:.1f}s; total with ssh and poweroff: {time.monotonic() - started:.1f}s")
    finally:
        stop_group(proc)
