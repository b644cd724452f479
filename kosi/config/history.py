"""History=: the settings of the last build's command line, reused until the image is rebuilt.

A build with History=yes records the settings given on its command line, as `--json summary`
prints them, in `.mkosi-private/history/latest.json` of the project directory (mkosi 27.1's
file). Every later invocation that does not build (summary, boot, vm, shell, ...) and
`build -R` read them back as if given on the command line again: a command-line value that
differs from the recorded one is ignored with a warning, since the image was built without
it; settings the record does not name, and every [Runtime] setting, still come from the
command line. `build` (without -R) and any `-f` ignore the record, `build` writes a new one
(History=yes, not with -R), `clean` removes it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from kosi import log
from kosi.errors import KosiError

HISTORY = Path(".mkosi-private/history/latest.json")


def history_file(directory: Path) -> Path:
    return directory / HISTORY


def reads_history(args: Any) -> bool:
    """Whether this invocation takes the last build's settings: not when it builds anew."""
    if getattr(args, "force", 0):
        return False
    verb = getattr(args, "verb", "build")
    if verb in ("build", "plan"):
        return bool(getattr(args, "rerun_build_scripts", False))
    return verb != "clean"


def recorded(setting: Any) -> bool:
    """What a record holds: settings printed per image (not Include= or ToolsTree*=)."""
    return bool(setting.json) and setting.name != "Include"


def read(directory: Path) -> dict[str, Any] | None:
    path = history_file(directory)
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise KosiError(
            f"cannot read the last build's history: {e}", file=str(path), hint="rerun once with -f"
        ) from None
    if not isinstance(document, dict):
        raise KosiError("the last build's history is not a JSON object", file=str(path), hint="rerun once with -f")
    return document


def entries(directory: Path) -> list[tuple[Any, Any, Any]]:
    """(setting, recorded JSON, value; None for unset) of each recorded setting that is taken
    back, in the record's order: every one but the [Runtime] settings."""
    from kosi.config.settings import SETTINGS_BY_NAME

    document = read(directory)
    path = history_file(directory)
    found = []
    for name, raw in (document or {}).items():
        setting = SETTINGS_BY_NAME.get(name)
        if setting is None or not recorded(setting):
            raise KosiError(f"unknown setting {name!r} in the last build's history", file=str(path),
                            hint="rerun once with -f to record the history anew")  # fmt: skip
        if setting.section == "Runtime":
            continue  # how the image runs may change without a rebuild
        try:
            value = None if raw is None else setting.type.from_json(raw)
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            raise KosiError(f"{name}: invalid value {raw!r} in the last build's history ({e})", file=str(path),
                            hint="rerun once with -f") from None  # fmt: skip
        found.append((setting, raw, value))
    return found


def warn_ignored(setting: Any, raw: Any) -> None:
    log.warn(f"ignoring {setting.long or setting.name} from the command line: the last build used "
             f"{json.dumps(raw)} (History=yes; rebuild with -f to change it)")  # fmt: skip


def write(directory: Path, document: dict[str, Any]) -> None:
    path = history_file(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=4, sort_keys=True) + "\n")


def remove(directory: Path) -> None:
    shutil.rmtree(history_file(directory).parent, ignore_errors=True)
