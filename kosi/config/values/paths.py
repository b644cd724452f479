"""Value types naming files and trees on the host: paths made absolute against the file that
sets them, `source[:target]` trees, key paths or URIs, and paths with delayed specifiers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kosi.config.values.base import Origin, ValueType, invalid
from kosi.errors import KosiError


@dataclass(frozen=True)
class Tree:
    """A `source[:target]` pair as used by SkeletonTrees=, ExtraTrees=, BuildSources=, ..."""

    source: Path
    target: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"Source": str(self.source), "Target": self.target}

    def text(self) -> str:
        return f"{self.source}:{self.target}" if self.target else str(self.source)

    def target_under(self, base: str) -> str:
        """The absolute target: a relative one (or none) is below `base`."""
        import os.path

        return os.path.normpath(os.path.join(base, self.target or ""))


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

    def text(self, value):
        return value.text() if isinstance(value, Tree) else str(value)

    def describe(self):
        return "a path, optionally followed by ':' and a target path"


class PathOrWords(PathValue):
    """A path, or one of a few special words (ToolsTree=default, FirmwareVariables=microsoft);
    `null_words` are printed as null in JSON, as mkosi 27.1 does (ToolsTree=no)."""

    def __init__(self, *words: str, required: bool = True, null_words: tuple[str, ...] = ()):
        super().__init__(required=required)
        self.choices = words
        self.null_words = null_words

    def parse(self, setting, text, origin):
        word = text.strip()
        if word in self.choices:
            return word
        return self.resolve(setting, text, origin)

    def to_json(self, value):
        return None if value in self.null_words else super().to_json(value)

    def from_json(self, value):
        return value if value in self.choices or value is None else Path(value)

    def describe(self):
        return "a path or one of " + ", ".join(self.choices)


class KeyPath(PathValue):
    """A key or certificate: a PEM file, or a URI such as `pkcs11:...` when a *Source= names an
    engine or provider that understands it (the manual: "the input type depends on the source").
    A file that does not exist is kept as written, as mkosi 27.1 keeps it (it may name a key of
    an engine); the build refuses it when it signs with it (kosi.boot.signing)."""

    metavar = "PATH|URI"

    def __init__(self, required: bool = False, absolute_only: bool = False):
        super().__init__(required=False, absolute_only=absolute_only)  # a missing file is kept as written

    @staticmethod
    def is_uri(text: str) -> bool:
        return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", text) is not None and not text.startswith(("/", "."))

    def parse(self, setting, text, origin):
        word = text.strip()
        if self.is_uri(word):
            return word
        path = self.resolve(setting, word, origin)
        return path if path.exists() else word

    def from_json(self, value):
        if value is None or self.is_uri(value) or not Path(value).exists():
            return value  # as parse keeps it
        return Path(value)

    def describe(self):
        return "a path to a PEM file or a key URI such as pkcs11:..."


class DelayedPath(PathValue):
    """A path that may hold a delayed &-specifier (Linux=&b/...): kept as written, as mkosi 27.1
    keeps it, until the build knows what it expands to; a relative one is relative to the
    directory kosi runs in."""

    def parse(self, setting, text, origin):
        return text.strip()

    def from_json(self, value):
        return value


class ScriptPath(PathValue):
    """A script of a *Scripts= list. One that does not exist is left out of the list, as mkosi
    27.1 leaves it out (None here; ListOf drops it)."""

    def __init__(self, required: bool = False, absolute_only: bool = False):
        super().__init__(required=False, absolute_only=absolute_only)  # a missing script is left out

    def parse(self, setting, text, origin):
        path = self.resolve(setting, text, origin)
        return path if path.exists() else None


class DefaultInitrd(type(Path())):  # type: ignore[misc]  # PosixPath: Path itself cannot be subclassed on 3.11
    """`Initrds=default`: the default initrd, at this place of the list (mkosi 27.1). It reads
    as `initrd` until the image is finalised, then as mkosi 27.1 names it: `initrd` in the
    image's output directory. kosi builds it inside the image's build (kosi/boot/initrd.py) and
    never looks for that file."""


class InitrdPath(PathValue):
    """A path of Initrds=, or `default` for the default initrd."""

    def parse(self, setting, text, origin):
        if text.strip() == "default":
            return DefaultInitrd("initrd")
        return super().parse(setting, text, origin)


def place_default_initrds(initrds: list[Path] | None, directory: Path) -> list[Path] | None:
    """Initrds= with every `default` named as mkosi 27.1 names it, in `directory` (the image's
    output directory)."""
    if not initrds:
        return initrds
    return [DefaultInitrd(directory / "initrd") if isinstance(p, DefaultInitrd) else p for p in initrds]
