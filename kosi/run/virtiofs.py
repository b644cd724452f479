"""Host directories in a VM (RuntimeTrees=, BindUser=, RuntimeBuildSources=) through virtiofs.

One virtiofsd per directory serves it over a vhost-user socket; qemu attaches each as a
vhost-user-fs-pci device with a tag, which needs the guest's RAM in a shared memory backend
(memfd, so it also works under TCG). The guest learns where to mount the tags from the
fstab.extra credential, read by systemd-fstab-generator: it travels like every other
credential (SMBIOS), so it works with every Firmware=, unlike kernel command line words, which
never reach a kernel started by grub from the image.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import pwd
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from kosi import log
from kosi.config.model import Config
from kosi.errors import KosiError
from kosi.run import daemons
from kosi.run.image import runtime_trees

VIRTIOFSD = "/usr/libexec/virtiofsd"
TAG_LIMIT = 36  # the virtio-fs config space holds a 36-byte tag
WORK_SOURCES = "/work/src"  # where build scripts see the sources, and RuntimeBuildSources= mounts them
WORK_BUILD = "/work/build"


@dataclass(frozen=True)
class Share:
    source: Path
    target: str  # absolute path in the guest
    tag: str
    why: str  # the setting that asked for it, for messages


@dataclass(frozen=True)
class BoundUser:
    name: str
    uid: int
    gid: int
    home: Path


def invoking_user() -> BoundUser | None:
    """The user whose home BindUser= shares: the one behind sudo, else the caller. Root's home
    is not shared (it would hide the guest's own /root)."""
    name = os.environ.get("SUDO_USER") or getpass.getuser()
    if name == "root":
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise KosiError(f"BindUser=yes: the user {name!r} does not exist on this host") from None
    return BoundUser(name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir))


def runtime_shares(config: Config, user: BoundUser | None = None) -> list[Share]:
    """Everything the VM gets mounted, tagged in order (kosi-0, kosi-1, ...)."""
    wanted: list[tuple[Path, str, str]] = []
    for tree in runtime_trees(config):
        wanted.append((Path(tree.source), tree.target_under("/root/src"), "RuntimeTrees"))
    if config.bind_user and user is not None:
        wanted.append((user.home, str(user.home), "BindUser"))
    if config.runtime_build_sources:
        trees = list(config.build_sources or []) or [None]
        for tree in trees:
            if tree is None:
                wanted.append((Path(config.directory), WORK_SOURCES, "RuntimeBuildSources"))
            else:
                target = WORK_SOURCES + "/" + tree.target.strip("/") if tree.target else WORK_SOURCES
                wanted.append((Path(tree.source), target.rstrip("/"), "RuntimeBuildSources"))
        if config.build_directory is not None:
            wanted.append((Path(config.build_directory), WORK_BUILD, "RuntimeBuildSources"))
    shares = []
    for index, (source, target, why) in enumerate(wanted):
        if not source.is_dir():
            raise KosiError(f"{why}=: {source} is not a directory")
        if not target.startswith("/"):
            raise KosiError(f"{why}=: the target {target!r} must be an absolute path")
        shares.append(Share(source, target, f"kosi-{index}", why))
    return shares


def fstab_escape(path: str) -> str:
    """fstab fields are separated by blanks: spaces, tabs and backslashes are octal escapes."""
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in path)


def fstab_extra(shares: list[Share]) -> bytes:
    """The fstab.extra credential: one virtiofs line per share (systemd creates missing mount
    points itself)."""
    lines = [f"{share.tag} {fstab_escape(share.target)} virtiofs defaults 0 0\n" for share in shares]
    return "".join(lines).encode()


def sysusers_extra(user: BoundUser) -> bytes:
    """The sysusers.extra credential: the bound user with the host's UID and GID, so the files
    in the shared home belong to them in the guest as well."""
    return (
        f'g {user.name} {user.gid}\nu {user.name} {user.uid}:{user.gid} "{user.name}" {user.home} /bin/sh\n'
    ).encode()


def shared_memory_args(ram_mib: int) -> list[str]:
    """vhost-user devices read guest memory directly: back all of it with a shareable memfd."""
    return ["-object", f"memory-backend-memfd,id=mem,size={ram_mib}M,share=on", "-numa", "node,memdev=mem"]


def device_args(share: Share, socket_path: Path) -> list[str]:
    chardev = f"{share.tag}-sock"
    return [
        "-chardev",
        f"socket,id={chardev},path={socket_path}",
        "-device",
        f"vhost-user-fs-pci,queue-size=1024,chardev={chardev},tag={share.tag}",
    ]


def qemu_args(shares: list[tuple[Share, Path]], ram_mib: int) -> list[str]:
    if not shares:
        return []
    args = shared_memory_args(ram_mib)
    for share, socket_path in shares:
        args += device_args(share, socket_path)
    return args


def virtiofsd_command(share: Share, listen_fd: int) -> list[str]:
    """virtiofsd on an already listening socket (no waiting for it to appear, no race with
    qemu). It runs in its own namespaces with the shared directory as its root and a seccomp
    filter that kills it on any unexpected system call (its defaults, spelled out). It keeps
    root's credentials: the guest's root must be able to use root-owned trees as they are."""
    return [
        VIRTIOFSD,
        f"--fd={listen_fd}",
        f"--shared-dir={share.source}",
        "--sandbox=namespace",
        "--seccomp=kill",
        "--cache=auto",
        "--xattr",
        "--announce-submounts",
        "--log-level=warn",
    ]


def listening_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(1)
    sock.set_inheritable(True)
    return sock


@contextlib.contextmanager
def virtiofsd_running(shares: list[Share], scratch: Path, prefix: list[str]) -> Iterator[list[tuple[Share, Path]]]:
    """One virtiofsd per share, serving until the block ends (after qemu exits)."""
    served: list[tuple[Share, Path]] = []
    with contextlib.ExitStack() as stack:
        for share in shares:
            socket_path = scratch / f"{share.tag}.sock"
            sock = stack.enter_context(listening_socket(socket_path))
            cmd = [*prefix, *virtiofsd_command(share, sock.fileno())]
            log.debug(f"+ {' '.join(cmd)}")
            stack.enter_context(
                daemons.running("virtiofsd", cmd, scratch / f"{share.tag}.log", pass_fds=(sock.fileno(),))
            )
            served.append((share, socket_path))
        yield served
