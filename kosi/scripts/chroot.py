"""mkosi-chroot: run a command inside the image with sources, destdir, builddir and outputdir mounted.

Invoked as `python3 -m kosi.scripts.chroot HOST-SCRIPT COMMAND...` by the generated
mkosi-chroot helper (HOST-SCRIPT is the running script on the host, or "" when none,
and becomes $CHROOT_SCRIPT in the image). The host paths come from the script's own
environment ($BUILDROOT, $SRCDIR, ...); inside, they are replaced by the CHROOT_* paths.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kosi.scripts.environment import CHROOT_PATHS, CHROOT_WORK

IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# A private mount namespace dies with the command, taking every mount below with it.
MOUNT_SCRIPT = r"""
set -e
R="$1"; shift
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount -t sysfs sysfs "$R/sys"
while [ "$1" != "--" ]; do
    if [ -d "$1" ]; then
        mkdir -p "$R$2" && mount --rbind "$1" "$R$2"
    else
        mkdir -p "$(dirname "$R$2")" && touch "$R$2" && mount --bind "$1" "$R$2"
    fi
    shift 2
done
shift
if [ -f /etc/resolv.conf ] && [ -f "$R/etc/resolv.conf" ] && [ ! -L "$R/etc/resolv.conf" ]; then
    mount --bind /etc/resolv.conf "$R/etc/resolv.conf"
fi
exec chroot "$R" "$@"
"""


def mounts_and_environment(script: str) -> tuple[list[tuple[str, str]], dict[str, str]]:
    env = dict(os.environ, PATH=IMAGE_PATH, BUILDROOT="/")
    mounts = []
    for name, inside in CHROOT_PATHS.items():
        if os.environ.get(name):
            mounts.append((os.environ[name], inside))
            env[name] = inside
    for name in ("PACKAGEDIR", "ARTIFACTDIR"):
        if os.environ.get(name):
            inside = f"{CHROOT_WORK}/{name.lower().removesuffix('dir')}s"
            mounts.append((os.environ[name], inside))
            env[name] = inside
    if script:
        mounts.append((script, f"{CHROOT_WORK}/{Path(script).name}"))
    return mounts, env


def remove_created(root: Path, created: list[Path]) -> None:
    """Empty mount points we had to create must not end up in the image."""
    for path in reversed(created):
        try:
            if path.is_dir():
                path.rmdir()
            elif path.is_file() and path.stat().st_size == 0:
                path.unlink()
        except OSError:
            pass


def main(argv: list[str]) -> int:
    script, command = argv[0], argv[1:] or ["/bin/sh"]
    root = Path(os.environ["BUILDROOT"])
    mounts, env = mounts_and_environment(script)
    # Remember which mount points do not exist yet, deepest last, to remove them afterwards.
    created: list[Path] = []
    for _, inside in mounts:
        path = root / inside.lstrip("/")
        chain = []
        while not os.path.lexists(path) and path != root:
            chain.append(path)
            path = path.parent
        created += [p for p in reversed(chain) if p not in created]
    flat = [item for pair in mounts for item in pair]
    # The sandbox's root= mode does not yet take file bind mounts (the running script);
    # until it does, a private mount namespace of our own does the same job.
    prefix: list[str] = []
    if prefix:
        cmd = [*prefix, *command]
    else:
        cmd = ["unshare", "--mount", "--propagation", "private", "--fork", "--", "sh", "-c", MOUNT_SCRIPT,
               "mkosi-chroot", str(root), *flat, "--", *command]
    try:
        return subprocess.run(cmd, env=env).returncode
    finally:
        remove_created(root, sorted(created, key=lambda p: len(p.parts)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
