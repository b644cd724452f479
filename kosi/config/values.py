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
from typing import Any, Callable, Sequence

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

    def target_under(self, base: str) -> str:
        """The absolute target: a relative one (or none) is below `base`."""
        import os.path

        return os.path.normpath(os.path.join(base, self.target or ""))


TRUE_WORDS = {"1", "yes", "y", "true", "t", "on", "enable", "enabled"}
FALSE_WORDS = {"0", "no", "n", "false", "f", "off", "disable", "disabled"}


def parse_boolean(text: str) -> bool | None:
    low = text.strip().lower()
    if low in TRUE_WORDS:
        return True
    if low in FALSE_WORDS:
        return False
    return None


def invalid(setting: str, value: str, allowed: str, origin: Origin, *, hint: str | None = None) -> KosiError:
    return KosiError(
        f"{setting}=: invalid value {value!r}, expected {allowed}", file=origin.file, line=origin.line, hint=hint
    )


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

    def to_json(self, value):
        return value.value if isinstance(value, Feature) else value

    def from_json(self, value):
        if isinstance(value, bool):
            return Feature.enabled if value else Feature.disabled
        return Feature(value)

    def describe(self):
        return "a boolean or 'auto'"


class Choice(ValueType):
    """One word out of a fixed set; aliases map old spellings to the canonical one."""

    metavar = "CHOICE"

    def __init__(
        self,
        *words: str,
        aliases: dict[str, str] | None = None,
        booleans: tuple[str, str] | None = None,
        source: Callable[[], Sequence[str]] | None = None,
        json_names: dict[str, str] | None = None,
    ):
        self.words = words
        #: where the words come from when a registry owns them (Format=, Distribution=); asked on first use
        self.source = source
        self.aliases = aliases or {}
        #: words written differently in JSON (mkosi prints CompressOutput=gzip as "gz")
        self.json_names = json_names or {}
        # Some enums also take a boolean, e.g. CompressOutput=yes means the default algorithm.
        self.booleans = booleans

    @property
    def choices(self) -> Sequence[str]:  # type: ignore[override]
        return tuple(self.source()) if self.source is not None else self.words

    def parse(self, setting, text, origin):
        word = text.strip()
        word = self.aliases.get(word, word)
        if word in self.choices:
            return word
        if self.booleans is not None:
            value = parse_boolean(word)
            if value is not None:
                return self.booleans[0] if value else self.booleans[1]
        import difflib  # only on the error path: start-up stays fast

        close = difflib.get_close_matches(word, self.choices, n=1)
        raise invalid(setting, text, self.describe(), origin, hint=f"did you mean {close[0]}?" if close else None)

    def to_json(self, value):
        return self.json_names.get(value, value)

    def from_json(self, value):
        if isinstance(value, bool) and self.booleans is not None:
            return self.booleans[0] if value else self.booleans[1]
        value = {v: k for k, v in self.json_names.items()}.get(value, value)
        if value not in self.choices:
            raise ValueError(f"{value!r} is not {self.describe()}")
        return value

    def describe(self):
        extra = " or a boolean" if self.booleans else ""
        return "one of " + ", ".join(self.choices) + extra


class Integer(ValueType):
    metavar = "INTEGER"

    def __init__(self, minimum: int | None = None, maximum: int | None = None, power_of_two: bool = False):
        self.minimum, self.maximum = minimum, maximum
        self.power_of_two = power_of_two

    def parse(self, setting, text, origin):
        try:
            value = int(text.strip(), 0)
        except ValueError:
            raise invalid(setting, text, self.describe(), origin) from None
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise invalid(setting, text, self.describe(), origin)
        if self.power_of_two and value & (value - 1):
            raise invalid(setting, text, self.describe(), origin)
        return value

    def from_json(self, value):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{value!r} is not an integer")
        return value

    def describe(self):
        if self.power_of_two:
            return f"a power of two between {self.minimum} and {self.maximum}"
        if self.minimum is not None and self.maximum is not None:
            return f"an integer between {self.minimum} and {self.maximum}"
        if self.minimum is not None:
            return f"an integer of at least {self.minimum}"
        return "an integer"


SIZE_SUFFIXES = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


