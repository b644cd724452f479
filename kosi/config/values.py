"""Value types of settings: how one assignment is parsed, merged, shown and serialised.

Every setting in the table (settings.py) names one of these types. A type turns the raw
text of one assignment into a Python value, and converts values to and from the JSON
that `kosi --json summary` prints and mkosi.configure scripts read.
"""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from kosi.errors import KosiError


@dataclass(frozen=True)
class Origin:
    """Where an assignment came from: a file and line, or the command line."""

    file: str | None = None  # None means the command line
    line: int | None = None
    directory: Path = Path(".")  # what relative paths are resolved against
    local: bool = False  # mkosi.local.conf / mkosi.local/

    @property
    def cli(self) -> bool:
        return self.file is None

    def where(self) -> str:
        if self.file is None:
            return "command line"
        return f"{self.file}:{self.line}" if self.line else self.file


class Feature(enum.Enum):
    """A boolean that may also be left to kosi to decide (yes/no/auto)."""

    enabled = "enabled"
    disabled = "disabled"
    auto = "auto"

    def __bool__(self) -> bool:  # `auto` must be resolved explicitly, never by truthiness
        raise TypeError("Feature values must be compared, not used as booleans")


@dataclass(frozen=True)
class Tree:
    """A `source[:target]` pair as used by SkeletonTrees=, ExtraTrees=, BuildSources=, ..."""

    source: Path
    target: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"Source": str(self.source), "Target": self.target}


TRUE_WORDS = {"1", "yes", "y", "true", "t", "on", "enable", "enabled"}
FALSE_WORDS = {"0", "no", "n", "false", "f", "off", "disable", "disabled"}


def parse_boolean(text: str) -> bool | None:
    low = text.strip().lower()
    if low in TRUE_WORDS:
        return True
    if low in FALSE_WORDS:
        return False
    return None


def invalid(setting: str, value: str, allowed: str, origin: Origin) -> KosiError:
    return KosiError(f"{setting}=: invalid value {value!r}, expected {allowed}", file=origin.file, line=origin.line)


class ValueType:
    """Base of all value types. Scalar types replace earlier assignments; list types append."""

    is_list = False
    metavar = "VALUE"
    #: words offered by shell completion and shown in documentation
    choices: Sequence[str] = ()

    def parse(self, setting: str, text: str, origin: Origin) -> Any:
        raise NotImplementedError

    def to_json(self, value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, enum.Enum):
            return value.value
        if isinstance(value, Tree):
            return value.to_json()
        if isinstance(value, list):
            return [self.to_json(v) for v in value]
        if isinstance(value, dict):
            return {k: self.to_json(v) for k, v in value.items()}
        return value

    def from_json(self, value: Any) -> Any:
        return value

    def describe(self) -> str:
        """A short human description of the allowed values, for errors and docs."""
        return self.metavar.lower()


class String(ValueType):
    metavar = "STRING"

    def parse(self, setting, text, origin):
        return text


class Boolean(ValueType):
    metavar = "BOOL"
    choices = ("yes", "no")

    def parse(self, setting, text, origin):
        value = parse_boolean(text)
        if value is None:
            raise invalid(setting, text, "a boolean (yes/no, true/false, 1/0, on/off)", origin)
        return value

    def describe(self):
        return "a boolean"


class FeatureType(ValueType):
    metavar = "FEATURE"
    choices = ("yes", "no", "auto")

    def parse(self, setting, text, origin):
        if text.strip().lower() == "auto":
            return Feature.auto
        value = parse_boolean(text)
        if value is None:
            raise invalid(setting, text, "a boolean or 'auto'", origin)
        return Feature.enabled if value else Feature.disabled

    def from_json(self, value):
        return Feature(value)

    def describe(self):
        return "a boolean or 'auto'"


class Choice(ValueType):
    """One word out of a fixed set; aliases map old spellings to the canonical one."""

    metavar = "CHOICE"

    def __init__(self, *words: str, aliases: dict[str, str] | None = None, booleans: tuple[str, str] | None = None):
        self.choices = words
        self.aliases = aliases or {}
        # Some enums also take a boolean, e.g. CompressOutput=yes means the default algorithm.
        self.booleans = booleans

    def parse(self, setting, text, origin):
        word = text.strip()
        word = self.aliases.get(word, word)
        if word in self.choices:
            return word
        if self.booleans is not None:
            value = parse_boolean(word)
            if value is not None:
                return self.booleans[0] if value else self.booleans[1]
        raise invalid(setting, text, self.describe(), origin)

    def describe(self):
        extra = " or a boolean" if self.booleans else ""
        return "one of " + ", ".join(self.choices) + extra


class Integer(ValueType):
    metavar = "INTEGER"

    def __init__(self, minimum: int | None = None, maximum: int | None = None):
        self.minimum, self.maximum = minimum, maximum

    def parse(self, setting, text, origin):
        try:
            value = int(text.strip(), 0)
        except ValueError:
            raise invalid(setting, text, self.describe(), origin) from None
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise invalid(setting, text, self.describe(), origin)
        return value

    def describe(self):
        if self.minimum is not None and self.maximum is not None:
            return f"an integer between {self.minimum} and {self.maximum}"
        if self.minimum is not None:
            return f"an integer of at least {self.minimum}"
        return "an integer"


