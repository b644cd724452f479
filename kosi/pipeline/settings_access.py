"""DEPRECATED: read settings through the Config instead (`config.packages`, `config["Checksum"]`).

This was a stop-gap while the settings table (kosi/config/settings.py) was incomplete: it
read a value through the Config when the table knew the name and fell back to raw strings
otherwise. The table is complete, so its values already have their real types (Choice words,
Feature, Tree, lists of dicts for Environment=) and the mkosi.* default paths are assigned by
the loader. The pipeline, outputs and build verbs no longer use this module; it stays only
until the remaining importers (boot, installers, scripts, run, tools tree) are moved.
Do not add new uses.
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
