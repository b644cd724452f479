"""`journalctl` and `coredumpctl` on a built image (its persistent journal, its coredumps)."""

from __future__ import annotations

from pathlib import Path

from kosi.errors import KosiError


def image_option(image: Path) -> list[str]:
    """How journalctl/coredumpctl address the image: --directory for a tree's journal,
    --image= for a disk image (they dissect and mount it themselves)."""
    if image.is_dir():
        journal = image / "var/log/journal"
        if not journal.is_dir():
            raise KosiError(f"{journal} does not exist: the image has no persistent journal (boot it first)")
        return [f"--directory={journal}"]
    return [f"--image={image}"]


def journalctl_command(image: Path, arguments: list[str]) -> list[str]:
    return ["journalctl", *image_option(image), "--no-hostname", *arguments]


def coredumpctl_command(image: Path, arguments: list[str]) -> list[str]:
    if image.is_dir():
        return ["coredumpctl", *image_option(image), *arguments]
    return ["coredumpctl", f"--image={image}", *arguments]


def run_on_image(args, tool: str) -> int:
    """The journalctl/coredumpctl verbs: build if needed, then run the tool on the image."""
    import subprocess

    from kosi.config.loader import load_project
    from kosi.run.image import ensure_built, verb_arguments
    from kosi.run.toolsenv import runtime_prefix
    from kosi.verbs.build import ensure_tools_tree

    project = load_project(args)
    image = ensure_built(project, args)
    tools = ensure_tools_tree(project, args)
    make = journalctl_command if tool == "journalctl" else coredumpctl_command
    cmd = make(image, verb_arguments(project.main, args))
    try:
        return subprocess.run([*runtime_prefix(tools), *cmd]).returncode
    except FileNotFoundError:
        package = "systemd-coredump" if tool == "coredumpctl" else "systemd"
        raise KosiError(f"{tool} is not installed (install {package}, or use ToolsTree=default)") from None
