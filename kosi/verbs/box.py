"""`kosi box`: run a command with /usr from the tools tree (or the host's when none is used)."""

from __future__ import annotations

import os
import subprocess

from kosi.errors import KosiError


def run(args) -> int:
    from kosi.config.loader import load_project
    from kosi.run.image import verb_arguments
    from kosi.run.toolsenv import runtime_prefix
    from kosi.verbs.build import ensure_tools_tree

    project = load_project(args)
    tools = ensure_tools_tree(project, args)
    command = verb_arguments(project.main, args) or [os.environ.get("SHELL") or "bash"]
    try:
        return subprocess.run([*runtime_prefix(tools), *command]).returncode
    except FileNotFoundError:
        raise KosiError(f"{command[0]}: command not found") from None
