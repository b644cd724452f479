"""Value types holding several things: lists, NAME=VALUE assignments, key sources, VM drives
and credentials."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from kosi.config.values.base import Origin, ValueType, invalid
from kosi.config.values.paths import PathValue, normalise
from kosi.config.values.scalar import Size
from kosi.errors import KosiError


class ListOf(ValueType):
    """A collection: items separated by commas, whitespace or newlines; assignments append.

    `separators` is a regular expression: most lists split on commas and whitespace, but
    some (KernelCommandLine=, Environment=, QemuArgs=) only on whitespace and a few only
    on newlines.
    """

    is_list = True

    def __init__(
        self,
        item: ValueType,
        separators: str = r"[,\s]+",
        unique: bool = False,
        shell: bool = False,
        sort: Any = None,
        null_when_unset: bool = False,
    ):
        self.item = item
        #: a sort key: printed sorted by it, as mkosi prints package lists
        self.sort = sort
        #: printed as null rather than [] while nothing assigns it (mkosi's ProxyExclude=)
        self.null_when_unset = null_when_unset
        self.separators = separators
        self.unique = unique
        #: split like a shell would (QemuArgs=, UnitProperties=): quotes keep spaces inside one item
        self.shell = shell
        self.metavar = item.metavar

    @property
    def choices(self) -> Sequence[str]:  # type: ignore[override]
        return self.item.choices

    def split(self, text: str) -> list[str]:
        if self.shell:
            import shlex

            try:
                return shlex.split(text)
            except ValueError:  # an unbalanced quote: fall back to plain words rather than failing
                return text.split()
        return [word for word in re.split(self.separators, text) if word]

    def parse(self, setting, text, origin):
        parsed = (self.item.parse(setting, word, origin) for word in self.split(text))
        return [item for item in parsed if item is not None]  # None: an item left out (ScriptPath)

    def to_json(self, value):
        items = [self.item.to_json(v) for v in value]
        return sorted(items, key=self.sort) if self.sort else items

    def from_json(self, value):
        return [self.item.from_json(v) for v in value]

    def text(self, value):
        """The items as one assignment of them: comma-separated where commas separate items,
        else space-separated (shell-quoted for shell-split lists)."""
        if not isinstance(value, (list, tuple)):
            return self.item.text(value)
        words = [self.item.text(v) for v in value]
        if self.shell:
            import shlex

            return shlex.join(words)
        return (", " if re.fullmatch(self.separators, ",") else " ").join(words)

    def describe(self):
        return "a list of " + self.item.describe()


class Assignments(ValueType):
    """`KEY=VALUE` words (Environment=) or bare names passed through from the caller's environment."""

    is_list = True
    metavar = "NAME[=VALUE]"

    def __init__(self, passthrough: bool = True, any_key: bool = False):
        self.passthrough = passthrough
        #: OciLabels=/OciAnnotations=: keys are any word (org.opencontainers.image.title), and
        #: a bare word is a key with an empty value, as mkosi 27.1 reads them
        self.any_key = any_key

    def parse(self, setting, text, origin):
        import os
        import shlex

        try:
            words = shlex.split(text)
        except ValueError as e:
            raise invalid(setting, text, f"{self.describe()} ({e})", origin) from None
        result = {}
        for word in words:
            key, sep, value = word.partition("=")
            if self.any_key:
                if not key.strip():
                    raise invalid(setting, word, "KEY=VALUE pairs with a non-empty key", origin)
                result[key.strip()] = value.strip()
                continue
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise invalid(setting, word, "NAME=VALUE assignments with a valid variable name", origin)
            if sep:
                result[key] = value
            elif self.passthrough:  # the caller's value; empty when it has none, as mkosi
                result[key] = os.environ.get(key, "")
            else:
                raise invalid(setting, word, "KEY=VALUE pairs", origin)
        return [result]

    def to_json(self, value):
        # Later assignments of a variable win, so the merged view is what scripts see.
        merged: dict[str, str] = {}
        for item in value if isinstance(value, list) else [value]:
            merged.update(item)
        return merged

    def from_json(self, value):
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            return [dict(v) for v in value]
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ValueError("expected an object of NAME: VALUE strings")
        return [dict(value)] if value else []

    def text(self, value):
        return " ".join(f"{k}={v}" for k, v in self.to_json(value).items())

    def describe(self):
        if not self.passthrough:
            return "space-separated KEY=VALUE assignments"
        return "space-separated NAME=VALUE assignments or variable names"


