"""`kosi summary`: the effective settings of every image, for people or (with --json) programs.

Both forms come from the settings table: sections in table order, one line per setting.
The JSON form is one document, {"Tools": <object or null>, "Images": [...]}, with the
subimages first and the main image last, as they are built.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from kosi.config.model import Config, Project

UNSET = "(unset)"


def format_value(setting: Any, value: Any) -> str:
    """A setting's value as a person writes it in mkosi.conf: each value type knows its text."""
    if value is None or (isinstance(value, (list, tuple)) and not value):
        return UNSET
    return setting.type.text(value)


def is_secret(setting: Any) -> bool:
    """Settings read from a secret file (mkosi.rootpw, ...) are not printed for people to see."""
    return setting.path_read and setting.secret


def render_image(config: Config, title: str) -> str:
    from kosi.config.settings import SETTINGS

    lines = [f"{title}:"]
    section = None
    for setting in SETTINGS:
        if setting.section != section:
            section = setting.section
            lines.append(f"  [{section}]")
        value = config[setting.name]
        shown = (
            "(set, not shown)" if value not in (None, [], "") and is_secret(setting) else format_value(setting, value)
        )
        lines.append(f"    {setting.name}: {shown}")
    return "\n".join(lines) + "\n"


def tools_config(project: Project) -> Config | None:
    """The tools tree's configuration when one is configured (ToolsTree=default or yes)."""
    if project.tools is not None:
        return project.tools
    try:
        wanted = project.main["ToolsTree"]
    except KeyError:
        return None
    if str(wanted) not in ("default", "yes"):
        return None
    from kosi.config.loader import tools_tree_config

    return tools_tree_config(project.main, read_files=hasattr(project.main, "origins"), builtin=True)


def render_text(project: Project) -> str:
    parts = []
    tools = tools_config(project)
    if tools is not None:
        parts.append(render_image(tools, "Tools tree"))
    for config in project.images:
        title = "Main image" if config is project.main else f"Image '{config.image}'"
        parts.append(render_image(config, title))
    return "\n".join(parts)


def render_json(project: Project) -> dict[str, Any]:
    from kosi.config.jsonio import config_to_json

    tools = tools_config(project)
    return {
        "Images": [config_to_json(config) for config in project.images],
        "Tools": None if tools is None else config_to_json(tools),
    }


def run(args) -> int:
    from kosi.config.loader import load_project

    project = load_project(args)
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(render_json(project), indent=2) + "\n")
    else:
        sys.stdout.write(render_text(project))
    return 0
