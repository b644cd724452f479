"""Running package-manager commands against an image root with /proc, /dev, /run and /tmp mounted.

Maintainer scripts run chrooted into the image (dpkg --root does the chroot) and expect
the API file systems. They are mounted in a private mount namespace (`unshare --mount`),
so they vanish with the command and nothing leaks into the image or the host.

This is the one place that decides how commands reach the image root; when kosi.sandbox
grows real isolation (root=), only `in_root` changes.
"""

from __future__ import annotations

from pathlib import Path

# Positional parameters: $1 is the root; the command follows.
_MOUNT_SCRIPT = r"""
set -e
r="$1"; shift
mkdir -p "$r/proc" "$r/dev" "$r/sys" "$r/run"
[ -d "$r/tmp" ] || install -d -m 1777 "$r/tmp"
mount -t proc -o nosuid,nodev,noexec proc "$r/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$r/sys" 2>/dev/null || true
mount -t tmpfs -o nosuid,mode=0755,size=16m kosi-dev "$r/dev"
for n in null zero full random urandom tty; do
    : > "$r/dev/$n"
    mount --bind "/dev/$n" "$r/dev/$n"
done
mkdir -m 0755 "$r/dev/pts"
mkdir -m 1777 "$r/dev/shm"
ln -s /proc/self/fd "$r/dev/fd"
ln -s /proc/self/fd/0 "$r/dev/stdin"
ln -s /proc/self/fd/1 "$r/dev/stdout"
ln -s /proc/self/fd/2 "$r/dev/stderr"
mount -t tmpfs -o nosuid,nodev,mode=0755 kosi-run "$r/run"
mount -t tmpfs -o nosuid,nodev,mode=1777 kosi-tmp "$r/tmp"
exec "$@"
"""


def in_root(root: Path, *, apivfs: bool = True) -> list[str]:
    """A command prefix that runs the command after it with the image's API file systems mounted."""
    if not apivfs:
        return []
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", _MOUNT_SCRIPT, "kosi-apivfs", str(root)]
