"""Extension images in a booted system, for real: the re-introduction post's btrfs-progs sysext
(BaseTrees=%O/base, Overlay=yes, signed verity from `kosi genkey`'s key), a signed confext
and a portable service image, merged and inspected inside a Debian trixie VM.

The VM's image is the post's base image made bootable (BaseTrees=%O/base plus a kernel, the
boot loader, dbus and systemd-container for portablectl, libcryptsetup12, which systemd
loads to set up verity: without it systemd-sysext fails "libcryptsetup.so.12 is not
installed"). It trusts the certificate through /usr/lib/verity.d, where kosi puts
VerityCertificate= as mkosi does. The merges run under an image policy that demands a
verity signature, so an unsigned or unverified image fails them. A check unit runs before
the serial getty (which hangs up the console's other writers) and reports on ttyS0.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.run.boot_checks import enable_unit, genkey_and_build
from tests.run.vm_support import VM_CONF, boot_vm, needs_root

POLICY = "root=signed+absent:usr=signed+absent"
CHECK_SCRIPT = f"""\
#!/bin/sh
exec >/dev/ttyS0 2>&1
test -e /usr/bin/btrfs || echo KOSI-NO-BTRFS-BEFORE
test -e /etc/kosi/confext.conf || echo KOSI-NO-CONF-BEFORE
mkdir -p /run/extensions /run/confexts
ln -s /var/lib/kosi-test/btrfs.raw /run/extensions/btrfs.raw
ln -s /var/lib/kosi-test/conf.raw /run/confexts/conf.raw
systemd-sysext merge --image-policy={POLICY} && /usr/bin/btrfs --version && echo KOSI-SYSEXT-OK
echo "KOSI-SYSEXT-STATUS $(systemd-sysext status --json=short)"
systemd-confext merge --image-policy={POLICY} && cat /etc/kosi/confext.conf && echo KOSI-CONFEXT-OK
portablectl inspect /var/lib/kosi-test/svc.raw && echo KOSI-PORTABLE-OK
echo KOSI-DM $(ls /sys/block | grep -c '^dm-') $(cat /sys/block/dm-*/dm/uuid 2>/dev/null)
"""
CHECK_UNIT = """\
[Unit]
Description=kosi extension check
After=basic.target dbus.socket
Before=serial-getty@ttyS0.service kosi-test-marker.service

[Service]
Type=oneshot
ExecStart=/usr/local/bin/kosi-extension-check

[Install]
WantedBy=multi-user.target
"""
BASE = "[Output]\nFormat=directory\n\n[Content]\nCleanPackageMetadata=no\nPackages=systemd\n         udev\n"
BTRFS = (
    "[Config]\nDependencies=base\n\n[Output]\nFormat=sysext\nOverlay=yes\n\n"
    "[Content]\nBaseTrees=%O/base\nPackages=btrfs-progs\n"
)
CONF = "[Output]\nFormat=confext\n\n[Validation]\nVerity=signed\n"
SVC = (
    "[Config]\nDependencies=base\n\n[Output]\nFormat=portable\n\n[Validation]\nVerity=signed\n\n"
    "[Content]\nBaseTrees=%O/base\n\n[Build]\nEnvironment=PORTABLE_PREFIXES=svc\n"
)


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def vm_config() -> str:
    """The shared VM image's configuration, on top of the base image."""
    main = VM_CONF.replace("         openssh-server\n", "         systemd-container\n         dbus\n")
    main = main.replace("Packages=systemd\n", "Packages=systemd\n         libcryptsetup12\n")
    main = main.replace("[Content]\n", "[Content]\nBaseTrees=%O/base\n")
    main = main.replace("[Output]\n", "[Output]\nOutputDirectory=mkosi.output\n", 1)
    extra = "ExtraTrees=" + "\n           ".join(f"%O/{n}.raw:/var/lib/kosi-test" for n in ("btrfs", "conf", "svc"))
    return main + extra + "\n"


def reported(output: str, tag: str) -> str:
    """What the check script printed after `tag` (the console may prefix its line)."""
    return next((line.split(tag + " ", 1)[1] for line in output.splitlines() if tag + " " in line), "")


@pytest.fixture(scope="module")
def extension_vm_project(tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("extvm")
    write(project / "mkosi.conf", vm_config())
    write(project / "mkosi.images/base/mkosi.conf", BASE)
    write(project / "mkosi.images/btrfs/mkosi.conf", BTRFS)
    write(project / "mkosi.images/conf/mkosi.conf", CONF)
    write(project / "mkosi.images/conf/mkosi.extra/etc/kosi/confext.conf", "from-the-confext\n")
    write(project / "mkosi.images/svc/mkosi.conf", SVC)
    write(
        project / "mkosi.images/svc/mkosi.extra/usr/lib/systemd/system/svc.service",
        "[Service]\nExecStart=/usr/bin/sleep infinity\n",
    )
    write(project / "mkosi.extra/usr/local/bin/kosi-extension-check", CHECK_SCRIPT, 0o755)
    enable_unit(project, "kosi-extension-check.service", CHECK_UNIT)
    genkey_and_build(project)
    return project


@needs_root
@pytest.mark.vm
def test_sysext_confext_portable_in_a_booted_vm(extension_vm_project):
    # three images set up with verity (each tried against the kernel keyring first) under TCG
    status, output, elapsed = boot_vm(extension_vm_project, timeout=900)
    tail = output[-6000:]
    assert "KOSI-BOOT-OK" in output, tail
    # before the merge the base has neither the package's binary nor the confext's file
    assert "KOSI-NO-BTRFS-BEFORE" in output and "KOSI-NO-CONF-BEFORE" in output, tail
    assert "KOSI-SYSEXT-OK" in output and "btrfs-progs v" in output, tail
    assert '"btrfs"' in reported(output, "KOSI-SYSEXT-STATUS"), tail
    assert "KOSI-CONFEXT-OK" in output and "from-the-confext" in output, tail
    assert "KOSI-PORTABLE-OK" in output and "svc.service" in output, tail
    # the merged images came through dm-verity: two verity devices (sysext, confext) at least
    dm = reported(output, "KOSI-DM").split()
    assert int(dm[0]) >= 2 and sum(word.startswith("CRYPT-VERITY-") for word in dm) >= 2, dm
    print(f"boot with sysext/confext/portable checks: {elapsed:.1f}s")
