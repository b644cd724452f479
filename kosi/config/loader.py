"""Loading a project's configuration in the order and with the precedence of the manual.

Assignments land in layers; the effective value of a setting merges them from the lowest to
the highest: `base` (what a subimage inherits from the main image), `config` (mkosi.conf,
drop-ins, profiles, includes, default paths), `local` (mkosi.local.conf, mkosi.local/) and
`cli`. A single value is taken from the highest layer that assigns it (an empty assignment
there means "the default"); list values are appended layer after layer, and an empty
assignment drops everything below it (as mkosi 27.1 does, except in the local layer, whose
empty assignment only drops the local items before it). A list's default is its value only
while no layer assigns it.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kosi import log
from kosi.config import history
from kosi.config.match import (
    CONDITION_SECTIONS,
    MatchContext,
    check_asserts,
    conditions_hold,
)
from kosi.config.model import Config, Project
from kosi.config.parser import Section, parse_ini
from kosi.config.setting import Scope, Setting
from kosi.config.specifiers import Location, expand_specifiers
from kosi.config.values import ListOf, Origin, as_regular_expressions, parse_boolean, place_default_initrds
from kosi.errors import KosiError, shown

RESET = object()
#: List settings that were booleans once; mkosi 27.1 reads yes/no as (the list for yes, for no).
LEGACY_BOOLEAN_LISTS = {
    "SplitArtifacts": (("uki", "kernel", "initrd", "partitions"), ("uki", "kernel", "initrd")),
}
#: Scopes of the settings mkosi 27.1 refuses in a subimage's configuration.
MAIN_IMAGE_SCOPES = (
    Scope.universal,
    Scope.multiversal,
    Scope.main_only,
)  # a single-value setting assigned the empty string: back to the default

#: Include= names that mean built-in configuration rather than a path (unless such a path
#: exists): kosi's own text for each, in kosi/resources/<name>/.
MKOSI_BUILTIN_INCLUDES = ("mkosi-initrd", "mkosi-vm", "mkosi-tools", "mkosi-obs", "mkosi-addon")
RESOURCES = Path(__file__).resolve().parents[1] / "resources"


def builtin_configuration(name: str) -> Path | None:
    """The directory of built-in configuration `name` (Include=mkosi-vm), None if kosi has none."""
    path = RESOURCES / name
    return path if name in MKOSI_BUILTIN_INCLUDES and path.is_dir() else None


@dataclass
class ListSlot:
    cleared: bool = False
    items: list[Any] = field(default_factory=list)


@dataclass
class Layer:
    values: dict[str, Any] = field(default_factory=dict)  # scalar value / RESET / ListSlot
    origins: dict[str, Origin] = field(default_factory=dict)


class ImageState:
    """Everything parsed so far for one image."""

    def __init__(self, image: str, invocation_dir: Path):
        self.image = image
        self.invocation_dir = invocation_dir
        self.base = Layer()
        self.config = Layer()
        self.local = Layer()
        self.cli = Layer()
        self.universal: dict[str, Any] = {}  # fixed from the main image (subimages only)
        self.config_view = Config(image=image, directory=invocation_dir)
        self.files: list[Path] = []
        self.included: set[Path] = set()
        self.working_dir = invocation_dir  # %P

    @property
    def layers(self) -> list[Layer]:
        return [self.base, self.config, self.local, self.cli]

    def origin_of(self, name: str) -> Origin | None:
        for layer in reversed(self.layers):
            if name in layer.origins:
                return layer.origins[name]
        return None

    def effective(self, setting: Setting) -> Any:
        name = setting.name
        if name in self.universal:
            return self.universal[name]
        if setting.is_list:
            assigned, items = False, []  # type: tuple[bool, list[Any]]
            for layer in self.layers:
                slot = layer.values.get(name)
                if slot is None:
                    continue
                assigned = True
                if slot.cleared and layer is not self.local:
                    items = []  # an empty assignment in mkosi.local.conf only drops the local items before it
                items = items + (sorted(slot.items, key=package_order) if setting.sort_items else slot.items)
            return items if assigned else None
        for layer in reversed(self.layers):
            if name in layer.values:
                value = layer.values[name]
                return None if value is RESET else value
        return None

    def refresh(self, setting: Setting) -> None:
        self.config_view.values[setting.name] = self.effective(setting)

    def location(self, config_dir: Path) -> Location:
        return Location(config_dir, self.working_dir, self.invocation_dir, self.image)


def package_order(item: Any) -> tuple[bool, str]:
    """mkosi 27.1's order of a layer's packages: sorted, package files by absolute path last."""
    return str(item).startswith("/"), str(item)


def _settings():
    from kosi.config.settings import SETTINGS, SETTINGS_BY_NAME

    return SETTINGS, SETTINGS_BY_NAME


def lookup_setting(key: str) -> Setting | None:
    settings, by_name = _settings()
    if key in by_name:
        return by_name[key]
    for setting in settings:
        if key in setting.compat_names:
            return setting
    return None


#: Sections mkosi 27.1 still reads, with a warning, though no setting belongs there any more.
DEPRECATED_SECTIONS = ("Host",)


def _known_sections() -> set[str]:
    settings, _ = _settings()
    return {s.section for s in settings} | set(CONDITION_SECTIONS) | {"Include"} | set(DEPRECATED_SECTIONS)


def _suggest(word: str, candidates: list[str] | set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(candidates), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


class Loader:
    def __init__(self, state: ImageState):
        self.state = state

    # ---- assignments ------------------------------------------------------------------

    def assign(self, layer: Layer, setting: Setting, text: str, origin: Origin) -> None:
        state = self.state
        name = setting.name
        if state.image == "tools" and not origin.cli and not setting.tools_tree:
            allowed = ", ".join(s.name for s in _settings()[0] if s.tools_tree)
            raise KosiError(
                f"{name}= cannot be configured in the tools tree (mkosi.tools.conf); it takes: {allowed}",
                file=origin.file, line=origin.line,
            )  # fmt: skip
        if state.image not in ("main", "tools") and not origin.cli and setting.scope in MAIN_IMAGE_SCOPES:
            kind = "a universal setting" if setting.scope != Scope.main_only else "a setting of the main image only"
            raise KosiError(
                f"{name}= is {kind} and cannot be configured in subimage '{state.image}'",
                file=origin.file, line=origin.line, hint="gate it behind [Match] Image=main in shared files",
            )  # fmt: skip
        empty = not text.strip()
        legacy = LEGACY_BOOLEAN_LISTS.get(name)
        if legacy is not None and parse_boolean(text.strip()) is not None:
            # mkosi 27.1 still reads the old boolean form: yes/no stand for a whole list
            log.warn(f"{origin.where()}: {name}={text.strip()} is deprecated, list the artifacts instead")
            # (replacing what the layer had; on the command line, added to what the files say)
            items = list(legacy[0] if parse_boolean(text.strip()) else legacy[1])
            layer.values[name] = ListSlot(layer is not state.cli, items)
            layer.origins[name] = origin
            state.refresh(setting)
            return
        if setting.is_list:
            slot = layer.values.setdefault(name, ListSlot())
            if empty:
                slot.cleared, slot.items = True, []
            else:
                slot.items.extend(self._parse(setting, text, origin))
        elif empty:
            layer.values[name] = RESET
        else:
            value = self._parse(setting, text, origin)
            if name == "MinimumVersion":
                value = self._minimum_version(layer, value, origin)
            layer.values[name] = value
        layer.origins[name] = origin
        state.refresh(setting)
        if name == "Include" and not empty:
            self.include(text, origin)

    def _parse(self, setting: Setting, text: str, origin: Origin) -> Any:
        try:
            if setting.name == "Include":
                return [str(p) for p in self._include_targets(text, origin)]
            value = setting.type.parse(setting.name, text, origin)
            _refuse_readable_secret(setting, value, origin)
        except (OSError, ValueError, RuntimeError) as e:  # a path the system refuses (too long, ~nobody, ...)
            problem = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise KosiError(
                f"{setting.name}=: {problem}: {shown(text.strip())}", file=origin.file, line=origin.line
            ) from None
        return value

    def _minimum_version(self, layer: Layer, value: Any, origin: Origin) -> Any:
        from kosi import MKOSI_VERSION
        from kosi.config.versions import compare_versions

        if str(value).startswith("commit:"):  # mkosi 27.1 checks these only when run from its git checkout
            raise KosiError(
                f"MinimumVersion={value}: a commit of mkosi's git repository cannot be checked, kosi follows "
                f"mkosi {MKOSI_VERSION}", file=origin.file, line=origin.line,
            )  # fmt: skip
        if compare_versions(str(value), MKOSI_VERSION) > 0:
            raise KosiError(
                f"MinimumVersion={value} is newer than mkosi {MKOSI_VERSION}, which this kosi follows",
                file=origin.file, line=origin.line, hint="update kosi",
            )  # fmt: skip
        previous = layer.values.get("MinimumVersion")
        if previous not in (None, RESET) and compare_versions(str(previous), str(value)) > 0:
            return previous  # the highest version given wins
        return value

    # ---- files and directories ---------------------------------------------------------

    def apply_sections(self, sections: list[Section], path: Path, layer: Layer) -> None:
        known_sections = _known_sections()
        location = self.state.location(path.parent)
        for section in sections:
            if section.name in CONDITION_SECTIONS:
                continue
            if section.name not in known_sections:
                log.warn(
                    f"{path}:{section.line}: unknown section [{section.name}]{_suggest(section.name, known_sections)}, ignoring it"
                )
                continue
            for entry in section.entries:
                key = entry.key
                if key.startswith("@"):  # the old spelling of a setting whose default the CLI overrides
                    key = key[1:]
                    log.warn(f"{path}:{entry.line}: {entry.key}= is deprecated, write {key}= instead")
                setting = lookup_setting(key)
                if setting is None:
                    self._warn_unknown(path, section.name, key, entry.line, setting)
                    continue
                if key != setting.name and key not in _SILENT_NAMES:  # mkosi 27.1 warns of older names
                    log.warn(f"{path}:{entry.line}: {key}= is deprecated, write {setting.name}= instead")
                if setting.section != section.name and not _section_alias(setting, section.name):
                    # mkosi projects in the wild misplace settings; applying them keeps them working.
                    log.warn(
                        f"{path}:{entry.line}: {key}= belongs in the [{setting.section}] section, not [{section.name}]"
                    )
                if setting.cli_only:
                    raise KosiError(f"{key}= can only be given on the command line", file=str(path), line=entry.line)
                # relative paths are relative to the directory being parsed (%P), as mkosi 27.1 reads them
                origin = Origin(
                    file=str(path), line=entry.line, directory=self.state.working_dir, local=layer is self.state.local
                )
                text = expand_specifiers(entry.value, self.state.config_view, location, file=str(path), line=entry.line)
                if key in setting.regex_names and isinstance(setting.type, ListOf):
                    text = " ".join(as_regular_expressions(setting.type.split(text)))
                self.assign(layer, setting, text, origin)

    def _warn_unknown(self, path: Path, section: str, key: str, line: int, setting: Setting | None) -> None:
        settings, _ = _settings()
        names = [s.name for s in settings if s.section == section] or [s.name for s in settings]
        hint = _suggest(key, names) or _suggest(key, [s.name for s in settings])
        log.warn(f"{path}:{line}: unknown setting {key}= in [{section}]{hint}, ignoring it")

    def match_context(self, path: Path) -> MatchContext:
        return MatchContext(self.state.config_view, self.state.image, self.state.location(path.parent), str(path))

    def parse_file(self, path: Path, layer: Layer) -> bool:
        """Parse one file with its own [Match] sections; False when they exclude it."""
        sections = parse_ini(path)
        ctx = self.match_context(path)
        if not conditions_hold(ctx, sections):
            log.debug(f"{path}: [Match] not satisfied, skipping")
            return False
        check_asserts(ctx, sections)
        self.state.files.append(path)
        self.apply_sections(sections, path, layer)
        return True

    def parse_directory(self, directory: Path, layer: Layer, *, top: bool = False) -> None:
        """Parse a configuration directory: default paths, mkosi.conf, mkosi.conf.d/ and, at
        the top of an image, mkosi.profiles/."""
        state = self.state
        conf = directory / "mkosi.conf"
        sections: list[Section] | None = None
        saved_working_dir = state.working_dir
        state.working_dir = directory  # %P, and what relative paths are relative to, follows each directory
        if is_config_file(conf):
            sections = parse_ini(conf)
            ctx = self.match_context(conf)
            if not conditions_hold(ctx, sections):
                log.debug(f"{conf}: [Match] not satisfied, skipping {directory}")
                state.working_dir = saved_working_dir
                return
            check_asserts(ctx, sections)
        try:
            self.parse_default_paths(directory, layer)
            if sections is not None:
                state.files.append(conf)
                self.apply_sections(sections, conf, layer)
            dropins = directory / "mkosi.conf.d"
            if dropins.is_dir():
                for entry in listing(dropins):
                    if entry.is_dir():
                        self.parse_directory(entry, layer)
                    elif entry.suffix == ".conf" and is_config_file(entry):
                        self.parse_file(entry, layer)
            if top:
                self.parse_profiles(directory, layer)
        finally:
            state.working_dir = saved_working_dir

    def parse_profiles(self, directory: Path, layer: Layer) -> None:
        _, by_name = _settings()
        setting = by_name.get("Profiles")
        if setting is None:
            return
        for profile in self.state.effective(setting) or []:
            as_dir = directory / "mkosi.profiles" / str(profile)
            as_file = directory / "mkosi.profiles" / f"{profile}.conf"
            try:
                is_dir = as_dir.is_dir()
            except OSError as e:  # a name the file system refuses (too long)
                origin = self.state.origin_of("Profiles")
                raise KosiError(
                    f"Profiles=: cannot look for profile {shown(str(profile))}: {e.strerror}",
                    file=origin.file if origin else None, line=origin.line if origin else None,
                ) from None  # fmt: skip
            if is_dir:
                self.parse_directory(as_dir, layer)
            if is_config_file(as_file):  # mkosi 27.1 reads both layouts when both are there, the directory first
                self.parse_file(as_file, layer)
            # A selected profile without configuration is fine: it may only be matched on.

    def parse_default_paths(self, directory: Path, layer: Layer) -> None:
        settings, _ = _settings()
        for setting in settings:
            if not setting.paths:
                continue
            if self.state.image == "tools" and not setting.tools_tree:
                continue
            if self.state.image not in ("main", "tools") and setting.scope in MAIN_IMAGE_SCOPES:
                continue  # the main image's alone (mkosi 27.1 ignores mkosi.nspawn, mkosi.crt... in a subimage)
            for name in setting.paths:
                path = directory / name
                if not (path.exists() or path.is_symlink()):
                    continue
                if not setting.is_list and self.state.effective(setting) is not None:
                    break  # an explicit value anywhere beats the default path
                origin = Origin(file=str(path), line=None, directory=directory, local=layer is self.state.local)
                if name.endswith(".d") and path.is_dir():  # mkosi 27.1 lists the files of a .d directory
                    for entry in (p for p in listing(path) if p.is_file()):
                        self.assign(layer, setting, str(entry), origin)
                    continue
                text = _read_default_path(setting, path) if setting.path_read else str(path)
                self.assign(layer, setting, text, origin)
                if not setting.is_list:
                    break  # a list takes every default path present (mkosi.build and mkosi.build.d/)

    # ---- Include= ------------------------------------------------------------------------

    def _include_targets(self, text: str, origin: Origin) -> list[Path]:
        targets = []
        for word in re.split(r"[\s,]+", text):
            if not word:
                continue
            path = Path(os.path.normpath(origin.directory / Path(word).expanduser()))
            if not path.exists() and builtin_configuration(word) is not None:
                path = RESOURCES / word
            elif not path.exists() and word in MKOSI_BUILTIN_INCLUDES:
                raise KosiError(
                    f"Include={word}: kosi does not ship mkosi's built-in configuration {word}",
                    file=origin.file, line=origin.line, hint="see docs/compatibility.md",
                )  # fmt: skip
            if not path.exists():
                raise KosiError(f"Include=: {path} does not exist", file=origin.file, line=origin.line)
            targets.append(path)
        return targets

    def include(self, text: str, origin: Origin) -> None:
        if origin.cli:  # included after all command-line arguments, by load_image
            return
        for target in self._include_targets(text, origin):
            self.include_target(target)

    def include_target(self, target: Path) -> None:
        resolved = target.resolve()
        if resolved in self.state.included:
            return  # each file is included once, which also breaks include loops
        self.state.included.add(resolved)
        if target.is_dir():
            # built-in configuration has profiles (mkosi-initrd's lvm, ...), as mkosi 27.1 reads it
            self.parse_directory(target, self.state.config, top=target.parent == RESOURCES)
        else:
            self.parse_file(target, self.state.config)


#: older names mkosi 27.1 reads without a warning (their values are globs, not regexes)
_SILENT_NAMES = ("KernelModulesInclude", "KernelModulesInitrdInclude", "FirmwareInclude")


def _section_alias(setting: Setting, section: str) -> bool:
    # Include= is documented in its own [Include] section but historically lived in [Config].
    return setting.name == "Include" and section in ("Include", "Config")


def _read_default_path(setting: Setting, path: Path) -> str:
    """The value of a default path that is read: its content, or the output of running it."""
    if path.is_file() and os.access(path, os.X_OK):
        result = subprocess.run([str(path.resolve())], cwd=path.parent, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise KosiError(
                f"{path.name} exited with status {result.returncode}: {result.stderr.strip()[:200]}",
                file=str(path),
            )  # fmt: skip
        return result.stdout.strip()
    if setting.secret:
        _check_secret_mode(path, None)
    return path.read_text().rstrip("\n")


def _check_secret_mode(path: Path, origin: Origin | None) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KosiError(
            f"{path} holds a secret but is readable by others (mode {stat.S_IMODE(mode):04o})",
            file=origin.file if origin else str(path), line=origin.line if origin else None,
            hint=f"run: chmod 600 {path}",
        )  # fmt: skip


def _refuse_readable_secret(setting: Setting, value: Any, origin: Origin) -> None:
    """Files of secret settings (Passphrase=, *Key=) must only be readable by their owner."""
    if not setting.secret:
        return
    if isinstance(value, Path) and value.is_file() and not os.access(value, os.X_OK):
        _check_secret_mode(value, origin)


# ---- the whole project ----------------------------------------------------------------------


def config_directory(directory: Path) -> Path:
    """The directory holding the configuration: `directory`, or its mkosi/ subdirectory."""
    if any((directory / name).exists() for name in ("mkosi.conf", "mkosi.tools.conf")):
        return directory
    sub = directory / "mkosi"
    if any((sub / name).exists() for name in ("mkosi.conf", "mkosi.tools.conf")):
        return sub
    return directory


def apply_cli(loader: Loader, assignments: list[tuple[Setting, str]], cwd: Path) -> None:
    for setting, text in assignments:
        loader.assign(loader.state.cli, setting, text, Origin(file=None, line=None, directory=cwd))


def include_from_cli(loader: Loader, assignments: list[tuple[Setting, str]], cwd: Path) -> None:
    for setting, text in assignments:
        if setting.name == "Include" and text.strip():
            for target in loader._include_targets(text, Origin(directory=cwd)):
                before = len(loader.state.files)
                loader.include_target(target)
                del loader.state.files[before:]  # mkosi 27.1 does not list them among the files read


def apply_history(state: ImageState, directory: Path) -> None:
    """History=: the last build's command-line settings in place of this command line's."""
    for setting, raw, value in history.entries(directory):
        if setting.name in state.cli.values and cli_record(state, state.config_view).get(setting.name) != raw:
            history.warn_ignored(setting, raw)
        if setting.is_list:
            state.cli.values[setting.name] = ListSlot(False, list(value or []))
        else:
            state.cli.values[setting.name] = RESET if value is None else value
        state.cli.origins[setting.name] = Origin(file=str(history.history_file(directory)), directory=directory)
        state.refresh(setting)


def cli_record(state: ImageState, config: Config) -> dict[str, Any]:
    """What History= records: each command-line setting's own items or value, as JSON (the
    default for an empty `--setting=`)."""
    from kosi.config.jsonio import value_to_json

    _, by_name = _settings()
    document: dict[str, Any] = {}
    for name, value in state.cli.values.items():
        setting = by_name[name]
        if not history.recorded(setting):
            continue
        if isinstance(value, ListSlot):
            value = sorted(value.items, key=str) if setting.sort_items else list(value.items)
        elif value is RESET:
            value = setting.get_default(config)
        document[name] = value_to_json(setting, value)
    return dict(sorted(document.items()))


def load_main(args: Any, cwd: Path | None = None) -> tuple[ImageState, Path | None]:
    """Parse the main image; returns its state and its configuration directory (None with -C "")."""
    cwd = cwd or Path.cwd()
    directory: Path | None
    if args.directory == "":
        directory = None
    else:
        directory = Path(os.path.normpath(cwd / args.directory)) if args.directory else cwd
        try:
            if not directory.is_dir():
                raise KosiError(f"--directory: {directory} is not a directory")
            os.listdir(directory)
        except OSError as e:
            raise KosiError(f"--directory: cannot read {directory}: {e.strerror}") from None
    state = ImageState("main", directory or cwd)
    loader = Loader(state)
    # as in mkosi 27.1, relative paths on the command line are relative to --directory
    apply_cli(loader, args.assignments, directory or cwd)
    if directory is not None and history.reads_history(args):
        apply_history(state, directory)
    include_from_cli(loader, args.assignments, directory or cwd)
    if directory is None:
        return state, None
    confdir = config_directory(directory)
    parse_local(loader, confdir)
    loader.parse_directory(confdir, state.config, top=True)
    return state, confdir


def is_config_file(path: Path) -> bool:
    """Whether `path` is a configuration file to read: absent (a dangling symlink too, as
    mkosi 27.1 has it) or a directory is not; a symlink loop, a FIFO (reading it would block),
    a device or a file we may not look at is refused in one line."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return False
    except OSError as e:
        raise KosiError(f"cannot read configuration file: {e.strerror}", file=str(path)) from None
    if stat.S_ISREG(mode):
        return True
    if stat.S_ISDIR(mode):
        return False
    raise KosiError("configuration file is not a regular file", file=str(path))


