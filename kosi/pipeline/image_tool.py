"""Running one of systemd's offline tools on the image root: the base of the setup steps.

Each tool runs with --root= on the image, in the sandbox with /usr from the tools tree (or the
host's), and is skipped with the reason when it is nowhere to be found or the image does not
ship what it works on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from kosi.errors import KosiError
from kosi.pipeline.context import Context
from kosi.pipeline.layers import layered_skip
from kosi.pipeline.step import Step
from kosi.pipeline.tools import find_tool, missing_reason, run_on_root
from kosi.sandbox import Mount


def in_image(context: Context, *candidates: str) -> Path | None:
    for candidate in candidates:
        path = context.root / candidate.lstrip("/")
        if os.path.lexists(path):
            return path
    return None


def tool_environment(context: Context) -> dict[str, str]:
    from kosi.scripts.environment import source_date_epoch

    env = dict(os.environ)
    epoch = source_date_epoch(context.config)
    if epoch:
        env["SOURCE_DATE_EPOCH"] = epoch  # shadow and systemd tools stamp dates with it
    return env


class ImageTool(Step):
    """A step that runs `program` on the image root; skipped when the image needs nothing from
    it, or (a missing tool is not a failure) when neither the tools tree nor the host has it."""

    program: str = ""

    def skip(self, context):
        return (
            layered_skip(context.config) or self.nothing_to_do(context) or missing_reason(self.program, context.tools)
        )

    def nothing_to_do(self, context) -> str | None:
        return None

    def run_tool(self, context: Context, arguments: list[str], *, mounts: Sequence[Mount] = (), check: bool = True):
        tool = find_tool(self.program, context.tools)
        if tool is None:  # the runner asked skip() first; only a tree changing under us gets here
            raise KosiError(missing_reason(self.program, context.tools) or f"{self.program} is not installed")
        return run_on_root(tool, context.root, arguments, mounts=mounts, env=tool_environment(context), check=check)
