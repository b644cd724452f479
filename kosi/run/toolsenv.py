"""The environment the runtime verbs (shell, boot, vm, ssh, box, ...) run their tools in.

As the manual says for `box`: /usr comes from the tools tree when one is used, and
everything else stays the host's. Unlike the build sandbox, a VM or container needs the
host's devices (/dev/kvm, /dev/net/tun, /dev/vhost-vsock), its network namespace (ports
forwarded to the guest must be reachable) and its paths, so only /usr is replaced, in a
private mount namespace.
"""

from __future__ import annotations

from pathlib import Path

# $0 is the tools tree's /usr; the rest of the arguments are the command.
REPLACE_USR = 'mount --rbind "$0" /usr && exec env PATH=/usr/bin:/usr/sbin:"$PATH" "$@"'


def runtime_prefix(tools: Path | None) -> list[str]:
    if tools is None:
        return []
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", REPLACE_USR, str(tools / "usr")]
