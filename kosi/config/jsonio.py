"""A Config as JSON and back: the contract of `--json summary`, $MKOSI_CONFIG and mkosi.configure.

Keys are the setting names of the manual ("Distribution", "BaseTrees", ...) and values are
what each setting's type prints (`ValueType.to_json`): paths as absolute strings, trees as
{"Source": ..., "Target": ...}, sizes in bytes, enums in their config spelling, unset as
null. Nothing here names a setting: everything comes from the table.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from kosi.config.model import Config
from kosi.config.specifiers import build_subdirectory
from kosi.errors import KosiError


#: keys of an image's JSON that are no settings
DERIVED_KEYS = ("Image", "Files", "BuildSubdirectory")


def value_to_json(setting: Any, value: Any) -> Any:
    if value is None:
        return [] if setting.is_list else None  # an unset collection is simply empty
    return setting.type.to_json(value)


def config_to_json(config: Config) -> dict[str, Any]:
    """What mkosi 27.1 prints for an image: the image's name ("Image"), the configuration files
    read ("Files"), the build directory of the image ("BuildSubdirectory"), and every setting of the table that mkosi prints (`Setting.json`) with its
    effective value (defaults applied), keys sorted as mkosi sorts them."""
    from kosi.config.settings import SETTINGS

    document: dict[str, Any] = {"Image": config.image, "Files": [str(f) for f in config.files]}
    for setting in SETTINGS:
        if not setting.json:
            continue
        if (
            getattr(setting.type, "null_when_unset", False)
            and config.image == "main"
            and not config.is_set(setting.name)
        ):
            document[setting.name] = None
        else:
            document[setting.name] = value_to_json(setting, config[setting.name])
    builddir = build_subdirectory(config)
    if builddir is not None:  # derived, not a setting: mkosi 27.1 prints it only with a build directory
        document["BuildSubdirectory"] = str(builddir)
    return dict(sorted(document.items()))


def config_from_json(
    document: dict[str, Any], *, image: str = "main", directory: Path | None = None, source: str | None = None
) -> Config:
    """A Config whose values are those of `document`; null leaves a setting unset.

    `source` names where the document came from (a configure script) for error messages;
    unknown keys are refused rather than dropped so a typo in a script does not go unnoticed.
    """
    from kosi.config.settings import SETTINGS_BY_NAME

    if not isinstance(document, dict):
        raise KosiError("expected a JSON object mapping setting names to values", file=source)
    config = Config(image=image, directory=directory)
    for name, raw in document.items():
        if name in DERIVED_KEYS:  # what was read or derived, not settings
            continue
        setting = SETTINGS_BY_NAME.get(name)
        if setting is None:
            close = difflib.get_close_matches(name, list(SETTINGS_BY_NAME), n=1)
            raise KosiError(
                f"unknown setting {name!r} in JSON configuration",
                file=source,
                hint=f"did you mean {close[0]}?" if close else None,
            )
        if raw is None:
            continue
        try:
            config.values[name] = setting.type.from_json(raw)
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            raise KosiError(
                f"{name}: invalid JSON value {raw!r} ({e}), expected {setting.type.describe()}", file=source
            ) from None
    return config


def update_from_json(config: Config, document: dict[str, Any], *, source: str | None = None) -> Config:
    """A copy of `config` with the settings in `document` replaced (what a configure script prints)."""
    parsed = config_from_json(document, image=config.image, directory=config.directory, source=source)
    updated = config.copy()
    for name in document:
        if name in DERIVED_KEYS:
            continue
        if name in parsed.values:
            if parsed.values[name] != config.values.get(name):  # unchanged keeps e.g. Initrds=default
                updated.values[name] = parsed.values[name]
        else:
            updated.values.pop(name, None)  # null: back to the default
    return updated


def dumps(config: Config) -> str:
    """The JSON text handed to scripts ($MKOSI_CONFIG, a configure script's stdin)."""
    return json.dumps(config_to_json(config), indent=2) + "\n"
