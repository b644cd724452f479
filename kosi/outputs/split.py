"""SplitArtifacts=: files written next to the main output, for every format but none.

mkosi 27.1 defaults to uki,kernel,initrd: a bootable image also leaves <Output>.efi,
<Output>.vmlinuz and <Output>.initrd (which `kosi vm` and direct kernel boot use), and
os-release etc. are written for a tar or a directory as well as for a disk.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from kosi.outputs.compression import compress_level, compression_for
from kosi.outputs.naming import base_name, output_compression, split_tar_name
from kosi.pipeline.context import Context
from kosi.sandbox import run


def write_split_tar(context: Context) -> None:
    """SplitArtifacts=tar: the tree as Format=tar writes it, next to any other format (mkosi
    27.1 leaves it out for Format=tar itself). Written before the main output, which may move
    the tree away (Format=directory)."""
    from kosi.outputs.base import pipe_compressed
    from kosi.outputs.tar import tar_command

    config = context.config
    if "tar" not in config.split_artifacts or config.format in ("tar", "none"):
        return
    target = context.staging / split_tar_name(config)
    pipe_compressed(context, tar_command(context, context.root), target, compression_for(config))


def write_split_artifacts(context: Context, table: list[dict[str, Any]], wanted: set[str]) -> None:
    """SplitArtifacts=: files next to the image in the staging directory."""
    name = base_name(context.config)
    staging = context.staging
    if "partitions" in wanted:
        # repart --split=yes wrote <image stem>.<partition>.raw files next to the image: name
        # them after Output= and compress them like the image (mkosi 27.1).
        stem = Path(context.state.repart_image or "image.raw").stem
        compression = output_compression(context.config)
        for partition in table:
            split_path = Path(partition.get("split_path") or "/nonexistent")
            if not split_path.exists():
                continue
            rest = split_path.name[len(stem) :] if split_path.name.startswith(stem + ".") else f".{split_path.name}"
            target = staging / f"{name}{rest}"
            if split_path != target:
                os.replace(split_path, target)
            if compression is not None:
                with open(f"{target}{compression.extension}", "wb") as out:
                    run(compression.command(compress_level(context.config)) + [str(target)], stdout=out)
                target.unlink()
    if "roothash" in wanted:
        roothash = next((p.get("roothash") for p in table if p.get("roothash")), None)
        if roothash:
            (staging / f"{name}.roothash").write_text(roothash + "\n")
    if "os-release" in wanted:
        for candidate in ("etc/os-release", "usr/lib/os-release"):
            source = context.root / candidate
            if source.exists():
                shutil.copyfile(source, staging / f"{name}.osrelease")
                break
    if "repart-definitions" in wanted:
        target = staging / f"{name}.repart.d"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        for directory in context.state.repart_definitions:
            for conf in sorted(directory.glob("*.conf")):
                shutil.copy2(conf, target / conf.name)
    state = context.state
    for kind, artifact in (
        ("uki", state.ukis[0] if state.ukis else None),
        ("kernel", state.split_kernel),
        ("initrd", state.split_initrd),
        ("kernel-modules-initrd", state.split_modules_initrd),
    ):
        if kind in wanted and artifact:
            suffix = {
                "uki": "efi",
                "kernel": "vmlinuz",
                "initrd": "initrd",
                "kernel-modules-initrd": "kernel-modules-initrd",
            }[kind]
            shutil.copy2(artifact, staging / f"{name}.{suffix}")
