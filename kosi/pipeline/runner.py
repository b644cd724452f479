"""Runs the ordered steps of one image: progress, timing, skip reasons and the incremental cache.

Steps only do their work; everything around them lives here so that every step gets
the same treatment: a live progress line (updating on a terminal, one line per step
otherwise), a wall-time table at the end of every build (also when it fails), and
the Incremental= cache, which is keyed on the `inputs()` of every step before the
cache point and replaces the steps between `ReuseCache` and `SaveCache` when valid.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import IO, Any, Sequence

from kosi import __version__ as kosi_version
from kosi import log
from kosi.errors import KosiError
from kosi.pipeline import cache
from kosi.pipeline.context import Context
from kosi.pipeline.step import Step


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


@dataclass
class StepRecord:
    name: str
    status: str  # "done", "skipped", "failed"
    seconds: float = 0.0
    reason: str | None = None


def incremental_mode(context: Context) -> str:
    """Incremental=: "no", "yes" or "strict"."""
    return context.config.incremental


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


class Progress:
    """The live progress line. On a terminal one line is rewritten with the elapsed time."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.live = stream.isatty() and not log.DEBUG
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, index: int, total: int, name: str) -> None:
        label = f"[{index}/{total}] {name}"
        if not self.live:
            print(f"‣ {label}", file=self.stream, flush=True)
            return
        started = time.monotonic()
        self._stop.clear()

        def tick() -> None:
            while not self._stop.wait(0.2):
                self.stream.write(f"\r\033[K‣ {label} {time.monotonic() - started:.1f}s")
                self.stream.flush()

        self.stream.write(f"\r\033[K‣ {label}")
        self.stream.flush()
        self._thread = threading.Thread(target=tick, daemon=True)
        self._thread.start()

    def finish(self, line: str | None = None) -> None:
        if self._thread:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self.stream.write("\r\033[K")
        if line and self.live:
            print(line, file=self.stream, flush=True)


def format_table(records: Sequence[StepRecord], title: str) -> str:
    width = max([len(r.name) for r in records] + [4])
    lines = [f"{title}:"]
    for r in records:
        if r.status == "skipped":
            lines.append(f"  {r.name:<{width}}  {'-':>8}  skipped: {r.reason}")
        else:
            extra = "  FAILED" if r.status == "failed" else ""
            lines.append(f"  {r.name:<{width}}  {r.seconds:7.2f}s{extra}")
    total = sum(r.seconds for r in records)
    lines.append(f"  {'total':<{width}}  {total:7.2f}s")
    return "\n".join(lines)


def plan(context: Context, steps: Sequence[Step]) -> list[tuple[str, str | None]]:
    """Which steps would run, and why the others would be skipped (no side effects)."""
    mode = incremental_mode(context)
    span = cached_span(steps)
    reuse_reason = None
    if mode != "no" and span:
        location = cache.cache_location(context)
        invalid = cache.why_invalid(location, cache.input_digests(cache_inputs(context, steps)))
        reuse_reason = None if invalid is None else invalid
    out: list[tuple[str, str | None]] = []
    ended_by: str | None = None
    for i, step in enumerate(steps):
        if span and isinstance(step, ReuseCache):
            out.append((step.name, "Incremental=no" if mode == "no" else reuse_reason))
        elif span and isinstance(step, SaveCache):
            if mode == "no":
                out.append((step.name, "Incremental=no"))
            else:
                out.append((step.name, "cached image is current" if reuse_reason is None else None))
        elif span and mode != "no" and reuse_reason is None and span[0] < i < span[1]:
            out.append((step.name, "part of the cached image"))
        elif ended_by is not None:
            out.append((step.name, ended_by))
        else:
            reason = step.skip(context)
            out.append((step.name, reason))
            if reason is None and step.ends_build:
                ended_by = step.ends_build
    return out


