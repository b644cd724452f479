"""`kosi journalctl`: journalctl on the image; words after the verb are appended."""

from __future__ import annotations

import subprocess

from kosi.errors import KosiError


def run(args) -> int:
    from kosi.config.loader import load_project
    from kosi.run.image import ensure_built, verb_arguments
    from kosi.run.journal import journalctl_command
    from kosi.tools_tree import ensure_tools_tree, tools_command

    project = load_project(args)
    image = ensure_built(project, args)
    tools = ensure_tools_tree(project, args)
    cmd = journalctl_command(image, verb_arguments(project.main, args))
    try:
        return subprocess.run([*tools_command(tools, [image.parent]), *cmd]).returncode
    except FileNotFoundError:
        raise KosiError("journalctl is not installed (install systemd, or use ToolsTree=default)") from None
