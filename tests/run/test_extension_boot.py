"""Extension images in a booted system: a Debian trixie VM merges the post's btrfs-progs
sysext (Overlay=yes, signed verity) with systemd-sysext, a signed confext with
systemd-confext, and `portablectl inspect` reads a portable image, all under an image
policy that demands a verity signature, checked against the certificate the base image
ships in /usr/lib/verity.d (kosi genkey's, as mkosi does)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tests.run.vm_support import KOSI, VM_CONF, boot_vm, build, needs_root

CHECK_SCRIPT = """\
#!/bin/sh
exec >/dev/ttyS0 2>&1
test -e /usr/bin/btrfs || echo KOSI-NO-BTRFS-BEFORE
mkdir -p /run/extensions /run/confexts
ln -s /var/lib/kosi-test/btrfs.raw /run/extensions/btrfs.raw
ln -s /var/lib/kosi-test/conf.raw /run/confexts/conf.raw
policy='root=signed+absent:usr=signed+absent'
systemd-sysext merge --image-policy="$policy" && /usr/bin/btrfs --version && echo KOSI-SYSEXT-OK
systemd-confext merge --image-policy="$policy" && grep -q from-the-confext /etc/kosi/confext.conf && echo KOSI-CONFEXT-OK
portablectl inspect /var/lib/kosi-test/svc.raw && echo KOSI-PORTABLE-OK
"""
CHECK_UNIT = """\
[Unit]
Description=kosi extension check
After=multi-user.target
Before=kosi-test-marker.service

[Service]
Type=oneshot
ExecStart=/usr/local/bin/kosi-extension-check

[Install]
WantedBy=multi-user.target
"""


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


@pytest.fixture(scope="module")
def extension_vm_project(tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("extvm")
    main = VM_CONF.replace("         openssh-server\n", "         systemd-container\n         dbus\n")
    main += "ExtraTrees=%O/btrfs.raw:/var/lib/kosi-test\n           %O/conf.raw:/var/lib/kosi-test\n" \
            "           %O/svc.raw:/var/lib/kosi-test\n"
    write(project / "mkosi.conf", main.replace("[Output]\n", "[Output]\nOutputDirectory=mkosi.output\n", 1))
    write(project / "mkosi.images/base/mkosi.conf",
          "[Output]\nFormat=directory\n\n[Content]\nCleanPackageMetadata=no\nPackages=systemd\n         udev\n")
    write(project / "mkosi.images/btrfs/mkosi.conf", "[Config]\nDependencies=base\n\n[Output]\nFormat=sysext\n"
          "Overlay=yes\n\n[Content]\nBaseTrees=%O/base\nPackages=btrfs-progs\n")
    write(project / "mkosi.images/conf/mkosi.conf", "[Output]\nFormat=confext\n")
    write(project / "mkosi.images/conf/mkosi.extra/etc/kosi/confext.conf", "from-the-confext\n")
    write(project / "mkosi.images/svc/mkosi.conf", "[Config]\nDependencies=base\n\n[Output]\nFormat=portable\n\n"
          "[Content]\nBaseTrees=%O/base\n\n[Build]\nEnvironment=PORTABLE_PREFIXES=svc\n")
    write(project / "mkosi.images/svc/mkosi.extra/usr/lib/systemd/system/svc.service",
          "[Service]\nExecStart=/usr/bin/sleep infinity\n")
    write(project / "mkosi.extra/usr/local/bin/kosi-extension-check", CHECK_SCRIPT, 0o755)
    write(project / "mkosi.extra/etc/systemd/system/kosi-extension-check.service", CHECK_UNIT)
    wants = project / "mkosi.extra/etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True)
    (wants / "kosi-extension-check.service").symlink_to("../kosi-extension-check.service")
    (project / "mkosi.output").mkdir()
    genkey = subprocess.run([*KOSI, "-C", str(project), "genkey"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert genkey.returncode == 0, genkey.stdout
    build(project)
    return project


@needs_root
@pytest.mark.vm
def test_sysext_confext_portable_in_a_booted_vm(extension_vm_project):
    status, output, elapsed = boot_vm(extension_vm_project)
    assert "KOSI-BOOT-OK" in output, output[-4000:]
    assert "KOSI-NO-BTRFS-BEFORE" in output, output[-4000:]
    assert "KOSI-SYSEXT-OK" in output and "btrfs-progs v" in output, output[-4000:]
    assert "KOSI-CONFEXT-OK" in output, output[-4000:]
    assert "KOSI-PORTABLE-OK" in output, output[-4000:]
    print(f"boot with sysext/confext/portable checks: {elapsed:.1f}s")
