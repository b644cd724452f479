"""[Match], [TriggerMatch], [Assert] and [TriggerAssert] sections.

A file is included when every [Match] section holds and, if there are [TriggerMatch]
sections, at least one of them holds. Within one section all plain conditions must hold
and, if there are triggering conditions (`Key=|value`), at least one of those. `!` negates
a condition (after the `|`). Assert sections are evaluated the same way, but failing is
an error instead of a reason to skip the file.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from kosi import log
from kosi.config.parser import Entry, Section
from kosi.config.specifiers import (
    Location,
    _value_text,
    expand_specifiers,
    host_architecture,
    host_distribution,
)
from kosi.config.versions import version_matches
from kosi.errors import KosiError

MATCH_SECTIONS = ("Match", "TriggerMatch")
ASSERT_SECTIONS = ("Assert", "TriggerAssert")
CONDITION_SECTIONS = MATCH_SECTIONS + ASSERT_SECTIONS

#: Matchers whose value is compared with a glob or a rich version comparison, as the manual's table says.
GLOB_MATCHERS = {"ImageId"}
VERSION_MATCHERS = {"ImageVersion", "SystemdVersion"}
#: Matchers that fail while their setting has not been configured yet (the manual's "match fails").
FAIL_WHEN_UNSET = {"Profiles", "ImageId", "ImageVersion", "BuildSources"}

UEFI_ARCHITECTURES = {"x86", "x86-64", "arm", "arm64", "riscv32", "riscv64", "loongarch64"}


@dataclass
class MatchContext:
    config: Any  # the Config as parsed so far
    image: str  # "main" or the subimage name
    location: Location  # for specifiers and PathExists= (relative to location.config_dir)
    file: str


@functools.lru_cache(maxsize=1)
def host_systemd_version() -> str:
    """The version `systemctl --version` reports, e.g. "252"."""
    try:
        out = subprocess.run(["systemctl", "--version"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "0"
    words = out.split()
    return words[1] if len(words) > 1 else "0"


def _setting(name: str):
    from kosi.config.settings import SETTINGS_BY_NAME

    return SETTINGS_BY_NAME.get(name)


def _is_set(config: Any, name: str) -> bool:
    return _setting(name) is not None and config.is_set(name)


def _current(config: Any, name: str) -> Any:
    return config[name] if _setting(name) is not None else None


# ---- the special matchers: not a setting, or a setting with a special default -------------


def _match_path_exists(ctx: MatchContext, value: str) -> bool:
    path = Path(value)
    if not path.is_absolute():
        path = ctx.location.config_dir / path
    return path.exists()


def _match_systemd_version(ctx: MatchContext, value: str) -> bool:
    return version_matches(host_systemd_version(), value)


def _match_host_architecture(ctx: MatchContext, value: str) -> bool:
    return _architecture_equals(host_architecture(), value)


def _match_image(ctx: MatchContext, value: str) -> bool:
    return ctx.image == value


def _architecture_equals(actual: str, value: str) -> bool:
    if value == "uefi":
        return actual in UEFI_ARCHITECTURES
    return actual == value


def _match_architecture(ctx: MatchContext, value: str) -> bool:
    actual = _value_text(ctx.config["Architecture"]) if _is_set(ctx.config, "Architecture") else host_architecture()
    return _architecture_equals(actual, value)


def _match_distribution(ctx: MatchContext, value: str) -> bool:
    if _is_set(ctx.config, "Distribution"):
        return _value_text(ctx.config["Distribution"]) == value
    return host_distribution()[0] == value


def _match_release(ctx: MatchContext, value: str) -> bool:
    if not _is_set(ctx.config, "Distribution"):
        return host_distribution()[1] == value
    return _value_text(_current(ctx.config, "Release")) == value


def _fallback_tools_distribution(ctx: MatchContext) -> str:
    from kosi import distributions

    current = _current(ctx.config, "ToolsTreeDistribution")
    if current:
        return _value_text(current)
    name = host_distribution()[0]  # the host's, whatever the image's Distribution= (manual)
    try:
        return distributions.get(name).tools_tree_distribution or name
    except KeyError:
        return "debian"


def _match_tools_tree_distribution(ctx: MatchContext, value: str) -> bool:
    return _fallback_tools_distribution(ctx) == value


def _match_tools_tree_release(ctx: MatchContext, value: str) -> bool:
    from kosi import distributions

    current = _current(ctx.config, "ToolsTreeRelease")
    if current:
        return _value_text(current) == value
    try:
        return distributions.get(_fallback_tools_distribution(ctx)).default_release == value
    except KeyError:
        return False


def _match_environment(ctx: MatchContext, value: str) -> bool:
    environment: dict[str, str] = {}
    for item in _current(ctx.config, "Environment") or []:
        if isinstance(item, dict):
            environment.update(item)
        elif isinstance(item, str):
            key, _, val = item.partition("=")
            environment[key] = val
    key, sep, wanted = value.partition("=")
    if key not in environment:
        return False
    return not sep or environment[key] == wanted


def _match_build_sources(ctx: MatchContext, value: str) -> bool:
    wanted = value.strip("/")
    for tree in _current(ctx.config, "BuildSources") or []:
        target = getattr(tree, "target", None)
        if target is not None and str(target).strip("/") == wanted:
            return True
    return False


SPECIAL_MATCHERS: dict[str, Callable[[MatchContext, str], bool]] = {
    "PathExists": _match_path_exists,
    "SystemdVersion": _match_systemd_version,
    "HostArchitecture": _match_host_architecture,
    "Image": _match_image,
    "Architecture": _match_architecture,
    "Distribution": _match_distribution,
    "Release": _match_release,
    "ToolsTreeDistribution": _match_tools_tree_distribution,
    "ToolsTreeRelease": _match_tools_tree_release,
    "Environment": _match_environment,
    "BuildSources": _match_build_sources,
}


def _match_setting(ctx: MatchContext, name: str, value: str, entry: Entry) -> bool:
    """Compare against a setting of the table, the way its `match` field says."""
    from kosi.config.setting import MatchKind
    from kosi.config.values import Boolean, Choice, FeatureType, Origin

    setting = _setting(name)
    if setting is None:  # a matcher of the manual whose setting the table does not know (yet)
        return False
    if name in FAIL_WHEN_UNSET and not ctx.config.is_set(name):
        return False
    current = ctx.config[name]
    if setting.match == MatchKind.glob or name in GLOB_MATCHERS:
        return current is not None and fnmatch.fnmatchcase(_value_text(current), value)
    if setting.match == MatchKind.version or name in VERSION_MATCHERS:
        return current is not None and version_matches(_value_text(current), value)
    item_type = getattr(setting.type, "item", setting.type)
    wanted: Any = value
    if isinstance(item_type, (Boolean, FeatureType, Choice)):
        origin = Origin(file=ctx.file, line=entry.line, directory=ctx.location.config_dir)
        wanted = item_type.parse(f"[Match] {name}", value, origin)
    if isinstance(item_type, FeatureType) and current is None:
        from kosi.config.values import Feature

        current = Feature.auto  # the manual: Bootable= matches the "auto" feature by default
    if setting.is_list:
        return any(_equal(item, wanted) for item in current or [])
    return _equal(current, wanted)


def _equal(current: Any, wanted: Any) -> bool:
    if isinstance(wanted, str):
        return _value_text(current) == wanted
    return current == wanted


def known_matchers() -> set[str]:
    from kosi.config.settings import SETTINGS

    names = {s.name for s in SETTINGS if s.match is not None}
    return names | set(SPECIAL_MATCHERS) | GLOB_MATCHERS | VERSION_MATCHERS | FAIL_WHEN_UNSET


def evaluate_condition(ctx: MatchContext, entry: Entry) -> tuple[bool, bool]:
    """(triggering, result) of one `Key=[|][!]value` condition."""
    text = entry.value.strip()
    trigger = text.startswith("|")
    if trigger:
        text = text[1:].lstrip()
    negate = text.startswith("!") and not text.startswith("!=")  # `!=` is a version operator
    if negate:
        text = text[1:].lstrip()
    text = expand_specifiers(text, ctx.config, ctx.location, file=ctx.file, line=entry.line)
    if entry.key in SPECIAL_MATCHERS:
        result = SPECIAL_MATCHERS[entry.key](ctx, text)
    else:
        result = _match_setting(ctx, entry.key, text, entry)
    return trigger, result != negate


def _section_holds(ctx: MatchContext, section: Section) -> tuple[bool, Entry | None]:
    """Whether one section holds, and the first condition that made it fail."""
    triggers: list[tuple[bool, Entry]] = []
    plain_failure: Entry | None = None
    known = known_matchers()
    for entry in section.entries:
        if entry.key not in known:
            close = difflib.get_close_matches(entry.key, sorted(known), n=1)
            hint = f" (did you mean {close[0]}=?)" if close else ""
            log.warn(f"{ctx.file}:{entry.line}: unknown [{section.name}] condition {entry.key}={hint}, ignoring it")
            continue
        trigger, result = evaluate_condition(ctx, entry)
        if trigger:
            triggers.append((result, entry))
        elif not result and plain_failure is None:
            plain_failure = entry
    if plain_failure is not None:
        return False, plain_failure
    if triggers and not any(result for result, _ in triggers):
        return False, triggers[0][1]
    return True, None


def _holds(ctx: MatchContext, sections: list[Section], plain: str, triggering: str) -> tuple[bool, Section | None, Entry | None]:
    trigger_sections = [s for s in sections if s.name == triggering]
    for section in sections:
        if section.name == plain:
            ok, entry = _section_holds(ctx, section)
            if not ok:
                return False, section, entry
    if trigger_sections:
        results = [_section_holds(ctx, s) for s in trigger_sections]
        if not any(ok for ok, _ in results):
            return False, trigger_sections[0], None
    return True, None, None


def conditions_hold(ctx: MatchContext, sections: list[Section]) -> bool:
    """Whether the [Match]/[TriggerMatch] sections of a file let it be included."""
    ok, _, _ = _holds(ctx, sections, "Match", "TriggerMatch")
    return ok


def check_asserts(ctx: MatchContext, sections: list[Section]) -> None:
    """Raise a KosiError naming the file and line when [Assert]/[TriggerAssert] fail."""
    ok, section, entry = _holds(ctx, sections, "Assert", "TriggerAssert")
    if ok:
        return
    assert section is not None
    if entry is not None:
        raise KosiError(f"[{section.name}] {entry.key}={entry.value} is not satisfied", file=ctx.file, line=entry.line)
    raise KosiError(f"none of the [{section.name}] sections is satisfied", file=ctx.file, line=section.line)


def has_conditions(sections: list[Section]) -> bool:
    return any(s.name in CONDITION_SECTIONS for s in sections)

