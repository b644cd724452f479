"""`kosi cat-config`: every configuration file that was read, like `systemctl cat`."""

from __future__ import annotations

import sys
from pathlib import Path


def render(files: list[Path]) -> str:
    parts = []
    for path in files:
        try:
            text = Path(path).read_text()
        except IsADirectoryError:
            continue
        except OSError as e:
            text = f"# (cannot read: {e.strerror})\n"
        if text and not text.endswith("\n"):
            text += "\n"
        parts.append(f"# {path}\n{text}")
    return "\n".join(parts)


def run(args) -> int:
    from kosi.config.loader import load_project

    project = load_project(args)
    files: list[Path] = []
    for config in project.images:  # subimages first, like the build order; each file once
        for path in config.files:
            if path not in files:
                files.append(path)
    sys.stdout.write(render(files))
    return 0
