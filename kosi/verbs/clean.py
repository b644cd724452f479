"""`kosi clean`: outputs; with -f also incremental caches and the tools tree; -ff also the package cache.
-w removes the build directory (BuildDirectory=)."""

from __future__ import annotations

import shutil
from pathlib import Path


from kosi import log
from kosi.config.cli_args import Args
from kosi.config.model import Config, Project
from kosi.outputs.publish import existing_outputs, remove_path
from kosi.pipeline.cache import cache_location
from kosi.pipeline.context import Context
from kosi.verbs.build import package_cache_directory


def clean_image(config: Config, force: int, wipe_build_dir: bool) -> None:
    for path in existing_outputs(config):
        log.info(f"removing {path}")
        remove_path(path)
    context = Context(config=config, workspace=Path("/nonexistent"), package_cache=Path("/nonexistent"))
    if force >= 1:
        location = cache_location(context)
        if location.exists() or location.root.exists():
            log.info(f"removing cached image {location.root}")
            location.remove()
    if force >= 2:
        cache = package_cache_directory(config)
        log.info(f"removing package cache {cache}")
        shutil.rmtree(cache, ignore_errors=True)
    if wipe_build_dir:
        from kosi.scripts.environment import wipe_build_directory

        wipe_build_directory(config)


def clean_project(project: Project, args: Args) -> None:
    from kosi.pipeline.context import Context as _Context
    from kosi.scripts.execute import run_scripts

    force = args.force
    for config in project.images:
        clean_image(config, force, args.wipe_build_dir)
        import tempfile

        with tempfile.TemporaryDirectory(prefix="kosi-clean-") as tmp:
            context = _Context(config=config, workspace=Path(tmp), package_cache=Path(tmp), args=args)
            (context.staging).mkdir()
            run_scripts(context, "clean")
    from kosi.config import history

    history.remove(project.main.directory)  # the next invocation starts from its own command line
    if force >= 1 and project.tools is not None:
        tools_output = existing_outputs(project.tools)
        for path in tools_output:
            log.info(f"removing tools tree {path}")
            remove_path(path)


def run(args) -> int:
    from kosi.config.loader import load_project

    clean_project(load_project(args), args)
    return 0