@dataclass(frozen=True)
class KeySource:
    """Where a private key or certificate comes from: a file, an OpenSSL engine or provider."""

    type: str = "file"  # "file", "engine" or "provider"
    source: str = ""  # the engine's or provider's name

    def to_json(self) -> dict[str, Any]:
        return {"Type": self.type, "Source": self.source}

    def text(self) -> str:
        return f"{self.type}:{self.source}" if self.source else self.type


class KeySourceType(ValueType):
    metavar = "SOURCE"
    choices = ("file", "engine:", "provider:")

    def __init__(self, engines: bool = True):
        # Certificates can only come from providers: OpenSSL engines do not load certificates.
        self.engines = engines

    def parse(self, setting, text, origin):
        kind, sep, name = text.strip().partition(":")
        kinds = ("file", "engine", "provider") if self.engines else ("file", "provider")
        if kind not in kinds or (kind == "file" and sep) or (kind != "file" and not name):
            raise invalid(setting, text, self.describe(), origin)
        return KeySource(kind, name)

    def to_json(self, value):
        return value.to_json()

    def from_json(self, value):
        if value["Type"] not in ("file", "engine", "provider"):
            raise ValueError(f"unknown key source type {value['Type']!r}")
        return KeySource(value["Type"], value.get("Source") or "")

    def text(self, value):
        return value.text() if isinstance(value, KeySource) else str(value)

    def describe(self):
        return "'file', " + ("'engine:NAME' or " if self.engines else "") + "'provider:NAME'"


@dataclass(frozen=True)
class Drive:
    """One Drives= entry: a block device for the VM backed by a file."""

    id: str
    size: int
    directory: Path | None = None  # None: /var/tmp
    options: str | None = None  # passed verbatim to qemu's -blockdev
    file_id: str = ""  # drives with the same file ID share the backing file; "" means the drive ID
    flags: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Size": self.size,
            "Directory": str(self.directory) if self.directory else None,
            "Options": self.options,
            "FileId": self.file_id or self.id,
            "Flags": list(self.flags),
        }

    def text(self) -> str:
        """ID:SIZE, then only as many of the optional fields as are set, as it is written."""
        fields = [self.id, Size().text(self.size), str(self.directory or ""), self.options or ""]
        fields += [self.file_id if self.file_id != self.id else "", ",".join(self.flags)]
        while len(fields) > 2 and not fields[-1]:
            fields.pop()
        return ":".join(fields)


DRIVE_FLAGS = ("persist",)


class DriveValue(ValueType):
    metavar = "ID:SIZE[:DIR[:OPTIONS[:FILE-ID[:FLAGS]]]]"

    def parse(self, setting, text, origin):
        parts = text.strip().split(":")
        if len(parts) < 2 or len(parts) > 6 or not parts[0]:
            raise invalid(setting, text, self.describe(), origin)
        parts += [""] * (6 - len(parts))
        ident, size, directory, options, file_id, flags = parts
        flag_words = tuple(f for f in flags.split(",") if f)
        unknown = [f for f in flag_words if f not in DRIVE_FLAGS]
        if unknown:
            raise invalid(setting, text, self.describe() + " with FLAGS from: " + ", ".join(DRIVE_FLAGS), origin)
        return Drive(
            id=ident,
            size=Size().parse(setting, size, origin),
            directory=PathValue(required=False).resolve(setting, directory, origin) if directory else None,
            options=options or None,
            file_id=file_id or ident,
            flags=flag_words,
        )

    def to_json(self, value):
        return value.to_json()

    def from_json(self, value):
        return Drive(
            value["Id"],
            int(value["Size"]),
            Path(value["Directory"]) if value.get("Directory") else None,
            value.get("Options"),
            value.get("FileId") or value["Id"],
            tuple(value.get("Flags") or ()),
        )

    def text(self, value):
        return value.text() if isinstance(value, Drive) else str(value)

    def describe(self):
        return "ID:SIZE[:DIRECTORY[:OPTIONS[:FILE-ID[:FLAGS]]]] with a size such as 10G"


