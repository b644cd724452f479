"""Logging to stderr, with colour unless NO_COLOR is set or stderr is not a terminal."""

from __future__ import annotations

import os
import sys

DEBUG = False


def colour_enabled() -> bool:
    return "NO_COLOR" not in os.environ and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


def _paint(code: str, text: str) -> str:
    return f"\033[{code}m{text}\033[0m" if colour_enabled() else text


def info(message: str) -> None:
    print(message, file=sys.stderr)


def step(message: str) -> None:
    print(_paint("1", f"‣ {message}"), file=sys.stderr)


def warn(message: str) -> None:
    print(_paint("33", f"warning: {message}"), file=sys.stderr)


def error(message: str) -> None:
    print(_paint("31;1", f"error: {message}"), file=sys.stderr)


def debug(message: str) -> None:
    if DEBUG:
        print(_paint("2", message), file=sys.stderr)
