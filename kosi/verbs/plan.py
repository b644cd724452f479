"""`kosi plan`: what `kosi build` would do and why, without doing any of it.

For each image, in build order: whether its outputs are in the way (needs -f), whether
the tools tree would be used and (re)built, whether the Incremental= cache would be
reused or why not, and every step of the execution flow with the reason it would be
skipped. It reads the same step objects the build runs, so it cannot drift from them.
Configure scripts are not run (they may have side effects): the plan shows the
configuration as written.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from kosi.boot.steps import GenerateUKIs
from kosi.config.model import Config
from kosi.outputs.publish import existing_outputs
from kosi.pipeline.context import Context
from kosi.pipeline.flow import build_steps
from kosi.pipeline.runner import plan as step_plan
from kosi.pipeline.step import ImageDependent
from kosi.verbs.build import check_buildable


def image_plan(config: Config, args: Any, tools: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"kosi-plan-{config.image}-") as tmp:
        context = Context(config=config, workspace=Path(tmp), package_cache=Path(tmp), tools=tools, args=args)
        steps = [
            {"step": name, "skip": reason, "depends-on-image": isinstance(reason, ImageDependent)}
            for name, reason in step_plan(context, build_steps())
        ]
    existing = existing_outputs(config)
    packages, first, sources = list(config.packages), [], []
    if config.distribution != "custom":
        from kosi.errors import KosiError
        from kosi.installers.base import package_manager_for

        try:
            manager = package_manager_for(config)
            sources = manager.sources(config)
            first = [] if config.base_trees else list(manager.first_packages(config))
        except KosiError as e:
            sources = [f"(none: {e})"]
    force = int(getattr(args, "force", 0) or 0)
    uki_step = next(s for s in steps if s["step"] == GenerateUKIs.name)
    return {
        "image": config.image,
        "format": str(config.format),
        "blocked": f"output {existing[0]} exists (use -f)" if existing and not force else None,
        "first-packages": first,
        "packages": packages,
        "sources": sources,
        "default-initrd": default_initrd_plan(config, force) if uki_step["depends-on-image"] else None,
        "steps": steps,
    }


def default_initrd_plan(config: Config, force: int) -> dict[str, Any] | None:
    """The default initrd a bootable image would get (once a kernel is found in it), and whether
    the cached one serves; None when Initrds= names only files or the image is the initrd."""
    from kosi.outputs import format as formats
    from kosi.boot.initrd import cache_path, initrd_config
    from kosi.config.values import DefaultInitrd

    if formats.get(config.format).image_is_initrd:
        return None
    if config.initrds and not any(isinstance(i, DefaultInitrd) for i in config.initrds):
        return None
    initrd = initrd_config(config)
    cached = cache_path(initrd)
    return {
        "packages": list(initrd.packages),
        "remove-packages": list(initrd.remove_packages),
        "cached": str(cached) if cached.exists() and force < 3 else None,
    }


def render(tools: dict[str, Any], images: list[dict[str, Any]]) -> str:
    lines = []
    if tools["tree"]:
        state = f"build it ({tools['build']})" if tools["build"] else "cached, reused"
        lines.append(
            f"tools tree {tools['tree']}: {state}" + (f" — used because {tools['why']}" if tools["why"] else "")
        )
    else:
        lines.append("tools tree: none, the host's tools serve")
    for image in images:
        lines.append(f"image '{image['image']}' (Format={image['format']}):")
        if image["blocked"]:
            lines.append(f"  stops: {image['blocked']}")
        if image.get("packages") or image.get("sources"):
            if image["first-packages"]:
                lines.append(f"  first: {' '.join(image['first-packages'])}")
            lines.append(f"  packages: {' '.join(image['packages']) or '(only the base system)'}")
            lines += [f"    from {source}" for source in image["sources"]]
        if initrd := image.get("default-initrd"):
            state = f"cached, reused: {initrd['cached']}" if initrd["cached"] else "built on first use"
            lines.append(f"  default initrd (if the image has a kernel): {state}")
            lines.append(f"    packages: {' '.join(initrd['packages'])}")
            if initrd["remove-packages"]:
                lines.append(f"    then removed: {' '.join(initrd['remove-packages'])}")
        width = max(len(s["step"]) for s in image["steps"])
        for number, step in enumerate(image["steps"], start=1):
            if step["skip"] is None:
                verdict = "run"
            elif step["depends-on-image"]:
                verdict = f"run, unless {step['skip']}"
            else:
                verdict = f"skip: {step['skip']}"
            lines.append(f"  {number:2}. {step['step']:<{width}}  {verdict}")
    return "\n".join(lines)


def run(args) -> int:
    from kosi.config.loader import load_project
    from kosi.tools.tree import choose_tools_tree

    project = load_project(args)
    for config in project.images:
        check_buildable(config)
    choice = choose_tools_tree(project, "build", int(getattr(args, "force", 0) or 0))
    tools = {"tree": str(choice.tree) if choice.tree else None, "why": choice.why_used, "build": choice.why_build}
    # An unbuilt tools tree cannot answer "is this tool in it"; steps then judge by the host.
    usable = choice.tree if choice.tree and not choice.why_build else None
    images = [image_plan(config, args, usable) for config in project.images]
    if getattr(args, "json", False):
        print(json.dumps({"ToolsTree": tools, "Images": images}, indent=2))
    else:
        print(render(tools, images))
    return 0
