"""Workspaces in WorkspaceDirectory= (/var/tmp): owned by the build that holds their lock.

Each build holds an flock on `.kosi-owner` inside its workspace for as long as it runs (the
kernel drops it when the process is gone, however it ended). A workspace whose lock can be
taken has no living owner — a build killed with SIGKILL — and the next build removes it.
Never by age: a workspace without the lock file is left alone (the lock file gets its name only
once it is locked).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from kosi import log
from kosi.sandbox.process import adopt_orphans, wait_for_sandboxes

OWNER_FILE = ".kosi-owner"


def create(parent: Path, prefix: str) -> tuple[Path, int]:
    """A new workspace and the descriptor whose lock marks it as ours (closing it releases it)."""
    adopt_orphans()  # so that remove() can wait for sandboxes whose supervisor was killed
    workspace = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    # Locked before it takes its name: another build's remove_orphans() must never find the lock
    # file of a workspace whose owner has not taken it yet (and remove the workspace under it).
    new = workspace / f"{OWNER_FILE}-new"
    fd = os.open(new, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(new, workspace / OWNER_FILE)
    return workspace, fd


def remove(workspace: Path) -> None:
    """Remove a workspace once nothing runs in it any more (no sandbox still writing)."""
    wait_for_sandboxes()
    shutil.rmtree(workspace, ignore_errors=True)
    if workspace.exists():  # a mount left behind; try harder rather than leak the tree
        for mount in workspace.iterdir():
            subprocess.run(["umount", "-R", str(mount)], stderr=subprocess.DEVNULL, check=False)
        shutil.rmtree(workspace, ignore_errors=True)


def owner_gone(workspace: Path) -> bool:
    try:
        fd = os.open(workspace / OWNER_FILE, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False  # no lock file: not ours to judge
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def remove_orphans(parent: Path) -> list[Path]:
    """Remove kosi workspaces in `parent` whose owning build is gone; returns them."""
    removed = []
    for entry in sorted(parent.glob("kosi-*")):
        if entry.is_dir() and not entry.is_symlink() and owner_gone(entry):
            log.info(f"removing {entry}, left behind by a build that was killed")
            remove(entry)
            removed.append(entry)
    return removed
