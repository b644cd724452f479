"""Moving finished outputs into OutputDirectory= — the very last thing a build does.

Everything is produced in the workspace's staging directory first, so a failed or
interrupted build leaves the previous outputs untouched.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from kosi.config.model import Config
from kosi.errors import KosiError
from kosi.outputs.naming import artifact_names, base_name, output_directory, output_name
from kosi.pipeline.context import Context


def existing_outputs(config: Config) -> list[Path]:
    directory = output_directory(config)
    return [directory / n for n in artifact_names(config) if os.path.lexists(directory / n)]


def check_previous(config: Config, force: int) -> None:
    """Refuse to overwrite outputs of an earlier build unless -f was given.

    With -f the old outputs are only removed when the new ones are published, so a
    failed build still leaves the previous outputs intact.
    """
    existing = existing_outputs(config)
    if existing and not force:
        raise KosiError(f"output {existing[0]} already exists", hint="use -f to rebuild, or `kosi clean`")


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def copy_nspawn_settings(context: Context) -> None:
    source = context.config.nspawn_settings  # mkosi.nspawn when it exists (loader)
    if source:
        shutil.copy2(source, context.staging / f"{base_name(context.config)}.nspawn")


def publish(context: Context) -> list[Path]:
    directory = output_directory(context.config)
    directory.mkdir(parents=True, exist_ok=True)
    mode = context.config.output_mode
    for previous in existing_outputs(context.config):
        remove_path(previous)
    moved = []
    main = output_name(context.config)
    for entry in sorted(context.staging.iterdir(), key=lambda p: p.name != main):
        target = directory / entry.name
        if os.path.lexists(target):
            remove_path(target)
        shutil.move(str(entry), str(target))
        if mode is not None and entry.name == main and not target.is_dir():
            os.chmod(target, mode)
        moved.append(target)
    return moved
