"""One step of the build (manual: EXECUTION FLOW). The runner does progress, timing and caching."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kosi.pipeline.context import Context


class ImageDependent(str):
    """A skip reason that depends on what the image holds (a tool, a directory), so it is
    known only while building: `kosi plan` shows such a step as conditional, not skipped."""


class Skipped(Exception):
    """Raised by `Step.run` when the step finds, only once it runs, that it has nothing to do:
    the runner records the step as skipped with `reason` instead of as done."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = ImageDependent(reason)


class Step:
    """A small named unit of the build.

    Subclasses set `name` (shown in the progress line and timing table) and implement `run`.

    - `skip` returns the reason when the step has nothing to do for this config (or, as an
      `ImageDependent` reason, for what the image holds so far). Both `kosi plan` and the
      build ask it, through `runner.skip_reason`: put every decision there, not in `run`.
    - `run` does the work. When it finds out only then that there is nothing to do, it raises
      `Skipped(reason)` rather than returning quietly.
    - `inputs` returns what makes up the step's cache key, so the runner can tell whether a
      cached result is still valid and why not.
    - `ends_build`, when set, is the reason every later step is skipped once this one ran.
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
