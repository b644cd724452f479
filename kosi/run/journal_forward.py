"""ForwardJournal= for VMs: the guest's journald sends every entry (journal export format) to
a socket, where systemd-journal-remote on the host writes it to the configured file
(`*.journal`) or directory.

The guest learns the address from the journal.forward_to_socket credential (journald,
systemd >= 256; its kernel command line has no such switch). The socket is vsock where the
host has vhost-vsock; elsewhere it is a TCP port on the host's loopback, which the guest
reaches as 10.0.2.2 through qemu's user networking.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from kosi.errors import KosiError
from kosi.run import daemons

JOURNAL_REMOTE = "/usr/lib/systemd/systemd-journal-remote"
CREDENTIAL = "journal.forward_to_socket"
VMADDR_CID_HOST = 2
SLIRP_HOST = "10.0.2.2"  # the host's loopback as qemu's user networking shows it to the guest
TCP_LISTEN, TCP_ESTABLISHED, TCP_CLOSE_WAIT = "0A", "01", "08"

# journald connects its forwarding socket with a blocking connect() and keeps running across the
# switch from the initrd. When the initrd's networkd configures the NIC, journald's first SYNs
# there went unanswered in our boots, and journald hung for minutes (its watchdog killed it,
# journal flushing timed out, nothing arrived). Without network in the initrd, its connects
# fail at once until the system's networkd is up, and the connection then works.
NO_INITRD_NETWORK_WORDS = ["rd.systemd.mask=systemd-networkd.service", "rd.systemd.mask=systemd-networkd.socket"]


@dataclass(frozen=True)
class ForwardPlan:
    listen: str  # systemd-journal-remote --listen-raw= address
    guest_address: str  # the credential's value: where the guest's journald connects to
    port: int


def plan_forwarding(*, vsock: bool, user_networking: bool, port: int) -> ForwardPlan:
    if vsock:
        return ForwardPlan(f"vsock::{port}", f"vsock:{VMADDR_CID_HOST}:{port}", port)
    if user_networking:
        return ForwardPlan(f"127.0.0.1:{port}", f"{SLIRP_HOST}:{port}", port)
    raise KosiError(
        "ForwardJournal=: the guest cannot reach the host: this host has no vsock and RuntimeNetwork= is not user",
        hint="use RuntimeNetwork=user",
    )


def output_options(target: Path) -> list[str]:
    """A path ending in .journal is one file (all machines in it); else a directory, where
    systemd-journal-remote names a file after each sender."""
    if target.suffix == ".journal":
        return [f"--output={target}", "--split-mode=none"]
    return [f"--output={target}", "--split-mode=host"]


def journal_remote_command(plan: ForwardPlan, target: Path) -> list[str]:
    return [JOURNAL_REMOTE, f"--listen-raw={plan.listen}", *output_options(target)]


def tcp_states(port: int) -> list[str]:
    """The states of the host's IPv4 TCP sockets whose local port is port (from /proc)."""
    states: list[str] = []
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return states
    for line in lines:
        fields = line.split()
        if len(fields) > 3 and int(fields[1].rsplit(":", 1)[1], 16) == port:
            states.append(fields[3])
    return states


def prepare_target(target: Path) -> None:
    if target.suffix == ".journal":
        target.parent.mkdir(parents=True, exist_ok=True)
    else:
        target.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def journal_remote_running(plan: ForwardPlan, target: Path, scratch: Path, prefix: list[str]) -> Iterator[None]:
    """systemd-journal-remote listening until the block ends. Before it is stopped, it gets a
    few seconds to take in what the guest sent before qemu exited (a TCP connection that
    is still open or only half closed)."""
    prepare_target(target)
    cmd = [*prefix, *journal_remote_command(plan, target)]
    tcp = plan.listen.startswith("127.")
    ready = (lambda: TCP_LISTEN in tcp_states(plan.port)) if tcp else (lambda: True)
    with daemons.running("systemd-journal-remote", cmd, scratch / "journal-remote.log", ready=ready):
        yield
        deadline = time.monotonic() + 5
        while tcp and time.monotonic() < deadline and {TCP_ESTABLISHED, TCP_CLOSE_WAIT} & set(tcp_states(plan.port)):
            time.sleep(0.1)
