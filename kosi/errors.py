"""The one exception type users see, printed as a single line without traceback."""

from __future__ import annotations


def shown(text: str, limit: int = 80) -> str:
    """`text` quoted for a message, cut short when long (a message stays one readable line)."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


class KosiError(Exception):
    """An error caused by the user's input or environment.

    The CLI prints it as one line (``file:line: message`` when a location is known)
    and exits with `status`: 1, or 2 for a malformed command line (as mkosi 27.1's argparse);
    the traceback is only shown with --debug.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        hint: str | None = None,
        status: int = 1,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.file = file
        self.line = line
        self.hint = hint

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        text = f"{where}{self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text
