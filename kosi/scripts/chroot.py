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

from kosi.sandbox import Mount, chroot_command
from kosi.scripts.environment import CHROOT_PATHS, CHROOT_WORK

IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


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
    # The sandbox's chroot mode gives the image /proc, /dev, /sys, /run, /tmp and resolv.conf;
    # inside a script's sandbox the network is whatever the script has.
    workdir = CHROOT_PATHS["SRCDIR"] if os.environ.get("SRCDIR") else "/"
    prefix = chroot_command(
        root, mounts=[Mount(host, inside) for host, inside in mounts], network=True, workdir=workdir
    )
    try:
        return subprocess.run([*prefix, *command], env=env).returncode
    finally:
        remove_created(root, sorted(created, key=lambda p: len(p.parts)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
