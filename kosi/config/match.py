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

from kosi.config.parser import Entry, Section
from kosi.config.specifiers import (
    Location,
    _value_text,
    expand_specifiers,
    host_architecture,
    host_distribution,
)
from kosi.config.versions import version_matches
from kosi.errors import KosiError, shown

MATCH_SECTIONS = ("Match", "TriggerMatch")
ASSERT_SECTIONS = ("Assert", "TriggerAssert")
CONDITION_SECTIONS = MATCH_SECTIONS + ASSERT_SECTIONS


@dataclass
class MatchContext:
    config: Any  # the Config as parsed so far
    image: str  # "main" or the subimage name
    location: Location  # for specifiers and PathExists= (relative to location.working_dir, %P)
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

    setting = SETTINGS_BY_NAME.get(name)
    return setting if setting is not None and setting.match is not None else None


# ---- the matchers that are no setting -------------------------------------------------------


def _match_path_exists(ctx: MatchContext, value: str, entry: Entry) -> bool:
    if not value:
        return False
    path = Path(value)
    if not path.is_absolute():  # as in mkosi 27.1: relative to the directory of the mkosi.conf being read
        path = ctx.location.working_dir / path
    return path.exists()


def _match_systemd_version(ctx: MatchContext, value: str, entry: Entry) -> bool:
    return bool(value) and version_matches(host_systemd_version(), value)


def _match_host_architecture(ctx: MatchContext, value: str, entry: Entry) -> bool:
    from kosi import architecture

    if value not in architecture.names():  # mkosi 27.1 refuses a misspelt one (and uefi) here
        raise _invalid(ctx, entry, value, "one of " + ", ".join(architecture.names()))
    return host_architecture() == value


def _match_image(ctx: MatchContext, value: str, entry: Entry) -> bool:
    return ctx.image == value


#: [Match] conditions on something other than a setting; every other condition is a setting
#: of the table whose `match` field says how it compares.
HOST_MATCHERS: dict[str, Callable[[MatchContext, str, Entry], bool]] = {
    "PathExists": _match_path_exists,
    "SystemdVersion": _match_systemd_version,
    "HostArchitecture": _match_host_architecture,
    "Image": _match_image,
}


def _invalid(ctx: MatchContext, entry: Entry, value: str, allowed: str) -> KosiError:
    return KosiError(
        f"[Match] {entry.key}=: invalid value {shown(value)}, expected {allowed}", file=ctx.file, line=entry.line
    )


# ---- conditions on a setting: compared the way its `match` field says --------------------


def _match_environment(current: Any, value: str) -> bool:
    environment: dict[str, str] = {}
    for item in current or []:
        if isinstance(item, dict):
            environment.update(item)
        elif isinstance(item, str):
            key, _, val = item.partition("=")
            environment[key] = val
    key, sep, wanted = value.partition("=")
    if not key or key not in environment:
        return False
    return not sep or environment[key] == wanted


def _match_target(current: Any, value: str) -> bool:
    wanted = value.strip("/")
    for tree in current or []:
        target = getattr(tree, "target", None)
        if value and target is not None and str(target).strip("/") == wanted:
            return True
    return False


def _match_setting(ctx: MatchContext, setting: Any, value: str, entry: Entry) -> bool:
    """Compare `value` with the setting's value so far (its default while unset)."""
    from kosi.config.setting import MatchKind
    from kosi.config.values import Boolean, Choice, FeatureType, Origin

    current = ctx.config[setting.name]
    if setting.name == "Release" and not ctx.config.is_set("Release"):
        # mkosi 27.1 builds the host's release when the distribution is the host's
        host_id, host_release = host_distribution()
        if _value_text(ctx.config["Distribution"]) == host_id:
            current = host_release
    kind = setting.match
    if kind == MatchKind.glob:
        return current is not None and bool(value) and fnmatch.fnmatchcase(_value_text(current), value)
    if kind == MatchKind.version:
        return current is not None and bool(value) and version_matches(_value_text(current), value)
    if kind == MatchKind.environment:
        return _match_environment(current, value)
    if kind == MatchKind.target:
        return _match_target(current, value)
    if setting.is_list and not value:
        return not current  # an empty condition holds while the list is empty
    item_type = getattr(setting.type, "item", setting.type)
    wanted: Any = value
    if setting.name == "Architecture" and value == "uefi":
        from kosi import architecture

        arch = architecture.ARCHITECTURES.get(_value_text(current))
        return arch is not None and arch.supports_uefi
    if isinstance(item_type, (Boolean, FeatureType, Choice)):
        origin = Origin(file=ctx.file, line=entry.line, directory=ctx.location.config_dir)
        wanted = item_type.parse(f"[Match] {setting.name}", value, origin)
    if setting.is_list:
        return any(_equal(item, wanted) for item in current or [])
    return _equal(current, wanted)


def _equal(current: Any, wanted: Any) -> bool:
    if isinstance(wanted, str):
        return _value_text(current) == wanted
    return current == wanted


def known_matchers() -> set[str]:
    from kosi.config.settings import SETTINGS

    return {s.name for s in SETTINGS if s.match is not None} | set(HOST_MATCHERS)


def evaluate_condition(ctx: MatchContext, entry: Entry, section: str = "Match") -> tuple[bool, bool]:
    """(triggering, result) of one `Key=[|][!]value` condition."""
    setting = _setting(entry.key)
    if setting is None and entry.key not in HOST_MATCHERS:
        known = known_matchers()
        close = difflib.get_close_matches(entry.key, sorted(known), n=1)
        hint = f" (did you mean {close[0]}=?)" if close else ""
        raise KosiError(
            f"{entry.key}= cannot be used in [{section}]{hint}; the conditions are: " + ", ".join(sorted(known)),
            file=ctx.file, line=entry.line,
        )  # fmt: skip
    text = entry.value.strip()
    trigger = text.startswith("|")
    if trigger:
        text = text[1:].lstrip()
    negate = text.startswith("!") and not text.startswith("!=")  # `!=` is a version operator
    if negate:
        text = text[1:].lstrip()
    text = expand_specifiers(text, ctx.config, ctx.location, file=ctx.file, line=entry.line)
    if setting is None:
        result = HOST_MATCHERS[entry.key](ctx, text, entry)
    else:
        result = _match_setting(ctx, setting, text, entry)
    return trigger, result != negate


def _section_holds(ctx: MatchContext, section: Section) -> tuple[bool, Entry | None]:
    """Whether one section holds, and the first condition that made it fail."""
    triggers: list[tuple[bool, Entry]] = []
    plain_failure: Entry | None = None
    for entry in section.entries:
        trigger, result = evaluate_condition(ctx, entry, section.name)
        if trigger:
            triggers.append((result, entry))
        elif not result and plain_failure is None:
            plain_failure = entry
    if plain_failure is not None:
        return False, plain_failure
    if triggers and not any(result for result, _ in triggers):
        return False, triggers[0][1]
    return True, None


def _holds(
    ctx: MatchContext, sections: list[Section], plain: str, triggering: str
) -> tuple[bool, Section | None, Entry | None]:
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
