"""Reading one mkosi configuration file into sections of `Key=Value` entries.

The parser knows nothing about settings; it keeps the file and line of every entry so that
errors and warnings can point at them. Lines starting with whitespace continue the value of
the previous entry (joined with a newline), which is how lists are spread over lines.

As in mkosi 27.1, a `#` anywhere on a line starts a comment that runs to the end of the line
(`Incremental=yes  # saves time`, also without whitespace before it and inside values), and
`;` starts no comment: a line beginning with it is an entry without `=`, an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kosi.errors import KosiError, shown


@dataclass(frozen=True)
class Entry:
    key: str
    value: str
    line: int


@dataclass
class Section:
    name: str
    line: int
    entries: list[Entry] = field(default_factory=list)


def parse_ini_text(text: str, file: str) -> list[Section]:
    sections: list[Section] = []
    current: Section | None = None
    # (key, value lines, line number) of the entry that continuation lines extend
    pending: tuple[str, list[str], int] | None = None

    def flush() -> None:
        nonlocal pending
        if pending is not None and current is not None:
            key, lines, lineno = pending
            current.entries.append(Entry(key, "\n".join(lines).strip(), lineno))
        pending = None

    for lineno, line in enumerate(text.split("\n"), start=1):
        raw = line.partition("#")[0]
        stripped = raw.strip()
        if not stripped:
            continue
        if raw[0].isspace() and pending is not None:
            pending[1].append(stripped)
            continue
        flush()
        if stripped.startswith("["):
            if not stripped.endswith("]") or len(stripped) < 3:
                raise KosiError(f"malformed section header {shown(stripped)}", file=file, line=lineno)
            current = Section(stripped[1:-1].strip(), lineno)
            sections.append(current)
            continue
        if current is None:
            raise KosiError(f"{shown(stripped)} is outside of any [Section]", file=file, line=lineno)
        key, sep, value = stripped.partition("=")
        if not sep:
            raise KosiError(f"expected Key=Value, got {shown(stripped)}", file=file, line=lineno)
        key = key.strip()
        if not key:
            raise KosiError(f"missing setting name before '=' in {shown(stripped)}", file=file, line=lineno)
        pending = (key, [value.strip()], lineno)
    flush()
    return sections


def parse_ini(path: Path) -> list[Section]:
    try:
        if path.exists() and not path.is_file():  # a FIFO would block, a directory cannot be read
            raise KosiError("configuration file is not a regular file", file=str(path))
        data = path.read_bytes()
    except OSError as e:
        raise KosiError(f"cannot read configuration file: {e.strerror}", file=str(path)) from None
    try:
        text = data.decode()
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise KosiError("configuration file is not valid UTF-8", file=str(path), line=line) from None
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise KosiError("configuration file contains a NUL byte", file=str(path), line=line)
    # the universal newlines of Python's text files, as a file read line by line has them
    return parse_ini_text(text.replace("\r\n", "\n").replace("\r", "\n"), str(path))
