"""$SRCDIR for scripts: the build sources, mounted as BuildSourcesEphemeral= asks.

- `no` (and always for sync scripts): the sources themselves, writable; what a script changes
  is changed for real. A single tree without a target is $SRCDIR as it is; several trees (or
  one with a target) are bind-mounted below <workspace>/src.
- `yes`: every tree is an overlay whose upper directory lives in the workspace and is thrown
  away after all scripts of one kind ran, so each kind starts from the original sources.
- `buildcache`: build scripts get overlays whose upper directories persist in the build
  directory (BuildDirectory=, below the BuildKey= subdirectory), so what one build changes in
  the sources (generated files, patches, a configured build tree) is there again in the next
  build of the same key, while the real sources stay untouched. Other script kinds behave as
  with `yes`. Removing the build directory (`kosi clean -ff`) resets it.

overlayfs cannot keep its upper directory on overlayfs (a container's root file system): there
`yes` copies the sources into the workspace instead, and `buildcache` is refused.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from kosi.config.values import Tree
from kosi.errors import KosiError
from kosi.pipeline.context import Context
from kosi.sandbox import Mount, run
from kosi.scripts.environment import build_directory

#: where buildcache keeps the overlays' upper directories, inside the build directory
BUILDCACHE_DIRECTORY = ".kosi-sources"


@dataclass
class Sources:
    """$SRCDIR on the host and the mounts that fill it in a script's sandbox; `scratch` is
    removed once the scripts of the kind ran."""

    directory: Path
    mounts: list[Mount] = field(default_factory=list)
    scratch: Path | None = None

    def discard(self) -> None:
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


def ephemeral_mode(context: Context, kind: str) -> str:
    """ "no", "yes" or "buildcache" as it applies to scripts of `kind`."""
    value = context.config["BuildSourcesEphemeral"]
    mode = "yes" if value is True or value == "yes" else "buildcache" if value == "buildcache" else "no"
    if kind == "sync":  # sync scripts exist to update the real sources
        return "no"
    if mode == "buildcache" and kind != "build":
        return "yes"
    return mode


def source_trees(context: Context) -> list[Tree]:
    trees = list(context.config["BuildSources"] or [])
    if not trees:
        trees = [Tree(Path(context.config.directory), None)]
    # Parents before the trees mounted inside them.
    return sorted(trees, key=lambda t: (t.target or "").strip("/"))


def overlay_storage(context: Context, kind: str, mode: str) -> Path:
    if mode == "buildcache":
        builddir = build_directory(context)
        if builddir is None:
            raise KosiError(
                "BuildSourcesEphemeral=buildcache keeps the changed sources in the build directory, "
                "but there is none (set BuildDirectory= or create mkosi.builddir/)"
            )
        return builddir / BUILDCACHE_DIRECTORY
    storage = context.workspace / "src-changes" / kind
    shutil.rmtree(storage, ignore_errors=True)
    return storage


def filesystem_type(path: Path) -> str:
    """The type of the file system `path` is on, from the longest mount point above it."""
    path = path.resolve()
    best, kind = "", ""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            # mount ID, parent, dev, root, MOUNT POINT, options, optional fields..., "-", TYPE, ...
            mountpoint = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
            if path.is_relative_to(mountpoint) and len(mountpoint) >= len(best):
                best, kind = mountpoint, fields[fields.index("-") + 1]
    return kind


def copy_trees(trees: list[Tree], directory: Path) -> None:
    for tree in trees:
        destination = directory / (tree.target or "").strip("/")
        destination.mkdir(parents=True, exist_ok=True)
        run(["cp", "--reflink=auto", "-a", "--no-target-directory", str(tree.source), str(destination)])


def layer_name(tree: Tree) -> str:
    """A directory name per tree, stable across builds (it names the persisted layer)."""
    target = (tree.target or "").strip("/")
    return "root" if not target else "tree-" + target.replace("/", "-")


def prepare_sources(context: Context, kind: str) -> Sources:
    """$SRCDIR and its mounts for the scripts of `kind` (see the module's docstring)."""
    mode = ephemeral_mode(context, kind)
    trees = source_trees(context)
    if mode == "no" and len(trees) == 1 and not trees[0].target:
        source = Path(trees[0].source)
        return Sources(source, [Mount(source, str(source))])
    directory = context.workspace / "src"
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    sources = Sources(directory, [Mount(directory, str(directory))])
    if mode == "no":
        sources.mounts += [Mount(Path(t.source), str(directory / (t.target or "").strip("/"))) for t in trees]
        return sources
    storage = overlay_storage(context, kind, mode)
    storage.mkdir(parents=True, exist_ok=True)
    if mode == "yes":
        sources.scratch = storage
    if filesystem_type(storage) == "overlay":
        if mode == "buildcache":
            raise KosiError(
                f"BuildSourcesEphemeral=buildcache: the build directory {storage.parent} is on overlayfs, "
                "which cannot hold the sources' overlay (put BuildDirectory= on another file system)"
            )
        copy_trees(trees, directory)
        return sources
    for tree in trees:
        target = directory / (tree.target or "").strip("/")
        layer = storage / layer_name(tree)
        (layer / "upper").mkdir(parents=True, exist_ok=True)
        (layer / "work").mkdir(exist_ok=True)
        sources.mounts.append(
            Mount.overlay([Path(tree.source)], str(target), upperdir=layer / "upper", workdir=layer / "work")
        )
        # overlayfs refuses to look up its own upper directory through the lower one (a build
        # or workspace directory inside the project): show the real directory there instead.
        source = Path(tree.source).resolve()
        if storage.resolve().is_relative_to(source):
            sources.mounts.append(Mount(storage, str(target / storage.resolve().relative_to(source)), "ro-bind"))
    return sources
