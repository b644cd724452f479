"""Value types holding one word or number: booleans, choices, integers, sizes, modes, UUIDs,
versions and the other single-word strings."""

from __future__ import annotations

import enum
import math
import re
import uuid
from typing import Callable, Sequence

from kosi.config.values.base import ValueType, invalid, parse_boolean


class Feature(enum.Enum):
    """A boolean that may also be left to kosi to decide (yes/no/auto)."""

    enabled = "enabled"
    disabled = "disabled"
    auto = "auto"

    def __bool__(self) -> bool:  # `auto` must be resolved explicitly, never by truthiness
        raise TypeError("Feature values must be compared, not used as booleans")


class String(ValueType):
    metavar = "STRING"

    def parse(self, setting, text, origin):
        return text


class OpenWord(String):
    """Any word: `choices` are only offered (shell completion, and the words mkosi 27.1's
    command line takes for the option), a configuration file may name others."""

    def __init__(self, *words: str):
        self.choices = words


class Boolean(ValueType):
    metavar = "BOOL"
    choices = ("yes", "no")

    def parse(self, setting, text, origin):
        value = parse_boolean(text)
        if value is None:
            raise invalid(setting, text, "a boolean (yes/no, true/false, 1/0, on/off)", origin)
        return value

    def text(self, value):
        return ("yes" if value else "no") if isinstance(value, bool) else str(value)

    def describe(self):
        return "a boolean"


class FeatureType(ValueType):
    metavar = "FEATURE"
    choices = ("yes", "no", "auto")

    def parse(self, setting, text, origin):
        word = text.strip()
        if word in ("auto", "enabled", "disabled"):  # lower case only, as mkosi 27.1
            return Feature(word)
        value = parse_boolean(word)
        if value is None:
            raise invalid(setting, text, self.describe(), origin)
        return Feature.enabled if value else Feature.disabled

    def to_json(self, value):
        return value.value if isinstance(value, Feature) else value

    def from_json(self, value):
        if isinstance(value, bool):
            return Feature.enabled if value else Feature.disabled
        return Feature(value)

    def text(self, value):
        if isinstance(value, bool):
            return "yes" if value else "no"
        return value.value if isinstance(value, Feature) else str(value)

    def describe(self):
        return "a boolean, 'enabled', 'disabled' or 'auto'"


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
            # Decimal only, as mkosi 27.1: 010 is ten, 0x10 and 0o10 are refused; a sign, digits
            # grouped by underscores (1_000) and surrounding whitespace are fine.
            value = int(text.strip(), 10)
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


SIZE_SUFFIXES = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


class Size(ValueType):
    """A size in bytes: a number (a fraction too, 1.5G) with an optional K, M or G suffix (powers
    of 1024, upper case only, as mkosi 27.1), more than zero, rounded up to a multiple of 4096."""

    metavar = "SIZE"
    ALIGNMENT = 4096

    def parse(self, setting, text, origin):
        from fractions import Fraction

        word = text.strip()
        suffix = word[-1:] if word[-1:] in SIZE_SUFFIXES else ""
        try:
            number = float(word[: len(word) - len(suffix)])  # mkosi's spelling of numbers: 1e3, 1_000
        except ValueError:
            raise invalid(setting, text, self.describe(), origin) from None
        if not math.isfinite(number) or number <= 0:
            raise invalid(setting, text, self.describe(), origin)
        size = Fraction(number) * SIZE_SUFFIXES[suffix]
        blocks = -(-size // self.ALIGNMENT)  # ceil
        return int(blocks) * self.ALIGNMENT

    def text(self, value):
        """The largest unit that divides the size: 2147483648 is 2G."""
        if not isinstance(value, int):
            return str(value)
        for unit in "GMK":
            factor = SIZE_SUFFIXES[unit]
            if value >= factor and value % factor == 0:
                return f"{value // factor}{unit}"
        return str(value)

    def describe(self):
        return "a size in bytes (more than 0) with an optional K, M or G suffix"


class Mode(ValueType):
    metavar = "MODE"

    def parse(self, setting, text, origin):
        try:
            value = int(text.strip(), 8)
        except ValueError:
            raise invalid(setting, text, self.describe(), origin) from None
        if not 0 <= value <= 0o1777:  # as mkosi 27.1: no set-user-ID or set-group-ID bits
            raise invalid(setting, text, self.describe(), origin)
        return value

    def text(self, value):
        return f"{value:04o}" if isinstance(value, int) else str(value)

    def describe(self):
        return "an octal access mode between 0 and 1777, such as 0644"


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


#: Words the older regular-expression spellings (KernelModulesInclude=, FirmwareInclude=, ...)
#: keep as they are: the default initrd's modules and the host's loaded ones.
REGEX_KEYWORDS = ("default", "host")


def as_regular_expressions(words: list[str]) -> list[str]:
    """Items of an older regular-expression setting, as mkosi 27.1 keeps them in the glob list
    that replaced it: `re:` before each, except the keywords `default` and `host`."""
    return [word if word in REGEX_KEYWORDS else f"re:{word}" for word in words]


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
