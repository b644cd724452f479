"""Copying trees into the workspace or the image: sandbox, base, skeleton and extra trees.

Directories are copied with reflinks where the file system allows and made root-owned
(the manual: ownership is only kept for tar archives); tar archives are unpacked with
their ownership.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kosi.pipeline.cache import fingerprint_path
from kosi.pipeline.context import Context
from kosi.config.values import Tree
from kosi.pipeline.step import Step
from kosi.sandbox import run


def trees(context: Context, name: str) -> list[tuple[Path, str]]:
    """The (source, target) pairs of a tree setting. Its mkosi.* default (mkosi.skeleton/,
    mkosi.extra.tar, ...) is already in the value: the loader assigns default paths.
    BaseTrees= holds plain paths, the others `Tree(source, target)`."""
    pairs = []
    for item in context.config[name]:
        if isinstance(item, Tree):
            pairs.append((item.source, item.target or "/"))
        else:
            pairs.append((Path(item), "/"))
    return pairs


def copy_into(source: Path, root: Path, target: str) -> None:
    destination = root / target.lstrip("/")
    destination.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        # --no-preserve=ownership: directories become root-owned, as the manual says.
        run(
            [
                "cp",
                "--reflink=auto",
                "-a",
                "--no-preserve=ownership",
                "--no-target-directory",
                f"{source}",
                f"{destination}",
            ]
        )
    elif ".tar" in source.name:
        run(
            [
                "tar",
                "--extract",
                f"--file={source}",
                f"--directory={destination}",
                "--same-owner",
                "--same-permissions",
                "--xattrs",
                "--xattrs-include=*",
                "--numeric-owner",
            ]
        )
    else:
        run(["cp", "--reflink=auto", "-a", "--no-preserve=ownership", f"{source}", f"{destination}/"])


class TreeStep(Step):
    setting_name = ""

    def destination(self, context: Context) -> Path:
        return context.root

    def skip(self, context):
        if not trees(context, self.setting_name):
            return f"no {self.setting_name}="
        return None

    def inputs(self, context) -> dict[str, Any]:
        return {
            f"{self.setting_name}=": [(str(s), t, fingerprint_path(s)) for s, t in trees(context, self.setting_name)]
        }

    def run(self, context):
        for source, target in trees(context, self.setting_name):
            copy_into(source, self.destination(context), target)


class SandboxTrees(TreeStep):
    name = "copy sandbox trees"
    setting_name = "SandboxTrees"

    def destination(self, context):
        return context.pkgmngr


class BaseTrees(TreeStep):
    name = "copy base trees"
    setting_name = "BaseTrees"


class SkeletonTrees(TreeStep):
    name = "copy skeleton trees"
    setting_name = "SkeletonTrees"


class ExtraTrees(TreeStep):
    name = "copy extra trees"
    setting_name = "ExtraTrees"

    def inputs(self, context):
        return {}  # copied after the cache point: never part of the cache key