class Credential(tuple):
    """One credential: a (NAME, VALUE) pair that also remembers the file it was read from."""

    path: Path | None

    def __new__(cls, name: str, value: str, path: Path | None = None) -> "Credential":
        self = super().__new__(cls, (name, value))
        self.path = path
        return self

    @property
    def name(self) -> str:
        return self[0]

    @property
    def value(self) -> str:
        return self[1]


class CredentialsValue(ValueType):
    """Credentials=: `NAME=VALUE` words, or files and directories whose files become credentials
    named after them (an executable file's output is the value). Files are read when parsed, so
    the value is a list of (name, value) pairs; later pairs of the same name win."""

    is_list = True
    metavar = "NAME=VALUE|PATH"

    def parse(self, setting, text, origin):
        pairs: list[tuple[str, str]] = []
        for word in text.split():
            name, sep, value = word.partition("=")
            if sep and name and "/" not in name:
                pairs.append(Credential(name, value))
                continue
            path = Path(normalise(origin.directory / Path(word).expanduser()))
            if path.is_dir():
                pairs += [
                    Credential(f.name, read_credential(setting, f, origin), f)
                    for f in sorted(path.iterdir())
                    if f.is_file()
                ]
            elif path.is_file():
                pairs.append(Credential(path.name, read_credential(setting, path, origin), path))
            else:
                raise invalid(setting, word, "NAME=VALUE or an existing file or directory", origin)
        return pairs

    def to_json(self, value):
        # As mkosi: one object per credential, the file's path instead of its value when read from one.
        return [
            {
                "Name": c[0],
                "Path": str(getattr(c, "path", None) or "") or None,
                "Value": None if getattr(c, "path", None) else c[1],
            }
            for c in value
        ]

    def from_json(self, value):
        if isinstance(value, dict):  # the older shape, NAME: VALUE
            return [Credential(str(k), str(v)) for k, v in value.items()]
        if not isinstance(value, list):
            raise ValueError("expected a list of {Name, Path, Value} objects")
        result = []
        for item in value:
            path = Path(item["Path"]) if item.get("Path") else None
            text = item.get("Value")
            if text is None and path is not None:
                text = path.read_bytes().decode(errors="surrogateescape")
            result.append(Credential(str(item["Name"]), str(text or ""), path))
        return result

    def text(self, value):
        """The names only, as mkosi's summary shows them: values are often secrets."""
        return ", ".join(c[0] for c in value)

    def describe(self):
        return "space-separated NAME=VALUE pairs or paths to credential files"


def read_credential(setting: str, path: Path, origin: Origin) -> str:
    import os
    import subprocess

    if os.access(path, os.X_OK):
        result = subprocess.run([str(path)], stdin=subprocess.DEVNULL, capture_output=True, check=False)
        if result.returncode != 0:
            raise KosiError(
                f"{setting}=: {path} exited with status {result.returncode}", file=origin.file, line=origin.line
            )
        return result.stdout.decode(errors="surrogateescape")
    # surrogateescape: binary credentials come back byte for byte (kosi.run.credentials encodes them)
    return path.read_bytes().decode(errors="surrogateescape")
