"""What every value type shares: where an assignment came from, the base class, and the errors.

The types themselves are grouped by what they hold: `scalar` (one word or number), `paths`
(files and trees on the host), `compound` (lists, assignments and structured entries).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from kosi.errors import KosiError, shown


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


# As mkosi 27.1 (any case): it refuses enable/enabled/disable/disabled as booleans.
TRUE_WORDS = {"1", "yes", "y", "true", "t", "on"}
FALSE_WORDS = {"0", "no", "n", "false", "f", "off"}


def parse_boolean(text: str) -> bool | None:
    low = text.strip().lower()
    if low in TRUE_WORDS:
        return True
    if low in FALSE_WORDS:
        return False
    return None


def invalid(setting: str, value: str, allowed: str, origin: Origin, *, hint: str | None = None) -> KosiError:
    return KosiError(
        f"{setting}=: invalid value {shown(value)}, expected {allowed}", file=origin.file, line=origin.line, hint=hint
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
        if hasattr(value, "to_json"):  # Tree, KeySource, Drive: structured values know their JSON
            return value.to_json()
        if isinstance(value, list):
            return [self.to_json(v) for v in value]
        if isinstance(value, dict):
            return {k: self.to_json(v) for k, v in value.items()}
        return value

    def from_json(self, value: Any) -> Any:
        return value

    def text(self, value: Any) -> str:
        """A value as a person writes it in mkosi.conf (`kosi summary` and the docs show it so).
        Types whose values are not plain words or paths override it."""
        return str(value)

    def describe(self) -> str:
        """A short human description of the allowed values, for errors and docs."""
        return self.metavar.lower()
