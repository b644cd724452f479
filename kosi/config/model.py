"""The parsed configuration of one image, and the set of images a project builds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator


class Config:
    """Effective settings of one image.

    Values are stored by setting name ("Packages"); unset settings fall back to the
    table's default or default_factory, which may derive from other settings. Access by
    name (`config["Packages"]`) or by attribute (`config.packages`, the setting's dest).
    """

    def __init__(self, values: dict[str, Any] | None = None, *, image: str = "main", directory: Path | None = None):
        self.values: dict[str, Any] = dict(values or {})
        self.image = image  # "main", a subimage name from mkosi.images/, or "tools"
        self.directory = directory or Path.cwd()  # where the project lives (%D)
        #: configuration files that were read, in order, for cat-config
        self.files: list[Path] = []
        #: arguments after `--` on the command line, passed to build scripts / nspawn / qemu
        self.arguments: list[str] = []
        self._resolving: set[str] = set()

    def __getitem__(self, name: str) -> Any:
        from kosi.config.settings import SETTINGS_BY_NAME

        if name in self.values and self.values[name] is not None:
            return self.values[name]
        setting = SETTINGS_BY_NAME[name]
        if setting.default_factory is None:
            default = setting.default
            if default is None and setting.is_list:
                return []  # an unset list is empty, so callers can iterate without checking
            return list(default) if isinstance(default, (list, tuple)) else default
        if name in self._resolving:  # a default that (indirectly) depends on itself
            return None
        self._resolving.add(name)
        try:
            return setting.default_factory(self)
        finally:
            self._resolving.discard(name)

    def __getattr__(self, dest: str) -> Any:
        from kosi.config.settings import SETTINGS_BY_DEST

        setting = SETTINGS_BY_DEST.get(dest)
        if setting is None:
            raise AttributeError(dest)
        return self[setting.name]

    def is_set(self, name: str) -> bool:
        return self.values.get(name) is not None

    def items(self) -> Iterator[tuple[str, Any]]:
        from kosi.config.settings import SETTINGS

        for setting in SETTINGS:
            yield setting.name, self[setting.name]

    def copy(self) -> "Config":
        other = Config(self.values, image=self.image, directory=self.directory)
        other.files = list(self.files)
        other.arguments = list(self.arguments)
        return other


@dataclass
class Project:
    """Everything one invocation works on: the images in build order, and the tools tree."""

    images: list[Config]  # subimages in dependency order, the main image last
    tools: Config | None = None  # the default tools tree's configuration, when one is used
    #: command-line-only options (--force, --debug, --json, ...)
    options: dict[str, Any] = field(default_factory=dict)
    #: the command line's settings as History= records them (kosi.config.history)
    history: dict[str, Any] = field(default_factory=dict)

    @property
    def main(self) -> Config:
        return self.images[-1]
