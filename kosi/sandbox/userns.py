"""Becoming root in a user namespace when kosi is started by an ordinary user (execution flow, step 4).

The invoking user becomes uid/gid 0 and its subordinate range from /etc/subuid and /etc/subgid
becomes ids 1..N, so dpkg can chown files to any system user. Writing the id maps for more than
one id needs the setuid helpers newuidmap/newgidmap (package uidmap); they must run outside the
new namespace, so a child forked *before* unshare(2) writes the maps once the parent has moved.
Must happen while kosi is still single-threaded (unshare(CLONE_NEWUSER) refuses threaded processes).
"""

from __future__ import annotations

import ctypes
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from kosi.errors import KosiError

CLONE_NEWUSER = 0x10000000


def subordinate_range(path: Path, user: str, uid: int) -> tuple[int, int] | None:
    """The first range (start, count) for `user` (by name or number) in /etc/subuid or /etc/subgid."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return None
    for line in lines:
        fields = line.strip().split(":")
        if len(fields) == 3 and fields[0] in (user, str(uid)) and fields[1].isdigit() and fields[2].isdigit():
            if int(fields[2]) > 0:
                return int(fields[1]), int(fields[2])
    return None


# (sysctl, value that disables unprivileged user namespaces, value that enables them)
USERNS_SYSCTLS = (
    ("kernel.unprivileged_userns_clone", "0", "1"),
    ("user.max_user_namespaces", "0", "10000"),
    ("kernel.apparmor_restrict_unprivileged_userns", "1", "0"),
)


def userns_disabled_hint() -> str:
    for name, bad, good in USERNS_SYSCTLS:
        try:
            if Path("/proc/sys", name.replace(".", "/")).read_text().strip() == bad:
                return f"user namespaces are disabled: run 'sysctl {name}={good}' as root, or run kosi as root"
        except OSError:
            continue
    return "user namespaces are not available here (a container without them?): run kosi as root"


def become_root(*, subuid: Path = Path("/etc/subuid"), subgid: Path = Path("/etc/subgid")) -> None:
    """Make the current process root of a new user namespace with the user's subordinate ids
    mapped. Does nothing when already root."""
    if os.getuid() == 0:
        return
    uid, gid = os.getuid(), os.getgid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    uids = subordinate_range(subuid, user, uid)
    gids = subordinate_range(subgid, user, uid)
    if uids is None or gids is None:
        missing = subuid if uids is None else subgid
        raise KosiError(
            f"running unprivileged needs a subordinate id range for {user} in {missing}",
            hint=f"add '{user}:100000:65536' to /etc/subuid and /etc/subgid, "
            f"or as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}",
        )
    found = [shutil.which(t) for t in ("newuidmap", "newgidmap")]
    tools = [t for t in found if t is not None]
    if len(tools) != len(found):
        raise KosiError("running unprivileged needs newuidmap and newgidmap", hint="install the package uidmap")

    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the helper: waits until the parent is in its namespace, then maps it
        status = 1
        try:
            os.close(ready_w)
            if os.read(ready_r, 1) == b"1":
                parent = str(os.getppid())
                for tool, own, (start, count) in ((tools[0], uid, uids), (tools[1], gid, gids)):
                    subprocess.run(
                        [tool, parent, "0", str(own), "1", "1", str(start), str(count)],
                        check=True,
                        stdout=subprocess.DEVNULL,
                    )
                status = 0
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(ready_r)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWUSER) < 0:
        code = ctypes.get_errno()
        os.close(ready_w)
        os.waitpid(pid, 0)
        raise KosiError(f"cannot create a user namespace: {os.strerror(code)}", hint=userns_disabled_hint())
    os.write(ready_w, b"1")
    os.close(ready_w)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise KosiError(
            f"newuidmap/newgidmap could not map {user}'s ranges {uids} and {gids} from {subuid} and {subgid}",
            hint="check that the ranges belong to this user and newuidmap is setuid root",
        )
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    try:
        os.setgroups([])
    except PermissionError:
        pass