def listing(directory: Path) -> list[Path]:
    """The entries of a configuration directory, by name; one line when it cannot be read."""
    try:
        return sorted(directory.iterdir(), key=lambda p: p.name)
    except OSError as e:
        raise KosiError(f"cannot read configuration directory: {e.strerror}", file=str(directory)) from None


def parse_local(loader: Loader, directory: Path) -> None:
    """mkosi.local.conf and mkosi.local/ of an image's directory (the main image's or a subimage's)."""
    saved, loader.state.working_dir = loader.state.working_dir, directory  # relative paths: to the image's directory
    try:
        local_conf = directory / "mkosi.local.conf"
        files, before, has_conf = loader.state.files, len(loader.state.files), is_config_file(local_conf)
        if has_conf:
            loader.parse_file(local_conf, loader.state.local)
        if (directory / "mkosi.local").is_dir():
            loader.parse_directory(directory / "mkosi.local", loader.state.local)
            # parsed after mkosi.local.conf, but mkosi 27.1 lists mkosi.local/'s files first
            if has_conf:
                files[before:] = [*files[before + 1 :], files[before]]
    finally:
        loader.state.working_dir = saved


def subimage_paths(confdir: Path) -> list[tuple[str, Path]]:
    images = confdir / "mkosi.images"
    if not images.is_dir():
        return []
    found = []
    for entry in listing(images):
        if entry.is_dir():
            found.append((entry.name, entry))
        elif entry.suffix == ".conf" and is_config_file(entry):
            found.append((entry.name[: -len(".conf")], entry))
    return found