class Runner:
    def __init__(self, steps: Sequence[Step], *, stream: IO[str] | None = None, on_failure=None):
        self.steps = list(steps)
        self.stream = stream or sys.stderr
        #: called with (context, step, exception) when a step fails, e.g. for --debug-shell
        self.on_failure = on_failure
        self.records: list[StepRecord] = []
        self.cache_digests: dict[str, str] = {}
        self.cache_location: cache.CacheLocation | None = None
        self.ended_by: str | None = None  # a step that ends the build ran (Step.ends_build)

    def prepare_cache(self, context: Context) -> None:
        """Decide before any step runs whether the cached image is used (scripts see $CACHED)."""
        mode = incremental_mode(context)
        if mode == "no" or not cached_span(self.steps):
            return
        location = cache.cache_location(context)
        if context.args.force >= 2 and location.exists():
            log.info(f"dropping cached image {location.root} (-ff)")
            location.remove()
        digests = cache.input_digests(cache_inputs(context, self.steps))
        context.state.cache_key = cache.key_of(digests)
        self.cache_digests = digests
        self.cache_location = location
        reason = cache.why_invalid(location, digests)
        if reason is None:
            context.state.cached = True
            return
        if mode == "strict":
            raise KosiError(f"Incremental=strict: no usable cached image for '{context.config.image}' ({reason})",
                            hint="build once with Incremental=yes, or drop the cache with -ff")
        if reason == "no cached image yet":
            log.info(f"no cached image yet (key {context.state.cache_key})")
        else:
            log.info(f"cache invalid: {reason}")

    def run(self, context: Context) -> list[StepRecord]:
        self.records = []
        self.ended_by = None
        span = cached_span(self.steps)
        progress = Progress(self.stream)
        try:
            self.prepare_cache(context)
            cached = context.state.cached
            total = len(self.steps)
            for index, step in enumerate(self.steps, start=1):
                reason = self.skip_reason(context, step, index - 1, span, cached)
                if reason is not None:
                    self.records.append(StepRecord(step.name, "skipped", reason=reason))
                    log.debug(f"‣ {step.name}: skipped ({reason})")
                    continue
                progress.start(index, total, step.name)
                started = time.monotonic()
                try:
                    self.run_step(context, step, cached)
                except BaseException as e:
                    progress.finish()
                    self.records.append(StepRecord(step.name, "failed", time.monotonic() - started))
                    if self.on_failure and not isinstance(e, KeyboardInterrupt):
                        self.on_failure(context, step, e)
                    raise
                elapsed = time.monotonic() - started
                progress.finish(f"‣ [{index}/{total}] {step.name} ({elapsed:.1f}s)")
                self.records.append(StepRecord(step.name, "done", elapsed))
                if step.ends_build:
                    self.ended_by = step.ends_build
        finally:
            if self.records:
                print(format_table(self.records, f"Build steps of '{context.config.image}'"), file=self.stream, flush=True)
        return self.records

    def skip_reason(self, context: Context, step: Step, i: int, span, cached: bool) -> str | None:
        mode = incremental_mode(context)
        if span and isinstance(step, ReuseCache):
            if mode == "no":
                return "Incremental=no"
            return None if cached else "no usable cached image"
        if span and isinstance(step, SaveCache):
            if mode == "no":
                return "Incremental=no"
            return "cached image is current" if cached else None
        if span and cached and span[0] < i < span[1]:
            return "part of the cached image"
        if self.ended_by is not None:
            return self.ended_by
        return step.skip(context)

    def run_step(self, context: Context, step: Step, cached: bool) -> None:
        if isinstance(step, ReuseCache):
            location = self.cache_location
            assert location is not None
            log.info(f"reusing cached image (key {context.state.cache_key})")
            build_root = context.workspace / "build-root"
            cache.restore(location, context, build_root)
            if build_root.is_dir():  # the build overlay was cached too; build scripts run on it
                context.state.build_root = build_root
            return
        if isinstance(step, SaveCache):
            location = self.cache_location
            assert location is not None
            build_root = context.workspace / "build-root"
            cache.save(location, context, self.cache_digests, build_root if build_root.is_dir() else None)
            log.info(f"cached image (key {context.state.cache_key}) in {location.root}")
            return
        step.run(context)
