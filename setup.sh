#!/bin/bash
# Prepare a fresh Debian 12 machine for kosi: the tools it drives and the test runner.
set -euo pipefail

packages=(
    apt dpkg dpkg-dev debian-archive-keyring gnupg ca-certificates
    uidmap util-linux mount tar cpio zstd xz-utils gzip openssl
    systemd-container qemu-system-x86 ovmf swtpm socat
    dosfstools mtools e2fsprogs squashfs-tools erofs-utils fdisk kmod
    mmdebstrap busybox-static strace zsh fish groff-base man-db udev
    device-tree-compiler python3-pip cryptsetup-bin
    pacman-package-manager archlinux-keyring makepkg libarchive-tools
    zypper rpm createrepo-c
)

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${db:Status-Abbrev}' "$package" 2>/dev/null | grep -q '^ii' || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

python3 -m pytest --version >/dev/null 2>&1 || python3 -m pip install -q pytest
python3 -c 'import hypothesis' 2>/dev/null || python3 -m pip install -q hypothesis
# The linters .ci/lint runs (test-only; the versions main was checked with). Debian's own
# python3 refuses pip installs outside a virtual environment unless told (PEP 668).
pip_install() { python3 -m pip install -q "$@" || python3 -m pip install -q --break-system-packages "$@"; }
python3 -m ruff --version >/dev/null 2>&1 || pip_install ruff==0.17.6
python3 -m mypy --version >/dev/null 2>&1 || pip_install mypy==2.4.1

# The oracle of tests/compat: mkosi 27.1 from Debian sid, unpacked into /var/cache/kosi-oracle.
$sudo python3 "$(dirname "$0")/tests/compat/oracle.py" >/dev/null