def load_subimage(name: str, path: Path, main: ImageState) -> ImageState | None:
    """Parse one subimage on top of what it inherits from the main image; None when its
    mkosi.conf's [Match] excludes it."""
    settings, by_name = _settings()
    state = ImageState(name, main.invocation_dir)
    for setting in settings:
        value = main.effective(setting)
        if setting.scope in (Scope.universal, Scope.multiversal):
            state.universal[setting.name] = value
        elif setting.scope == Scope.passed_down and value is not None:
            state.base.values[setting.name] = ListSlot(True, list(value)) if setting.is_list else value
    _pass_environment(state, main, by_name)
    for setting in settings:
        state.refresh(setting)
    loader = Loader(state)
    if path.is_dir():
        conf = path / "mkosi.conf"
        parse_local(loader, path)
        before = len(state.files)
        loader.parse_directory(path, state.config, top=True)
        if is_config_file(conf) and conf not in state.files[before:]:
            return None
    elif not loader.parse_file(path, state.config):
        return None
    return state


def _pass_environment(state: ImageState, main: ImageState, by_name: dict[str, Setting]) -> None:
    """PassEnvironment= names are handed to subimages as if Environment= were universal for them."""
    if "PassEnvironment" not in by_name or "Environment" not in by_name:
        return
    names = main.effective(by_name["PassEnvironment"]) or []
    environment: dict[str, str] = {}
    for item in main.effective(by_name["Environment"]) or []:
        if isinstance(item, dict):
            environment.update(item)
    passed = {k: environment[k] for k in names if k in environment}
    if passed:
        state.base.values["Environment"] = ListSlot(False, [passed])


