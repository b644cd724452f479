"""`ssh`: connecting to a VM started by `kosi vm`, over vsock where the host has it and over
a localhost port forwarded by qemu's user networking where it does not."""

from __future__ import annotations

import shutil
from pathlib import Path

from kosi.config.model import Config
from kosi.config.values import KeyPath
from kosi.errors import KosiError
from kosi.run.vsock import RuntimeInfo

COMMON_OPTIONS = [
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=10",
]


def ssh_key(config: Config) -> Path:
    """SshKey= (the loader assigns mkosi.key when it exists)."""
    key = config.ssh_key
    if key is None:
        raise KosiError(
            "no SSH key: SshKey= is not set and there is no mkosi.key",
            hint="run `kosi genkey` to create mkosi.key and mkosi.crt, or set SshKey=",
        )
    if KeyPath.is_uri(str(key)):
        raise KosiError(f"SshKey=: ssh needs a key file, not {key}")
    if not Path(key).exists():
        raise KosiError(
            f"SshKey=: {key} does not exist", hint="run `kosi genkey` to create mkosi.key and mkosi.crt, or set SshKey="
        )
    return Path(key)


def vsock_proxy(cid: int, tools: Path | None) -> str:
    """A ProxyCommand that connects stdin/stdout to the guest's vsock port 22."""
    for candidate in (
        (tools / "usr/lib/systemd/systemd-ssh-proxy") if tools else None,
        Path("/usr/lib/systemd/systemd-ssh-proxy"),
    ):
        if candidate and candidate.exists():
            return f"{candidate} vsock/{cid} 22"
    if shutil.which("socat"):
        return f"socat - VSOCK-CONNECT:{cid}:22"
    raise KosiError("ssh over vsock needs systemd-ssh-proxy (systemd >= 256) or socat")


def ssh_command(config: Config, info: RuntimeInfo, arguments: list[str], tools: Path | None = None) -> list[str]:
    key = ssh_key(config)
    cmd = ["ssh", "-i", str(key), "-F", "none", *COMMON_OPTIONS]
    if info.cid is not None:
        cmd += ["-o", f"ProxyCommand={vsock_proxy(info.cid, tools)}", "root@vsock-mux"]
    elif info.ssh_port:
        cmd += ["-p", str(info.ssh_port), "root@127.0.0.1"]
    else:
        raise KosiError(
            f"the VM '{info.machine}' has neither vsock nor a forwarded SSH port",
            hint="this host has no /dev/vhost-vsock; boot it with RuntimeNetwork=user",
        )
    return cmd + arguments
