"""%-specifiers expanded while configuration is parsed, and &-specifiers expanded after.

Setting specifiers (%d, %r, %t, ...) come from the table's `specifier` field, so a setting
that gains one there is expanded here without changes. The others depend on where the
parser is: %C the directory of the current file, %P the directory of the innermost
mkosi.conf being parsed, %D the directory kosi was invoked in, %I the (sub)image name.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kosi.distributions.host import host_distribution

# machine() -> the architecture names of the manual (Architecture=)
_MACHINE_TO_ARCHITECTURE = {
    "x86_64": "x86-64", "amd64": "x86-64", "i686": "x86", "i586": "x86", "i386": "x86",
    "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm", "armv8l": "arm", "riscv64": "riscv64",
    "ppc64le": "ppc64-le", "ppc64": "ppc64", "s390x": "s390x", "loongarch64": "loongarch64",
}  # fmt: skip


def host_architecture() -> str:
    machine = platform.machine()
    return _MACHINE_TO_ARCHITECTURE.get(machine, machine.replace("_", "-"))


@dataclass
class Location:
    """Where the parser is when it expands a value."""

    config_dir: Path  # %C: directory of the file being read
    working_dir: Path  # %P: directory of the innermost mkosi.conf being parsed
    invocation_dir: Path  # %D
    image: str  # %I


def _value_text(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "value") and not isinstance(value, (str, bytes)):  # enums
        return str(value.value)
    return str(value)


def setting_specifiers() -> dict[str, str]:
    """specifier letter -> setting name, from the table."""
    from kosi.config.settings import SETTINGS

    return {s.specifier: s.name for s in SETTINGS if s.specifier}


def expand_specifiers(
    text: str, config: Any, where: Location, *, file: str | None = None, line: int | None = None
) -> str:
    """Expand %X in `text` using the values set so far in `config` (a Config)."""
    if "%" not in text:
        return text
    by_letter = setting_specifiers()
    out: list[str] = []
    unknown: list[str] = []
    i = 0
    while i < len(text):
        j = text.find("%", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        letter = text[j + 1 : j + 2]
        i = j + 2
        if letter == "%":
            out.append("%")
        elif letter == "C":
            out.append(str(where.config_dir))
        elif letter == "P":
            out.append(str(where.working_dir))
        elif letter == "D":
            out.append(str(where.invocation_dir))
        elif letter == "I":
            out.append(where.image)
        elif letter == "F":
            out.append(default_filesystem(config))
        elif letter == "a" and letter not in by_letter:
            out.append(architecture_of(config))
        elif letter and letter in by_letter:
            out.append(_value_text(_lookup(config, by_letter[letter])))
        elif not letter:
            out.append("%")  # a lone % at the end stays, as mkosi 27.1 keeps it
        elif letter not in unknown:
            unknown.append(letter)  # mkosi 27.1 drops an unknown specifier with a warning
    if unknown:
        from kosi import log

        origin = f"{file}:{line}: " if file else ""
        shown = text if len(text) <= 200 else text[:200] + "..."
        for letter in unknown:  # once per letter, however often it is used
            log.warn(f"{origin}unknown specifier %{letter} in {shown!r}, dropping it (use %% for a literal %)")
    return "".join(out)


def _lookup(config: Any, name: str) -> Any:
    value = config[name]
    if value is None and name == "Architecture":
        return host_architecture()
    return value


def architecture_of(config: Any) -> str:
    from kosi.config.settings import SETTINGS_BY_NAME

    if "Architecture" in SETTINGS_BY_NAME and config["Architecture"]:
        return _value_text(config["Architecture"])
    return host_architecture()


def default_filesystem(config: Any) -> str:
    from kosi import distributions

    name = config["Distribution"] or host_distribution()[0]
    try:
        return distributions.get(_value_text(name)).filesystem
    except KeyError:
        return "ext4"


# ---- delayed &-specifiers (CacheKey=, BuildKey=) ---------------------------------------


def delayed_settings() -> dict[str, str]:
    """& letter -> setting name, from the table; &I is the image name, && a literal &. Others
    (&e, &k, &h of UnifiedKernelImageFormat=) are left for the build steps that know them."""
    from kosi.config.settings import SETTINGS

    return {s.specifier: s.name for s in SETTINGS if s.delayed_specifier and s.specifier}


def expand_delayed(text: str, config: Any) -> str:
    """Expand &d &r &a &i &v &I && in `text` with the final values of `config`."""
    by_letter = delayed_settings()
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        letter = text[i + 1 : i + 2]
        if c != "&" or not letter:
            out.append(c)
            i += 1
            continue
        if letter == "&":
            out.append("&")
        elif letter == "I":
            out.append(config.image)
        elif letter == "a":
            out.append(architecture_of(config))
        elif letter in by_letter:
            out.append(_value_text(config[by_letter[letter]]))
        else:
            out.append(c + letter)  # expanded later by whoever knows it
        i += 2
    return "".join(out)


def build_subdirectory(config: Any, fallback: Any = None) -> Path | None:
    """The image's build directory: BuildDirectory= (else `fallback`) with the BuildKey=
    subdirectory, &-specifiers expanded ($BUILDDIR of build scripts, BuildSubdirectory in the JSON)."""
    base = config["BuildDirectory"] or fallback
    if not base:
        return None
    key = expand_delayed(str(config["BuildKey"] or ""), config)
    return Path(base) / key if key else Path(base)