def finalize(state: ImageState, args: Any) -> Config:
    """The Config of one image, as its layers merge."""
    settings, by_name = _settings()
    config = Config(image=state.image, directory=state.invocation_dir)
    for setting in settings:
        # A list's default applies only while nothing assigns it: `ToolsTreeProfiles=devel` is ["devel"].
        config.values[setting.name] = state.effective(setting)
    # Initrds=default: named as mkosi 27.1 names the default initrd, in the output directory
    config.values["Initrds"] = place_default_initrds(
        config.values["Initrds"], config.output_directory or Path(config.directory)
    )
    # &-specifiers (CacheKey=&d~&r) stay in the values, as mkosi 27.1 prints them; whoever
    # uses such a value expands them (specifiers.expand_delayed)
    config.files = list(state.files)
    config.arguments = list(getattr(args, "cmdline", []) or [])
    config.origins = {s.name: state.origin_of(s.name) for s in settings if state.origin_of(s.name)}  # type: ignore[attr-defined]
    return config


def load_project(args: Any, cwd: Path | None = None) -> Project:
    """Parse everything `args` points at; images in build order, the main image last."""
    from kosi.config.images import order_images

    main_state, confdir = load_main(args, cwd)
    subimages: dict[str, ImageState] = {}
    if confdir is not None:
        for name, path in subimage_paths(confdir):
            sub = load_subimage(name, path, main_state)
            if sub is not None:
                subimages[name] = sub
    main = finalize(main_state, args)
    record = cli_record(main_state, main)
    configs = {name: finalize(state, args) for name, state in subimages.items()}
    if not main.is_set("Dependencies"):
        main.values["Dependencies"] = list(configs)  # as mkosi 27.1: the main image needs every subimage
    images = order_images(main, configs)
    options = {k: v for k, v in vars(args).items() if k not in ("assignments",)}
    return Project(images=images, tools=None, options=options, history=record)