SIZE_SUFFIXES = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


class Size(ValueType):
    """A size in bytes, with optional K/M/G/T suffixes (powers of 1024)."""

    metavar = "SIZE"

    def parse(self, setting, text, origin):
        match = re.fullmatch(r"\s*(\d+)\s*([KMGTB]?)(?:i?B)?\s*", text, re.IGNORECASE)
        if not match:
            raise invalid(setting, text, self.describe(), origin)
        return int(match.group(1)) * SIZE_SUFFIXES[match.group(2).upper()]

    def describe(self):
        return "a size in bytes with an optional K, M, G or T suffix"


class Mode(ValueType):
    metavar = "MODE"

    def parse(self, setting, text, origin):
        try:
            value = int(text.strip(), 8)
        except ValueError:
            raise invalid(setting, text, self.describe(), origin) from None
        if not 0 <= value <= 0o7777:
            raise invalid(setting, text, self.describe(), origin)
        return value

    def describe(self):
        return "an octal access mode such as 0644"


class UUIDOrRandom(ValueType):
    metavar = "UUID"

    def parse(self, setting, text, origin):
        word = text.strip()
        if word == "random":
            return "random"
        try:
            return str(uuid.UUID(word))
        except ValueError:
            raise invalid(setting, text, self.describe(), origin) from None

    def describe(self):
        return "a UUID or 'random'"


class PathValue(ValueType):
    """A path, made absolute against the directory of the file that sets it.

    `required` paths must exist when parsed (ExtraTrees= of dependencies are the
    exception: the manual lets those be checked just before the image is built).
    """

    metavar = "PATH"

    def __init__(self, required: bool = True, absolute_only: bool = False):
        self.required = required
        self.absolute_only = absolute_only

    def resolve(self, setting: str, text: str, origin: Origin) -> Path:
        raw = text.strip()
        if raw.startswith("~"):
            path = Path(raw).expanduser()
        else:
            path = origin.directory / raw
        path = Path(*Path(str(path)).parts) if str(path) else path
        path = Path(normalise(path))
        if self.required and not path.exists():
            raise KosiError(f"{setting}=: {path} does not exist", file=origin.file, line=origin.line)
        return path

    def parse(self, setting, text, origin):
        return self.resolve(setting, text, origin)

    def from_json(self, value):
        return None if value is None else Path(value)

    def describe(self):
        return "a path"


def normalise(path: Path) -> str:
    """Make a path absolute and collapse `.` and `..` without resolving symlinks."""
    import os.path

    return os.path.normpath(os.path.abspath(path))


class TreeValue(PathValue):
    """`source[:target]`; the target is always absolute inside the image."""

    metavar = "SOURCE[:TARGET]"

    def __init__(self, required: bool = True, relative_target_base: str | None = None):
        super().__init__(required=required)
        self.relative_target_base = relative_target_base

    def parse(self, setting, text, origin):
        source, sep, target = text.partition(":")
        path = self.resolve(setting, source, origin)
        if not sep or not target:
            return Tree(path, None)
        if not target.startswith("/"):
            target = (self.relative_target_base or "") + "/" + target
        return Tree(path, normalise(Path(target)) if target.startswith("/") else target)

    def from_json(self, value):
        return None if value is None else Tree(Path(value["Source"]), value.get("Target"))

    def describe(self):
        return "a path, optionally followed by ':' and a target path"


class ListOf(ValueType):
    """A collection: items separated by commas, whitespace or newlines; assignments append.

    `separators` is a regular expression: most lists split on commas and whitespace, but
    some (KernelCommandLine=, Environment=, QemuArgs=) only on whitespace and a few only
    on newlines.
    """

    is_list = True

    def __init__(self, item: ValueType, separators: str = r"[,\s]+", unique: bool = False):
        self.item = item
        self.separators = separators
        self.unique = unique
        self.metavar = item.metavar
        self.choices = item.choices

    def split(self, text: str) -> list[str]:
        return [word for word in re.split(self.separators, text) if word]

    def parse(self, setting, text, origin):
        return [self.item.parse(setting, word, origin) for word in self.split(text)]

    def to_json(self, value):
        return [self.item.to_json(v) for v in value]

    def from_json(self, value):
        return [self.item.from_json(v) for v in value]

    def describe(self):
        return "a list of " + self.item.describe()


class Assignments(ValueType):
    """`KEY=VALUE` words (Environment=) or bare names passed through from the caller's environment."""

    is_list = True
    metavar = "NAME[=VALUE]"

    def __init__(self, passthrough: bool = True):
        self.passthrough = passthrough

    def parse(self, setting, text, origin):
        import os
        import shlex

        result = {}
        for word in shlex.split(text):
            key, sep, value = word.partition("=")
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise invalid(setting, word, "NAME=VALUE assignments with a valid variable name", origin)
            if sep:
                result[key] = value
            elif self.passthrough:
                if key in os.environ:
                    result[key] = os.environ[key]
            else:
                raise invalid(setting, word, "KEY=VALUE pairs", origin)
        return [result]

    def describe(self):
        return "space-separated NAME=VALUE assignments or variable names"
