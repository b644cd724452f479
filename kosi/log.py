"""Logging to stderr, with colour unless NO_COLOR is set or stderr is not a terminal.

While a build step runs, the output of the tools it runs is "chatter" (systemctl's "Created
symlink ...", apt's progress): `chatter()` collects it instead of showing it, so the runner can
show it only when the step fails. With --debug nothing is collected and tools write live.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

DEBUG = False

#: where tool output goes while a build step runs (None: straight to our stdout/stderr)
_chatter: list[bytes] | None = None


def colour_enabled() -> bool:
    return "NO_COLOR" not in os.environ and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


def paint(code: str, text: str) -> str:
    """`text` in the SGR colour `code` when colour is enabled."""
    return f"\033[{code}m{text}\033[0m" if colour_enabled() else text


def info(message: str) -> None:
    print(message, file=sys.stderr)


def step(message: str) -> None:
    print(paint("1", f"‣ {message}"), file=sys.stderr)


#: characters a message must not carry to the terminal as they are: control characters (an
#: escape sequence from a configuration file would be the terminal's to act on), line and
#: paragraph separators (a one-line message stays one line) and bidirectional overrides
_UNPRINTABLE = {
    c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"
    for c in [*range(0x00, 0x09), *range(0x0A, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029,
              *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
}  # fmt: skip


def printable(message: str) -> str:
    """`message` with what a terminal would act on escaped (\\x1b, \\u202e, ...)."""
    return message.translate(_UNPRINTABLE)


def warn(message: str) -> None:
    print(paint("33", f"warning: {printable(message)}"), file=sys.stderr)


def error(message: str) -> None:
    print(paint("31;1", f"error: {printable(message)}"), file=sys.stderr)


def debug(message: str) -> None:
    if DEBUG:
        print(paint("2", message), file=sys.stderr)


@contextlib.contextmanager
def chatter() -> Iterator[list[bytes]]:
    """Collect the output of the tools run inside the block (nothing is collected with --debug)."""
    global _chatter
    saved = _chatter
    collected: list[bytes] = []
    _chatter = None if DEBUG else collected
    try:
        yield collected
    finally:
        _chatter = saved


def chatter_sink() -> list[bytes] | None:
    """Where a tool's output goes instead of the terminal, or None to show it."""
    return _chatter