class Size(ValueType):
    """A size in bytes, with optional K/M/G/T suffixes (powers of 1024) and a fraction (1.5G);
    rounded up to a multiple of 4096, as mkosi does."""

    metavar = "SIZE"
    ALIGNMENT = 4096

    def parse(self, setting, text, origin):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGTB]?)(?:i?B)?\s*", text, re.IGNORECASE)
        if not match:
            raise invalid(setting, text, self.describe(), origin)
        from fractions import Fraction

        size = Fraction(match.group(1)) * SIZE_SUFFIXES[match.group(2).upper()]
        blocks = -(-size // self.ALIGNMENT)  # ceil
        return int(blocks) * self.ALIGNMENT

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
        if word == "random":  # mkosi picks the UUID while parsing, so the summary shows it
            return str(uuid.uuid4())
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
    """`source[:target]`. The target is absolute inside the image, or (`relative_targets`, as
    mkosi 27.1 allows for BuildSources= and RuntimeTrees=) kept relative to where the trees are
    mounted, which the code mounting them knows (`Tree.target_under`)."""

    metavar = "SOURCE[:TARGET]"

    def __init__(self, required: bool = True, relative_targets: bool = False):
        super().__init__(required=required)
        self.relative_targets = relative_targets

    def parse(self, setting, text, origin):
        source, sep, target = text.partition(":")
        path = self.resolve(setting, source, origin)
        if not sep or not target:
            return Tree(path, None)
        if not target.startswith("/"):
            if not self.relative_targets:
                raise invalid(setting, text, "an absolute target path after ':'", origin)
            return Tree(path, target)
        return Tree(path, normalise(Path(target)))

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
        return [self.item.parse(setting, word, origin) for word in self.split(text)]

    def to_json(self, value):
        items = [self.item.to_json(v) for v in value]
        return sorted(items, key=self.sort) if self.sort else items

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

        try:
            words = shlex.split(text)
        except ValueError as e:
            raise invalid(setting, text, f"{self.describe()} ({e})", origin) from None
        result = {}
        for word in words:
            key, sep, value = word.partition("=")
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

    def describe(self):
        if not self.passthrough:
            return "space-separated KEY=VALUE assignments"
        return "space-separated NAME=VALUE assignments or variable names"


class ImagePath(String):
    """An absolute path inside the image (Splash=)."""

    metavar = "PATH"

    def parse(self, setting, text, origin):
        word = text.strip()
        if not word.startswith("/"):
            raise invalid(setting, text, self.describe(), origin)
        return word

    def describe(self):
        return "an absolute path inside the image"


class Regex(String):
    """A regular expression (KernelModulesExclude=, FirmwareExclude=): kept with a `re:` prefix,
    the form KernelModules= and FirmwareFiles= take regular expressions in, as mkosi prints it."""

    metavar = "REGEX"

    def parse(self, setting, text, origin):
        return f"re:{text.strip()}"

    def describe(self):
        return "a regular expression"


class Password(String):
    """RootPassword=: a password, or a hash when written `hashed:HASH`. JSON: [TEXT, IS_HASHED]."""

    metavar = "PASSWORD"

    def to_json(self, value):
        if value.startswith("hashed:"):
            return [value.removeprefix("hashed:"), True]
        return [value, False]

    def from_json(self, value):
        if isinstance(value, list):
            text, hashed = value
            return f"hashed:{text}" if hashed else text
        return value


class Version(String):
    """A version such as `1.2~rc1` (ImageVersion=, MinimumVersion=): one word, no whitespace."""

    metavar = "VERSION"

    def parse(self, setting, text, origin):
        word = text.strip()
        if not word or re.search(r"\s", word):
            raise invalid(setting, text, self.describe(), origin)
        return word

    def describe(self):
        return "a version without whitespace, e.g. 1.2.3"


class FileName(String):
    """A file name without directories (Output=, UnifiedKernelImageFormat=)."""

    metavar = "NAME"

    def parse(self, setting, text, origin):
        word = text.strip()
        if "/" in word or word in (".", ".."):
            raise invalid(setting, text, self.describe(), origin)
        return word

    def describe(self):
        return "a file name without '/'"


class IntegerOrWords(Integer):
    """An integer in a range, or one of a few words (VSockCID= takes hash or auto)."""

    def __init__(
        self,
        *words: str,
        minimum: int | None = None,
        maximum: int | None = None,
        json_numbers: dict[str, int] | None = None,
    ):
        super().__init__(minimum, maximum)
        self.choices = words
        #: how each word is written in JSON (mkosi prints VSockCID=auto as -1, hash as -2)
        self.json_numbers = json_numbers or {}

    def parse(self, setting, text, origin):
        word = text.strip()
        if word in self.choices:
            return word
        return super().parse(setting, text, origin)

    def to_json(self, value):
        return self.json_numbers.get(value, value) if isinstance(value, str) else value

    def from_json(self, value):
        words = {number: word for word, number in self.json_numbers.items()}
        if not isinstance(value, bool) and value in words:
            return words[value]
        return value if value in self.choices else super().from_json(value)

    def describe(self):
        return super().describe() + " or one of " + ", ".join(self.choices)


class PathOrWords(PathValue):
    """A path, or one of a few special words (ToolsTree=default, FirmwareVariables=microsoft)."""

    def __init__(self, *words: str, required: bool = True):
        super().__init__(required=required)
        self.choices = words

    def parse(self, setting, text, origin):
        word = text.strip()
        if word in self.choices:
            return word
        return self.resolve(setting, text, origin)

    def from_json(self, value):
        return value if value in self.choices or value is None else Path(value)

    def describe(self):
        return "a path or one of " + ", ".join(self.choices)


class KeyPath(PathValue):
    """A key or certificate: a PEM file, or a URI such as `pkcs11:...` when a *Source= names an
    engine or provider that understands it (the manual: "the input type depends on the source")."""

    metavar = "PATH|URI"

    @staticmethod
    def is_uri(text: str) -> bool:
        return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", text) is not None and not text.startswith(("/", "."))

    def parse(self, setting, text, origin):
        word = text.strip()
        if self.is_uri(word):
            return word
        return self.resolve(setting, word, origin)

    def from_json(self, value):
        if value is None or self.is_uri(value):
            return value
        return Path(value)

    def describe(self):
        return "a path to a PEM file or a key URI such as pkcs11:..."


@dataclass(frozen=True)
class KeySource:
    """Where a private key or certificate comes from: a file, an OpenSSL engine or provider."""

    type: str = "file"  # "file", "engine" or "provider"
    source: str = ""  # the engine's or provider's name

    def to_json(self) -> dict[str, Any]:
        return {"Type": self.type, "Source": self.source}


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


class DelayedPath(PathValue):
    """A path that may start with a delayed &-specifier (Linux=&b/...), kept as written until the
    build knows what it expands to."""

    def parse(self, setting, text, origin):
        word = text.strip()
        if word.startswith("&"):
            return word
        return self.resolve(setting, word, origin)

    def from_json(self, value):
        return value if value is None or value.startswith("&") else Path(value)
