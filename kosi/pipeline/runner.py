"""Runs the ordered steps of one image: skip decisions, timing, events and the incremental cache.

Steps only do their work; everything around them lives here so that every step gets the
same treatment. Whether a step runs is decided by one function, `skip_reason`, which both
`plan` (kosi plan, without side effects) and `Runner` (the build) call, so the plan cannot
list a step the build then skips. What happens is told to monitors as events
(kosi.pipeline.monitors): the runner itself prints nothing.

The Incremental= cache is keyed on the `inputs()` of every step before the cache point and,
when valid, replaces the steps between `ReuseCache` and `SaveCache`.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from kosi import __version__ as kosi_version
from kosi import log
from kosi.errors import KosiError
from kosi.pipeline import atomic, cache
from kosi.pipeline.context import Context
from kosi.pipeline.monitors import Event, Monitor, StepRecord
from kosi.pipeline.step import Skipped, Step


class ReuseCache(Step):
    """Marker: replace the cached part of the build with the cached image (flow step 5)."""

    name = "reuse cached image"

    def run(self, context: Context) -> None:  # the runner does the work
        pass


class SaveCache(Step):
    """Marker: store the image (and build overlay) in the incremental cache (flow step 12)."""

    name = "cache image"

    def run(self, context: Context) -> None:
        pass


def cache_inputs(context: Context, steps: Sequence[Step]) -> dict[str, Any]:
    """Everything that feeds the cached image: the inputs of every step before SaveCache."""
    inputs: dict[str, Any] = {"kosi version": kosi_version}
    for step in steps:
        if isinstance(step, SaveCache):
            break
        inputs.update(step.inputs(context))
    return inputs


def cached_span(steps: Sequence[Step]) -> tuple[int, int] | None:
    """Indexes of ReuseCache and SaveCache, or None when the flow has no cache point."""
    starts = [i for i, s in enumerate(steps) if isinstance(s, ReuseCache)]
    ends = [i for i, s in enumerate(steps) if isinstance(s, SaveCache)]
    return (starts[0], ends[0]) if starts and ends else None


@dataclass
class CacheVerdict:
    """Whether this build uses its Incremental= cached image, decided before any step runs."""

    reason: str | None  # why the cached image is not used; None: it is used
    key: str | None = None
    digests: dict[str, str] | None = None
    location: cache.CacheLocation | None = None


def cache_verdict(context: Context, steps: Sequence[Step]) -> CacheVerdict:
    """Look at the cache (no side effects)."""
    if context.config.incremental == "no" or not cached_span(steps):
        return CacheVerdict("Incremental=no")
    location = cache.cache_location(context)
    digests = cache.input_digests(cache_inputs(context, steps))
    return CacheVerdict(cache.why_invalid(location, digests), cache.key_of(digests), digests, location)


def skip_reason(
    context: Context, steps: Sequence[Step], index: int, not_cached: str | None, ended_by: str | None
) -> str | None:
    """Why steps[index] does not run, or None when it runs: THE decision, for plan and build.

    `not_cached` is why the cached image is not used (None: it is), `ended_by` the reason of
    an earlier step that ended the build (Step.ends_build). Steps' own `skip` may look at the
    image (ImageDependent reasons), so the build asks just before the step would run."""
    step = steps[index]
    span = cached_span(steps)
    if span and isinstance(step, ReuseCache):
        return not_cached
    if span and isinstance(step, SaveCache):
        if not_cached == "Incremental=no":
            return not_cached
        return "cached image is current" if not_cached is None else None
    if span and not_cached is None and span[0] < index < span[1]:
        return "part of the cached image"
    if ended_by is not None:
        return ended_by
    return step.skip(context)


def plan(context: Context, steps: Sequence[Step]) -> list[tuple[str, str | None]]:
    """Which steps would run, and why the others would be skipped (no side effects)."""
    verdict = cache_verdict(context, steps)
    context.state.cached = verdict.reason is None
    context.state.cache_key = verdict.key
    out: list[tuple[str, str | None]] = []
    ended_by: str | None = None
    for index, step in enumerate(steps):
        reason = skip_reason(context, steps, index, verdict.reason, ended_by)
        out.append((step.name, reason))
        if reason is None and step.ends_build:
            ended_by = step.ends_build
    return out


#: below this much free space, a failed step is taken to have failed for want of it
NEARLY_FULL = 1 << 20


def explain_no_space(context: Context, step: Step, error: BaseException) -> KosiError | None:
    """A step that failed because a file system filled up (the workspace, a cache): one line
    naming the path, the step and the space left, whoever reported it (Python, a tool, or a
    script whose own message went to the terminal)."""
    if not isinstance(error, (OSError, KosiError)) or str(error).startswith("no space left on device for"):
        return None
    places = [context.workspace.parent, context.package_cache, cache.cache_directory(context)]
    if not atomic.is_no_space(error):
        full = [p for p in places if p.exists() and atomic.free_space(p) < NEARLY_FULL]
        if not full:
            return None
        free = atomic.human_size(atomic.free_space(full[0]))
        return KosiError(f"no space left on device for {full[0]}: step '{step.name}' failed with {free} free ({error})")
    path: str | None = None
    if isinstance(error, OSError) and error.filename:
        path = os.fsdecode(error.filename)
    else:
        quoted = re.findall(r"['‘`\"](/[^'’`\"]+)['’`\"]", str(error))
        path = quoted[-1] if quoted else None
    where = Path(path) if path else context.workspace
    directory = next((p for p in places if where.is_relative_to(p)), atomic.existing_parent(where.parent))
    return atomic.no_space(where, f"step '{step.name}'", None, directory)


FailureHook = Callable[[Context, Step, BaseException], None]


class Runner:
    def __init__(
        self,
        steps: Sequence[Step],
        *,
        monitors: Sequence[Monitor] = (),
        on_failure: FailureHook | None = None,
        only: tuple[type[Step], ...] | None = None,
    ):
        self.steps = list(steps)
        #: run only steps of these kinds (-R: the build scripts on the cached image); the
        #: others are skipped, but all of them still make up the cache key
        self.only = only
        self.monitors = list(monitors)
        #: called with (context, step, exception) when a step fails, e.g. for --debug-shell
        self.on_failure = on_failure
        self.records: list[StepRecord] = []
        self.verdict = CacheVerdict("Incremental=no")

    def emit(self, context: Context, kind: str, **fields: Any) -> None:
        event = Event(kind, context.config.image, **fields)
        for monitor in self.monitors:
            monitor.event(event)

    def prepare_cache(self, context: Context) -> None:
        """Decide before any step runs whether the cached image is used (scripts see $CACHED)."""
        mode = context.config.incremental
        if mode != "no" and cached_span(self.steps) and context.args.force >= 2:
            location = cache.cache_location(context)
            if location.exists():
                log.info(f"dropping cached image {location.root} (-ff)")
                location.remove()
        self.verdict = verdict = cache_verdict(context, self.steps)
        context.state.cache_key = verdict.key
        context.state.cached = verdict.reason is None
        if verdict.reason is None or verdict.key is None:  # used, or no cache to use (Incremental=no)
            return
        if mode == "strict":
            raise KosiError(
                f"Incremental=strict: no usable cached image for '{context.config.image}' ({verdict.reason})",
                hint="build once with Incremental=yes, or drop the cache with -ff",
            )
        self.emit(context, "cache-miss", reason=verdict.reason, key=verdict.key)

    def run(self, context: Context) -> list[StepRecord]:
        self.records = []
        started_build = time.monotonic()
        ok = False
        self.emit(context, "build-started", total=len(self.steps))
        try:
            self.prepare_cache(context)
            ended_by: str | None = None
            total = len(self.steps)
            for index, step in enumerate(self.steps, start=1):
                reason = skip_reason(context, self.steps, index - 1, self.verdict.reason, ended_by)
                if reason is None and self.only is not None and not isinstance(step, self.only):
                    reason = "--rerun-build-scripts: only the build scripts run"
                if reason is None:
                    reason = self.run_one(context, step, index, total)
                    if reason is None and step.ends_build:
                        ended_by = step.ends_build
                if reason is not None:
                    self.records.append(StepRecord(step.name, "skipped", reason=reason))
                    self.emit(context, "step-skipped", step=step.name, index=index, total=total, reason=reason)
            ok = True
        finally:
            self.emit(context, "build-finished", seconds=round(time.monotonic() - started_build, 3), ok=ok)
            for monitor in self.monitors:
                monitor.close()
        return self.records

    def run_one(self, context: Context, step: Step, index: int, total: int) -> str | None:
        """Run one step; returns the reason when the step found at run time that it had
        nothing to do (Skipped), None when it did its work."""
        self.emit(context, "step-started", step=step.name, index=index, total=total)
        started = time.monotonic()
        output: list[bytes] = []
        try:
            with log.chatter() as output:
                self.run_step(context, step)
        except Skipped as skipped:
            return skipped.reason
        except BaseException as e:
            seconds = round(time.monotonic() - started, 3)
            self.records.append(StepRecord(step.name, "failed", seconds))
            self.emit(
                context,
                "step-failed",
                step=step.name,
                index=index,
                total=total,
                seconds=seconds,
                error=str(e) or type(e).__name__,
                output=b"".join(output).decode(errors="replace") or None,
            )
            if self.on_failure and not isinstance(e, KeyboardInterrupt):
                self.on_failure(context, step, e)
            full = explain_no_space(context, step, e)
            if full is not None:
                raise full from None
            raise
        seconds = round(time.monotonic() - started, 3)
        self.records.append(StepRecord(step.name, "done", seconds))
        self.emit(context, "step-finished", step=step.name, index=index, total=total, seconds=seconds)
        return None

    def run_step(self, context: Context, step: Step) -> None:
        verdict = self.verdict
        if isinstance(step, ReuseCache):
            assert verdict.location is not None and verdict.digests is not None
            self.emit(context, "cache-hit", step=step.name, key=verdict.key)
            build_root = context.workspace / "build-root"
            cache.restore(verdict.location, context, build_root, verdict.digests)
            if build_root.is_dir():  # the build overlay was cached too; build scripts run on it
                context.state.build_root = build_root
            return
        if isinstance(step, SaveCache):
            assert verdict.location is not None and verdict.digests is not None
            build_root = context.workspace / "build-root"
            cache.save(verdict.location, context, verdict.digests, build_root if build_root.is_dir() else None)
            self.emit(context, "cache-saved", step=step.name, key=verdict.key)
            return
        step.run(context)
