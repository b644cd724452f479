"""Events and monitors with small fake steps: the JSON-lines record, run-time skips, a step
that ends the build, and tool chatter shown only when its step fails (or live with --debug)."""

from __future__ import annotations

import io
import json

import pytest

from kosi import log
from kosi.config.cli_args import Args
from kosi.config.model import Config
from kosi.errors import KosiError
from kosi.pipeline.context import Context
from kosi.pipeline.monitors import EVENT_KINDS, JsonLinesMonitor, TerminalMonitor
from kosi.pipeline.runner import ReuseCache, Runner, SaveCache, plan
from kosi.pipeline.step import Skipped, Step
from kosi.sandbox import run


class Noop(Step):
    def __init__(self, name, skip=None, ends_build=None):
        self.name, self._skip, self.ends_build = name, skip, ends_build

    def skip(self, context):
        return self._skip

    def run(self, context):
        pass


class NothingFound(Step):
    name = "look for kernels"

    def run(self, context):
        raise Skipped("no kernel in the image")


class Chatty(Step):
    """Runs a real command that talks, like systemctl preset-all does."""

    def __init__(self, name, fail=False):
        self.name, self.fail = name, fail

    def run(self, context):
        run(
            [
                "sh",
                "-c",
                "echo 'Created symlink /etc/a -> /usr/b.' >&2; echo to-stdout" + ("; exit 3" if self.fail else ""),
            ]
        )


def make_context(tmp_path, **values):
    values.setdefault("CacheDirectory", tmp_path / "cache")
    ws = tmp_path / "ws"
    (ws / "root").mkdir(parents=True, exist_ok=True)
    return Context(config=Config(values, directory=tmp_path), workspace=ws, package_cache=tmp_path / "pkg", args=Args())


def read_events(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_json_lines_record_every_event(tmp_path):
    log_file = tmp_path / "events.jsonl"
    steps = [Noop("first"), ReuseCache(), Noop("docs", skip="WithDocs=no"), SaveCache(), NothingFound(), Noop("last")]
    Runner(steps, monitors=[JsonLinesMonitor(log_file)]).run(make_context(tmp_path, Incremental="yes"))
    events = read_events(log_file)
    assert all(e["kind"] in EVENT_KINDS and e["image"] == "main" and e["time"] > 0 for e in events)
    kinds = [(e["kind"], e.get("step")) for e in events]
    assert kinds[0] == ("build-started", None) and kinds[-1] == ("build-finished", None) and events[-1]["ok"] is True
    assert ("cache-miss", None) in kinds and [e for e in events if e["kind"] == "cache-miss"][0][
        "reason"
    ] == "no cached image yet"
    assert ("step-finished", "first") in kinds and ("step-finished", "last") in kinds
    skipped = {e["step"]: e["reason"] for e in events if e["kind"] == "step-skipped"}
    assert skipped == {
        "reuse cached image": "no cached image yet",
        "docs": "WithDocs=no",
        "look for kernels": "no kernel in the image",
    }
    saved = [e for e in events if e["kind"] == "cache-saved"]
    assert len(saved) == 1 and saved[0]["key"]

    # the second build reuses the cache and says so, with the key
    log_file.unlink()
    Runner(steps, monitors=[JsonLinesMonitor(log_file)]).run(
        make_context(tmp_path / "2", Incremental="yes", CacheDirectory=tmp_path / "cache")
    )
    events = read_events(log_file)
    assert [e["key"] for e in events if e["kind"] == "cache-hit"] == [saved[0]["key"]]
    assert {e["step"]: e["reason"] for e in events if e["kind"] == "step-skipped"}["docs"] == "part of the cached image"


def test_no_cache_events_without_incremental(tmp_path):
    log_file = tmp_path / "events.jsonl"
    Runner([Noop("a"), ReuseCache(), SaveCache()], monitors=[JsonLinesMonitor(log_file)]).run(make_context(tmp_path))
    events = read_events(log_file)
    assert not [e for e in events if e["kind"].startswith("cache-")]
    assert {e["step"]: e["reason"] for e in events if e["kind"] == "step-skipped"}["cache image"] == "Incremental=no"


def test_a_failed_step_is_an_event_with_its_error(tmp_path):
    log_file = tmp_path / "events.jsonl"
    with pytest.raises(KosiError):
        Runner([Chatty("talks", fail=True)], monitors=[JsonLinesMonitor(log_file)]).run(make_context(tmp_path))
    events = read_events(log_file)
    failed = [e for e in events if e["kind"] == "step-failed"]
    assert len(failed) == 1 and "exit status 3" in failed[0]["error"] and "Created symlink" in failed[0]["output"]
    assert events[-1]["kind"] == "build-finished" and events[-1]["ok"] is False


def test_run_time_skip_counts_as_skipped_not_done(tmp_path):
    records = Runner([NothingFound(), Noop("after")]).run(make_context(tmp_path))
    assert [(r.name, r.status, r.reason) for r in records] == [
        ("look for kernels", "skipped", "no kernel in the image"),
        ("after", "done", None),
    ]


def test_a_step_that_ends_the_build_skips_the_rest_in_plan_and_build(tmp_path):
    steps = [Noop("scripts"), Noop("finish none", ends_build="Format=none"), Noop("write output")]
    context = make_context(tmp_path)
    assert plan(context, steps) == [("scripts", None), ("finish none", None), ("write output", "Format=none")]
    records = Runner(steps).run(make_context(tmp_path / "b"))
    assert [(r.name, r.status, r.reason) for r in records][-1] == ("write output", "skipped", "Format=none")


def test_tool_chatter_hidden_unless_the_step_fails(tmp_path, capfd):
    out = io.StringIO()
    Runner([Chatty("presets")], monitors=[TerminalMonitor(out)]).run(make_context(tmp_path))
    captured = capfd.readouterr()
    assert "Created symlink" not in captured.err + captured.out + out.getvalue()

    out = io.StringIO()
    with pytest.raises(KosiError, match="exit status 3"):
        Runner([Chatty("presets", fail=True)], monitors=[TerminalMonitor(out)]).run(make_context(tmp_path / "b"))
    assert "Created symlink /etc/a -> /usr/b." in out.getvalue() and "to-stdout" in out.getvalue()


def test_debug_shows_tool_chatter_live(tmp_path, capfd, monkeypatch):
    monkeypatch.setattr(log, "DEBUG", True)
    Runner([Chatty("presets")], monitors=[TerminalMonitor(io.StringIO())]).run(make_context(tmp_path))
    assert "Created symlink" in capfd.readouterr().err


def test_no_colour_with_no_color(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(log.sys, "stderr", Terminal())
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert log.paint("1", "x") == "\033[1mx\033[0m"
    monkeypatch.setenv("NO_COLOR", "1")
    assert log.paint("1", "x") == "x"
