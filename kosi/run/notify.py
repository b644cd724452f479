"""The guest's exit status for `kosi vm`: systemd in the guest sends sd_notify messages
(READY=1, ..., EXIT_STATUS=N when it shuts down after `systemctl exit N` or an
ExitAction=/SuccessAction=exit) to the socket named by the vmm.notify_socket credential.

sd_notify speaks only AF_UNIX and AF_VSOCK, and a guest's AF_UNIX socket cannot reach the
host, so this needs vhost-vsock: without it the status of qemu itself is all there is.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field
from typing import Iterator

CREDENTIAL = "vmm.notify_socket"
VMADDR_CID_HOST = 2


def parse_messages(data: bytes) -> dict[str, str]:
    """sd_notify messages are newline-separated KEY=VALUE assignments."""
    result = {}
    for line in data.decode(errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            result[key] = value
    return result


def exit_status(messages: dict[str, str]) -> int | None:
    try:
        return int(messages["EXIT_STATUS"])
    except (KeyError, ValueError):
        return None


@dataclass
class NotifyListener:
    sock: socket.socket
    messages: dict[str, str] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    @property
    def guest_address(self) -> str:
        return f"vsock-stream:{VMADDR_CID_HOST}:{self.port}"

    def serve(self) -> None:
        """Each sd_notify call is one connection carrying one message until EOF."""
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed when the VM is gone
            with conn:
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
            self.messages.update(parse_messages(data))


@contextlib.contextmanager
def serving(sock: socket.socket) -> Iterator[NotifyListener]:
    """Collect the messages arriving on the listening socket sock until the block ends."""
    listener = NotifyListener(sock)
    thread = threading.Thread(target=listener.serve, daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        thread.join(timeout=2)


@contextlib.contextmanager
def vsock_notify_listener() -> Iterator[NotifyListener]:
    sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    sock.bind((socket.VMADDR_CID_ANY, socket.VMADDR_PORT_ANY))
    sock.listen(16)
    with serving(sock) as listener:
        yield listener
