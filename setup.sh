#!/bin/bash
# Prepare a fresh Debian 12 machine for kosi: the tools it drives and the test runner.
set -euo pipefail

packages=(
    apt dpkg dpkg-dev debian-archive-keyring gnupg ca-certificates
    uidmap util-linux mount tar cpio zstd xz-utils gzip openssl
    systemd-container qemu-system-x86 ovmf swtpm socat
    dosfstools mtools e2fsprogs squashfs-tools erofs-utils fdisk kmod
    mmdebstrap busybox-static strace
)

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

if ! dpkg-query -W -f='${Status}\n' "${packages[@]}" 2>/dev/null | grep -qv "install ok installed" \
   && [ "$(dpkg-query -W -f='${Status}\n' "${packages[@]}" 2>/dev/null | wc -l)" -eq "${#packages[@]}" ]; then
    echo "setup: host packages already installed" >&2
else
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${packages[@]}"
fi

python3 -m pytest --version >/dev/null 2>&1 || python3 -m pip install -q pytest
