"""The built image that shell/boot/vm/serve/burn work on: finding it, building it when it
is missing (or with -f), and the temporary copy used for Ephemeral= and RuntimeSize=."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

from kosi import log
from kosi.config.cli_args import Args
from kosi.config.model import Config, Project
from kosi.errors import KosiError
from kosi.outputs import format as formats
from kosi.outputs.naming import base_name, output_directory, output_format, output_name


def image_path(config: Config) -> Path:
    return output_directory(config) / output_name(config)


def artifact(config: Config, suffix: str) -> Path:
    """A file written next to the image, e.g. <name>.efi (SplitArtifacts=) or <name>.vsock."""
    return output_directory(config) / f"{base_name(config)}.{suffix}"


def ensure_built(project: Project, args: Args) -> Path:
    """Build the project first when its main output is missing or -f was given; return the output."""
    config = project.main
    path = image_path(config)
    if args.force or not os.path.lexists(path):
        from kosi.verbs.build import build_project

        build_project(project, args)
    if not os.path.lexists(path):
        raise KosiError(f"the build did not produce {path}")
    return path


def verb_arguments(config: Config, args: Args) -> list[str]:
    """The words after the verb and after `--`, which shell/boot/vm/ssh hand to the tool they run."""
    words = [str(w) for w in args.verb_args]
    after = list(args.cmdline or config.arguments)
    return words + [str(w) for w in after]


def machine_name(config: Config) -> str:
    """Machine=, or the image's name made acceptable as a hostname."""
    name = config.machine or base_name(config)
    cleaned = "".join(c if c.isalnum() or c in "-" else "-" for c in str(name)).strip("-")
    return cleaned[:64] or "kosi"


def is_disk(config: Config, path: Path) -> bool:
    return path.is_file() and formats.get(output_format(config)).needs_repart  # a GPT disk image


def copy_image(source: Path, target: Path) -> None:
    """A reflink copy where the file system can (btrfs, xfs), a sparse copy otherwise."""
    if source.is_dir():
        subprocess.run(["cp", "-a", "--reflink=auto", str(source), str(target)], check=True)
    else:
        subprocess.run(["cp", "--reflink=auto", "--sparse=always", str(source), str(target)], check=True)


def grow_disk(path: Path, size: int) -> None:
    """RuntimeSize=: enlarge the copy and move the GPT's backup header to the new end
    (systemd-repart in the guest grows the partitions if the image asks for it)."""
    if path.stat().st_size >= size:
        return
    os.truncate(path, size)
    result = subprocess.run(
        ["sfdisk", "--relocate", "gpt-bak-std", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    if result.returncode != 0:
        log.warn(f"RuntimeSize=: could not move the GPT backup header: {result.stderr.strip()}")


@contextlib.contextmanager
def runtime_image(config: Config, path: Path) -> Iterator[Path]:
    """The image to run: a throw-away copy for Ephemeral= (and whenever RuntimeSize= grows a
    disk, so the build output itself is never modified), else the output itself."""
    runtime_size = config.runtime_size
    needs_copy = config.ephemeral or (runtime_size and is_disk(config, path))
    if not needs_copy:
        yield path
        return
    parent = path.parent if os.access(path.parent, os.W_OK) else Path("/var/tmp")
    scratch = Path(tempfile.mkdtemp(prefix=f".kosi-{path.name}-", dir=parent))
    copy = scratch / path.name
    try:
        copy_image(path, copy)
        if runtime_size and is_disk(config, copy):
            grow_disk(copy, runtime_size)
        yield copy
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def runtime_trees(config: Config) -> list:
    """RuntimeTrees=, each of which must exist now (mkosi 27.1 reads them without looking)."""
    for tree in config.runtime_trees:
        if not Path(tree.source).exists():
            raise KosiError(f"RuntimeTrees={tree.source}: no such file or directory")
    return list(config.runtime_trees)
