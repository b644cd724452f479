"""Shared helpers for the configuration tests: writing a project and loading it like the CLI does."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


def write(root: Path, files: dict[str, str]) -> Path:
    """Create a project from {relative path: content}; content is dedented."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content).lstrip("\n"))
    return root


@pytest.fixture
def project(tmp_path):
    def make(files: dict[str, str]) -> Path:
        return write(tmp_path / "proj", files)

    return make


def load(directory: Path, *argv: str):
    from kosi.config.cli_args import parse_command_line
    from kosi.config.loader import load_project

    args = parse_command_line(["-C", str(directory), *argv])
    return load_project(args)


def main_config(directory: Path, *argv: str):
    return load(directory, *argv).main
