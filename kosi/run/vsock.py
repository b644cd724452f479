"""VSock=/VSockCID=, and the small runtime file through which `kosi ssh` finds a running VM.

The runtime file (<output>.vm.json next to the image) exists while `kosi vm` runs and says
how to reach the guest's SSH: a vsock CID, or, where the host has no vhost-vsock, a
localhost port forwarded to the guest's port 22 by qemu's user networking.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import random
import struct
from dataclasses import asdict, dataclass
from pathlib import Path

from kosi.errors import KosiError

VHOST_VSOCK = "/dev/vhost-vsock"
VHOST_SET_OWNER = 0xAF01  # _IO(VHOST_VIRTIO, 0x01)
VHOST_VSOCK_SET_GUEST_CID = 0x4008AF60  # _IOW(VHOST_VIRTIO, 0x60, __u64)
CID_MIN, CID_MAX = 3, 0xFFFFFFFF - 1


def vsock_available() -> str | None:
    """None when vhost-vsock can be used, else why not (one line)."""
    if not os.path.exists(VHOST_VSOCK):
        return f"{VHOST_VSOCK} does not exist (the host kernel lacks the vhost_vsock module)"
    if not os.access(VHOST_VSOCK, os.R_OK | os.W_OK):
        return f"{VHOST_VSOCK} is not accessible to this user"
    return None


def cid_is_free(cid: int) -> bool:
    """Try to claim the CID on a throw-away vhost-vsock handle: the kernel refuses a CID in use."""
    fd = os.open(VHOST_VSOCK, os.O_RDWR)
    try:
        fcntl.ioctl(fd, VHOST_SET_OWNER)
        fcntl.ioctl(fd, VHOST_VSOCK_SET_GUEST_CID, struct.pack("<Q", cid))
        return True
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            return False
        raise
    finally:
        os.close(fd)


def hash_cid(image: Path) -> int:
    digest = hashlib.sha256(str(image.absolute()).encode()).digest()
    return CID_MIN + int.from_bytes(digest[:4], "little") % (CID_MAX - CID_MIN)


def choose_cid(setting: int | str, image: Path) -> int:
    """VSockCID=: a number (the table checked its range), hash (derived from the image path)
    or auto (a free one)."""
    if isinstance(setting, int):
        return setting
    if setting == "hash":
        return hash_cid(image)
    first = hash_cid(image)
    if cid_is_free(first):
        return first
    for _ in range(64):
        cid = random.randint(CID_MIN, CID_MAX)
        if cid_is_free(cid):
            return cid
    raise KosiError("VSockCID=auto: found no free vsock CID")


@dataclass
class RuntimeInfo:
    machine: str
    pid: int
    cid: int | None = None
    ssh_port: int | None = None  # localhost port forwarded to the guest's 22 when there is no vsock


def runtime_file(output: Path) -> Path:
    return output.with_name(output.name + ".vm.json")


def write_runtime(output: Path, info: RuntimeInfo) -> Path:
    path = runtime_file(output)
    path.write_text(json.dumps(asdict(info)) + "\n")
    return path


def read_runtime(output: Path) -> RuntimeInfo | None:
    path = runtime_file(output)
    try:
        data = json.loads(path.read_text())
        info = RuntimeInfo(**data)
    except (OSError, ValueError, TypeError):
        return None
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return None  # left behind by a VM that is gone
    except PermissionError:
        pass
    return info


def free_tcp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
