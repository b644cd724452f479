"""The runner with small fake steps: order, skip reasons, timing table, incremental cache key."""

from __future__ import annotations

import io

import pytest

from kosi import log
from kosi.config.cli_args import Args
from kosi.config.model import Config
from kosi.errors import KosiError
from kosi.pipeline.context import Context
from kosi.pipeline.monitors import TerminalMonitor
from kosi.pipeline.runner import ReuseCache, Runner, SaveCache, plan
from kosi.pipeline.step import Step


class Write(Step):
    def __init__(self, name, path, text, inputs=None, skip=None):
        self.name, self.path, self.text, self._inputs, self._skip = name, path, text, inputs or {}, skip

    def skip(self, context):
        return self._skip

    def inputs(self, context):
        return self._inputs

    def run(self, context):
        target = context.root / self.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.text)
        RAN.setdefault(id(context), []).append(self.name)


RAN: dict[int, list[str]] = {}  # names of the steps each context ran


def ran(context):
    return RAN.get(id(context), [])


class Fail(Step):
    name = "fails"

    def run(self, context):
        raise KosiError("boom")


def make_context(tmp_path, **values):
    values.setdefault("CacheDirectory", tmp_path / "cache")
    config = Config(values, directory=tmp_path)
    ws = tmp_path / "ws"
    (ws / "root").mkdir(parents=True)
    return Context(config=config, workspace=ws, package_cache=tmp_path / "pkg", args=Args())


def flow(packages="a b"):
    return [
        Write("base", "etc/base", "1"),
        ReuseCache(),
        Write("install", "usr/pkgs", packages, inputs={"Packages=": packages}),
        Write("docs", "usr/docs", "x", skip="WithDocs=no"),
        SaveCache(),
        Write("extra", "etc/extra", "2"),
    ]


def terminal():
    out = io.StringIO()
    return out, [TerminalMonitor(out)]


def test_runs_in_order_and_prints_table_with_skip_reason(tmp_path):
    ctx = make_context(tmp_path)
    out, monitors = terminal()
    records = Runner(flow(), monitors=monitors).run(ctx)
    assert ran(ctx) == ["base", "install", "extra"]
    assert [r.status for r in records] == ["done", "skipped", "done", "skipped", "skipped", "done"]
    text = out.getvalue()
    assert "total" in text and "‣ [3/6] install" in text
    # skipped steps are summarised, not listed (--debug lists them)
    assert "3 steps skipped" in text and "WithDocs=no" not in text


def test_debug_lists_skipped_steps_with_reasons(tmp_path, monkeypatch):
    monkeypatch.setattr(log, "DEBUG", True)
    out, monitors = terminal()
    Runner(flow(), monitors=monitors).run(make_context(tmp_path))
    assert "skipped: WithDocs=no" in out.getvalue() and "skipped: Incremental=no" in out.getvalue()


def test_table_printed_when_a_step_fails(tmp_path):
    ctx = make_context(tmp_path)
    out, monitors = terminal()
    with pytest.raises(KosiError):
        Runner([Write("one", "x", "1"), Fail(), Write("never", "y", "1")], monitors=monitors).run(ctx)
    assert "fails" in out.getvalue() and "FAILED" in out.getvalue()
    assert "never" not in ran(ctx)


def test_incremental_reuse_and_invalidation(tmp_path):
    ctx = make_context(tmp_path, Incremental="yes")
    out, monitors = terminal()
    Runner(flow(), monitors=monitors).run(ctx)
    assert "no cached image yet" in out.getvalue()
    assert ctx.state.cached is False

    ctx2 = make_context(tmp_path / "second", Incremental="yes", CacheDirectory=tmp_path / "cache")
    out, monitors = terminal()
    Runner(flow(), monitors=monitors).run(ctx2)
    assert f"reusing cached image (key {ctx.state.cache_key})" in out.getvalue()
    assert ctx2.state.cached is True
    assert ran(ctx2) == ["base", "extra"]  # install came from the cache
    assert (ctx2.root / "usr/pkgs").read_text() == "a b"

    ctx3 = make_context(tmp_path / "third", Incremental="yes", CacheDirectory=tmp_path / "cache")
    assert [r for n, r in plan(ctx3, flow("a b c")) if n == "install"] == [None]
    out, monitors = terminal()
    Runner(flow("a b c"), monitors=monitors).run(ctx3)
    assert "cache invalid: Packages= changed" in out.getvalue()
    assert ctx3.state.cache_key != ctx.state.cache_key
    assert "install" in ran(ctx3)


def test_strict_fails_without_cache_and_ff_drops_it(tmp_path, capsys):
    ctx = make_context(tmp_path, Incremental="strict")
    with pytest.raises(KosiError, match="Incremental=strict"):
        Runner(flow(), monitors=[TerminalMonitor(io.StringIO())]).run(ctx)
    ctx = make_context(tmp_path / "b", Incremental="yes", CacheDirectory=tmp_path / "cache")
    Runner(flow(), monitors=[TerminalMonitor(io.StringIO())]).run(ctx)
    ctx = make_context(tmp_path / "c", Incremental="yes", CacheDirectory=tmp_path / "cache")
    ctx.args.force = 2
    Runner(flow(), monitors=[TerminalMonitor(io.StringIO())]).run(ctx)
    assert "install" in ran(ctx)
    assert "dropping cached image" in capsys.readouterr().err


def test_plan_lists_skips(tmp_path):
    ctx = make_context(tmp_path)
    assert dict(plan(ctx, flow())) == {
        "base": None,
        "reuse cached image": "Incremental=no",
        "install": None,
        "docs": "WithDocs=no",
        "cache image": "Incremental=no",
        "extra": None,
    }
