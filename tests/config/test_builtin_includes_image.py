"""Include=mkosi-vm builds: the built-in configuration's packages (virtual ones included, as
Debian provides them) end up in a real image. The summaries are compared with mkosi 27.1's in
tests/compat/cases/builtin-include."""

from __future__ import annotations

from pathlib import Path

import pytest


def installed(root: Path) -> set[str]:
    status = (root / "var/lib/dpkg/status").read_text()
    return {line.split(": ", 1)[1] for line in status.splitlines() if line.startswith("Package: ")}


@pytest.mark.image
def test_include_mkosi_vm_builds_a_bootable_debian_image(tmp_path, kosi_build):
    (tmp_path / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=debian\nRelease=trixie\n\n[Include]\nInclude=mkosi-vm\n\n"
        "[Output]\nFormat=directory\n"
    )
    result = kosi_build(tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    packages = installed(tmp_path / "image")
    # linux-image-generic and systemd-boot-efi-signed are virtual: Debian's providers are installed
    assert {"linux-image-amd64", "systemd-boot-efi-amd64-signed"} <= packages
    assert {"dbus-broker", "polkitd", "systemd-resolved", "tpm2-tools", "login", "tzdata", "systemd-sysv"} <= packages
    assert list((tmp_path / "image/usr/lib/modules").iterdir()), "Bootable=yes: the kernel's modules are there"
    assert (tmp_path / "image.vmlinuz").is_file(), "Bootable=yes: the kernel is written next to the image"
    assert (tmp_path / "image.efi").is_file(), "Bootable=yes: a UKI is written next to the image"