def tools_tree_config(
    main: Config, confdir: Path | None = None, *, read_files: bool = True, builtin: bool = False
) -> Config:
    """What the user configured for the default tools tree: a directory image with
    ToolsTree<Setting>= applied as <Setting>=, multiversal settings from the main image, and
    mkosi.tools.conf (file or directory, unless not `read_files`) on top. The one place these
    are applied; kosi.tools.tree adds kosi's own choices (distribution, packages). With
    `builtin`, the built-in mkosi-tools configuration (its packages per distribution and
    ToolsTreeProfiles=) comes first, as `summary` shows the tree."""
    settings, by_name = _settings()
    state = ImageState("tools", main.directory)
    fixed: dict[str, Any] = {"Format": "directory"}
    for setting in settings:
        if setting.scope == Scope.multiversal:
            fixed[setting.name] = main[setting.name]
        if setting.name.startswith("ToolsTree") and setting.name[len("ToolsTree") :] in by_name:
            target = setting.name[len("ToolsTree") :]
            value = main[setting.name]
            if value not in (None, [], ""):
                fixed[target] = value
    for name, value in fixed.items():
        if name in by_name:
            state.base.values[name] = ListSlot(True, list(value)) if by_name[name].is_list else value
    for setting in settings:
        state.refresh(setting)
    loader = Loader(state)
    tools_conf = (confdir or config_directory(main.directory)) / "mkosi.tools.conf"
    if read_files and tools_conf.is_dir():
        loader.parse_directory(tools_conf, state.config)
    elif read_files and is_config_file(tools_conf):
        loader.parse_file(tools_conf, state.config)
    if builtin:  # after mkosi.tools.conf, as mkosi 27.1 reads them: Output=mkosi.tools wins
        loader.parse_directory(RESOURCES / "mkosi-tools", state.config, top=True)
    config = finalize(state, None)
    if builtin:  # one sorted list, ToolsTreePackages= among the built-in ones
        config.values["Packages"] = sorted(config.values["Packages"] or [], key=package_order)
    config.values["Format"] = "directory"  # the manual: the tools tree's format cannot be changed
    return config
