"""Settings kosi parses but does not implement yet (`Setting.unsupported` in the table).

A configuration that gives one of them a non-default value is told so: a warning naming the
setting, where it was set and what kosi does instead, or an error when ignoring the value would
weaken what the user asked for (`Setting.unsupported_fails`: signing, verity, encryption).
"""

from __future__ import annotations

from kosi import log
from kosi.config.model import Project
from kosi.config.values import Feature
from kosi.errors import KosiError


def _turns_off(value: object) -> bool:
    """`no` asks for what kosi does anyway when it lacks the feature: nothing to refuse or warn."""
    return value is False or value == Feature.disabled


def check(project: Project) -> None:
    from kosi.config.settings import SETTINGS

    warned: set[str] = set()
    for config in project.images:
        origins = getattr(config, "origins", {})
        for setting in SETTINGS:
            if setting.unsupported is None or not config.is_set(setting.name):
                continue
            value = config[setting.name]
            if value == setting.get_default(config) or _turns_off(value):
                continue
            origin = origins.get(setting.name)
            where = origin.where() if origin is not None else "configuration"
            if setting.unsupported_fails:
                raise KosiError(
                    f"{setting.name}= is not supported by kosi: {setting.unsupported} "
                    f"(remove it or leave it at its default)",
                    file=getattr(origin, "file", None),
                    line=getattr(origin, "line", None),
                )
            if setting.name not in warned:
                warned.add(setting.name)
                log.warn(f"{where}: {setting.name}= is not supported by kosi and has no effect: {setting.unsupported}")
