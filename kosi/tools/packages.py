"""Which Debian package provides each program kosi runs, and the one line that says it is missing.

A missing program is named with the package that brings it: on the host (`apt install`), or in
the tools tree (ToolsTreePackages=), or kosi takes it from the default tools tree
(ToolsTree=default), which has all of these. Package names are Debian trixie's (the default
tools tree's distribution), as `dpkg -S` reports them there.
"""

from __future__ import annotations

from pathlib import Path

DEBIAN_PACKAGES: dict[str, str] = {
    # package managers and repository tools
    "apt": "apt",
    "apt-get": "apt",
    "apt-cache": "apt",
    "dpkg": "dpkg",
    "dpkg-deb": "dpkg",
    "dpkg-query": "dpkg",
    "dpkg-scanpackages": "dpkg-dev",
    "dnf": "dnf",
    "dnf5": "dnf5",
    "rpm": "rpm",
    "createrepo_c": "createrepo-c",
    "zypper": "zypper",
    "pacman": "pacman-package-manager",
    "pacman-key": "pacman-package-manager",
    "repo-add": "pacman-package-manager",
    "makepkg": "makepkg",
    "apk": "apk-tools",
    # systemd
    "systemd-repart": "systemd-repart",
    "systemd-sbsign": "systemd-repart",
    "systemd-nspawn": "systemd-container",
    "systemd-dissect": "systemd-container",
    "systemd-sysupdate": "systemd-container",
    "ukify": "systemd-ukify",
    "bootctl": "systemd-boot-tools",
    "systemd-hwdb": "udev",
    "systemd-sysusers": "systemd",
    "systemd-tmpfiles": "systemd",
    "systemd-firstboot": "systemd",
    "systemd-measure": "systemd",
    "systemd-analyze": "systemd",
    "systemctl": "systemd",
    "journalctl": "systemd",
    "coredumpctl": "systemd-coredump",
    "busctl": "systemd",
    "kernel-install": "systemd",
    "systemd-journal-remote": "systemd-journal-remote",
    # file systems, partitions, archives
    "mkfs.ext4": "e2fsprogs",
    "mke2fs": "e2fsprogs",
    "mkfs.xfs": "xfsprogs",
    "mkfs.btrfs": "btrfs-progs",
    "mkfs.vfat": "dosfstools",
    "mkfs.fat": "dosfstools",
    "mkfs.erofs": "erofs-utils",
    "mksquashfs": "squashfs-tools",
    "mcopy": "mtools",
    "mdir": "mtools",
    "mmd": "mtools",
    "sfdisk": "fdisk",
    "losetup": "mount",
    "mount": "mount",
    "umount": "mount",
    "unshare": "util-linux",
    "setpriv": "util-linux",
    "cryptsetup": "cryptsetup-bin",
    "veritysetup": "cryptsetup-bin",
    "tar": "tar",
    "cpio": "cpio",
    "zstd": "zstd",
    "xz": "xz-utils",
    "gzip": "gzip",
    "bzip2": "bzip2",
    "lz4": "lz4",
    "cp": "coreutils",
    "umoci": "umoci",
    "skopeo": "skopeo",
    # keys and signatures
    "gpg": "gpg",
    "gpgv": "gpgv",
    "sqop": "sqop",
    "rsop": "rsop",
    "openssl": "openssl",
    "sbsign": "sbsigntool",
    "sbverify": "sbsigntool",
    "pesign": "pesign",
    "cert-to-efi-sig-list": "efitools",
    "sign-efi-sig-list": "efitools",
    "virt-fw-vars": "python3-virt-firmware",
    # boot
    "grub-mkimage": "grub-common",
    "grub-mkrescue": "grub-common",
    "grub-bios-setup": "grub-pc-bin",
    "modinfo": "kmod",
    "depmod": "kmod",
    "dracut": "dracut",
    "setfiles": "policycoreutils",
    # running images
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-system-i386": "qemu-system-x86",
    "qemu-system-aarch64": "qemu-system-arm",
    "qemu-system-arm": "qemu-system-arm",
    "qemu-system-riscv64": "qemu-system-misc",
    "qemu-system-ppc64": "qemu-system-ppc",
    "qemu-system-s390x": "qemu-system-s390x",
    "qemu-img": "qemu-utils",
    "virtiofsd": "virtiofsd",
    "swtpm": "swtpm",
    "swtpm_setup": "swtpm-tools",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "socat": "socat",
    # kosi itself
    "newuidmap": "uidmap",
    "newgidmap": "uidmap",
    "strace": "strace",
    "curl": "curl",
    "busybox": "busybox",
    "man": "man-db",
}


def debian_package(program: str) -> str | None:
    return DEBIAN_PACKAGES.get(Path(program).name)


def missing_program(program: str, tools: Path | None = None) -> str:
    """One line: `program` is missing, the package that has it, and where to install it."""
    name = Path(program).name
    package = debian_package(name)
    if tools is not None:
        where = f"the tools tree {tools}"
        fix = f"add {package} to ToolsTreePackages=" if package else "add its package to ToolsTreePackages="
        return f"{name} is not installed in {where} (Debian package {package or 'unknown'}): {fix}"
    if package:
        return f"{name} is not installed: install the Debian package {package}, or use ToolsTree=default"
    return f"{name} is not installed: install it, or use ToolsTree=default"
