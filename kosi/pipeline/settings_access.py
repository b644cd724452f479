"""Reading settings that may not be in the settings table yet.

The table (kosi/config/settings.py) grows while the pipeline is written against it;
`setting()` reads a value through the Config when the table knows the name and
falls back to the raw value (or a caller's default) otherwise, so the build works
with hand-made Config objects in tests as well as with fully parsed ones.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kosi.config.model import Config


def setting(config: Config, name: str, fallback: Any = None) -> Any:
    try:
        value = config[name]
    except KeyError:
        value = config.values.get(name)
    return fallback if value is None else value


def flag(config: Config, name: str, fallback: bool = False) -> bool:
    """A boolean (or yes/no word, or Feature) setting as a plain bool."""
    value = setting(config, name, fallback)
    if isinstance(value, str):
        return value.lower() in ("1", "yes", "true", "on", "enabled", "strict")
    if hasattr(value, "value") and isinstance(getattr(value, "value"), str):  # Feature / enum
        return value.value in ("enabled", "yes", "strict")
    return bool(value)


def word(config: Config, name: str, fallback: str = "") -> str:
    """A choice/enum setting as its canonical word."""
    value = setting(config, name, fallback)
    if hasattr(value, "value") and isinstance(getattr(value, "value"), str):
        return value.value
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return str(value)


def paths(config: Config, name: str) -> list[Path]:
    value = setting(config, name, [])
    if isinstance(value, (str, Path)):
        value = [value]
    return [Path(getattr(v, "source", v)) for v in value]


def local_file(config: Config, name: str) -> Path | None:
    """A mkosi.* file or directory next to the configuration, e.g. mkosi.rootpw."""
    path = Path(config.directory) / name
    return path if os.path.lexists(path) else None


def architecture(config: Config) -> str:
    arch = setting(config, "Architecture")
    if arch:
        return word(config, "Architecture")
    machine = os.uname().machine
    return {"x86_64": "x86-64", "aarch64": "arm64", "i686": "x86", "armv7l": "arm", "ppc64le": "ppc64-le",
            "s390x": "s390x", "riscv64": "riscv64", "loongarch64": "loongarch64"}.get(machine, machine)
