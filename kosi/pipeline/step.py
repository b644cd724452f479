"""One step of the build (manual: EXECUTION FLOW). The runner does progress, timing and caching."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kosi.pipeline.context import Context


class ImageDependent(str):
    """A skip reason that depends on what the image holds (a tool, a directory), so it is
    known only while building: `kosi plan` shows such a step as conditional, not skipped."""


class Step:
    """A small named unit of the build.

    Subclasses set `name` (shown in the progress line and timing table) and implement
    `run`. `skip` returns a reason when the step has nothing to do for this config
    (the runner shows it, e.g. in `plan`); `inputs` returns what makes up the step's
    cache key, so the runner can tell whether a cached result is still valid and why not.
    """

    name: str = ""
    #: when set, running this step ends the build: every later step is skipped with this reason
    ends_build: str | None = None

    def skip(self, context: "Context") -> str | None:
        return None

    def inputs(self, context: "Context") -> dict[str, Any]:
        return {}

    def run(self, context: "Context") -> None:
        raise NotImplementedError
