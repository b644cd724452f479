"""What the runner tells the world: events, and the monitors that show or record them.

The runner never prints. It emits an `Event` for everything that happens to a step (started,
finished, skipped with its reason, failed) and to the Incremental= cache (hit with its key,
miss with the reason, saved) to every monitor it was given:

- `TerminalMonitor`: the live progress line on stderr, a step's tool chatter only when it
  fails (or with --debug, when tools write straight to the terminal), and at the end a table
  of the steps that ran with the skipped ones summarised in one line (listed with --debug).
- `JsonLinesMonitor` (`--log-json FILE`): one JSON object per event, for CI systems.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Sequence

from kosi import log

#: the kinds of events, in the order a build may emit them
EVENT_KINDS = (
    "build-started",
    "cache-miss",
    "cache-hit",
    "step-started",
    "step-skipped",
    "step-finished",
    "step-failed",
    "cache-saved",
    "build-finished",
)


@dataclass(frozen=True)
class Event:
    """One thing that happened while building `image`; unset fields do not apply to the kind."""

    kind: str  # one of EVENT_KINDS
    image: str
    step: str | None = None
    index: int | None = None  # 1-based position of the step in the flow
    total: int | None = None  # number of steps in the flow
    seconds: float | None = None  # wall time of a finished or failed step, or of the whole build
    reason: str | None = None  # why a step was skipped, why the cache was not used
    key: str | None = None  # the Incremental= cache key
    error: str | None = None  # what a failed step raised
    output: str | None = None  # the tool chatter a failed step's commands printed
    ok: bool | None = None  # build-finished: whether every step succeeded


@dataclass
class StepRecord:
    """A row of the table at the end of a build."""

    name: str
    status: str  # "done", "skipped", "failed"
    seconds: float = 0.0
    reason: str | None = None


class Monitor:
    """Receives every event of a build; subclasses pick what they show."""

    def event(self, event: Event) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """The build is over (also after a failure)."""


def format_table(records: Sequence[StepRecord], title: str, *, list_skipped: bool = False) -> str:
    """The steps that ran with their wall time; skipped steps in one summary line, or each with
    its reason when `list_skipped`."""
    ran = [r for r in records if r.status != "skipped"]
    skipped = [r for r in records if r.status == "skipped"]
    shown = records if list_skipped else ran
    width = max([len(r.name) for r in shown] + [5])
    lines = [f"{title}:"]
    for r in shown:
        if r.status == "skipped":
            lines.append(f"  {r.name:<{width}}  {'-':>8}  skipped: {r.reason}")
        else:
            extra = "  FAILED" if r.status == "failed" else ""
            lines.append(f"  {r.name:<{width}}  {r.seconds:7.2f}s{extra}")
    lines.append(f"  {'total':<{width}}  {sum(r.seconds for r in records):7.2f}s")
    if skipped and not list_skipped:
        lines.append(f"  {len(skipped)} steps skipped (--debug lists them with their reasons)")
    return "\n".join(lines)


class TerminalMonitor(Monitor):
    """Progress on stderr. On a terminal one line is rewritten with the running step and its
    elapsed time; otherwise (CI logs) one line per step."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.live = stream.isatty() and not log.DEBUG
        self.records: list[StepRecord] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._label = ""

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def _start_ticker(self, label: str) -> None:
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

    def _stop_ticker(self) -> None:
        if self._thread:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self.stream.write("\r\033[K")
            self.stream.flush()

    def event(self, event: Event) -> None:
        kind = event.kind
        if kind == "build-started":
            self.records = []
        elif kind == "step-started":
            self._label = f"[{event.index}/{event.total}] {event.step}"
            if self.live:
                self._start_ticker(self._label)
            else:
                self._print(log.paint("1", f"‣ {self._label}"))
        elif kind == "step-finished":
            self._stop_ticker()
            if self.live:
                self._print(f"‣ {self._label} ({event.seconds:.1f}s)")
            self.records.append(StepRecord(event.step or "", "done", event.seconds or 0.0))
        elif kind == "step-skipped":
            self._stop_ticker()  # a step may find out only while running that it has nothing to do
            if log.DEBUG:
                self._print(log.paint("2", f"‣ {event.step}: skipped ({event.reason})"))
            self.records.append(StepRecord(event.step or "", "skipped", reason=event.reason))
        elif kind == "step-failed":
            self._stop_ticker()
            if event.output and event.output.strip():
                self._print(f"output of the commands of '{event.step}':")
                self._print(event.output.rstrip("\n"))
            self.records.append(StepRecord(event.step or "", "failed", event.seconds or 0.0))
        elif kind == "cache-hit":
            self._print(f"reusing cached image (key {event.key})")
        elif kind == "cache-miss":
            if event.reason == "no cached image yet":
                self._print(f"no cached image yet (key {event.key})")
            elif event.reason and event.reason.startswith("cache "):  # corrupt or incomplete: rebuilt, the reason said
                self._print(f"{event.reason}; rebuilding it (key {event.key})")
            elif event.reason != "Incremental=no":
                self._print(f"cache invalid: {event.reason}")
        elif kind == "cache-saved":
            self._print(f"cached image (key {event.key})")
        elif kind == "build-finished":
            self._stop_ticker()
            if self.records:
                title = f"Build steps of '{event.image}'"
                self._print(format_table(self.records, title, list_skipped=log.DEBUG))

    def close(self) -> None:
        self._stop_ticker()


class JsonLinesMonitor(Monitor):
    """--log-json FILE: every event as one JSON object per line (fields that do not apply to
    the event left out), with the wall-clock time it happened ("time", seconds since the epoch)."""

    def __init__(self, path: Path):
        self.path = path
        self.file: IO[str] | None = path.open("a", encoding="utf-8")

    def event(self, event: Event) -> None:
        if self.file is None:
            return
        record = {"time": round(time.time(), 3)}
        record.update({k: v for k, v in asdict(event).items() if v is not None})
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
