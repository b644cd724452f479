"""`kosi plan` lists exactly the steps the build runs, for every format.

Both ask `runner.skip_reason`; these tests keep it that way. For every choice of Format= the
plan is compared with a dry build (the real step list and skip decisions, every step's work
replaced by nothing); then a real tar build (Distribution=custom) is compared with its plan
through its JSON-lines events. The Debian directory build is in test_monitors_real.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kosi.config.cli_args import Args, parse_command_line
from kosi.config.loader import load_project
from kosi.errors import KosiError
from kosi.outputs import format as formats
from kosi.pipeline.context import Context
from kosi.pipeline.flow import build_steps
from kosi.pipeline.runner import ReuseCache, Runner, SaveCache, plan
from kosi.pipeline.step import ImageDependent, Step
from kosi.verbs.build import check_buildable
from kosi.verbs.plan import image_plan

#: every format of the registry (kosi/outputs/format.py), written or planned
FORMATS = formats.names()


class Dry(Step):
    """A step's name and decisions without its work."""

    def __init__(self, step: Step):
        self.step, self.name, self.ends_build = step, step.name, step.ends_build

    def skip(self, context):
        return self.step.skip(context)

    def inputs(self, context):
        return self.step.inputs(context)

    def run(self, context):
        pass


def load(directory: Path, conf: str):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "mkosi.conf").write_text(conf)
    return load_project(parse_command_line(["-C", str(directory)])).main


def context_for(config, workspace: Path) -> Context:
    (workspace / "root").mkdir(parents=True)
    return Context(config=config, workspace=workspace, package_cache=workspace / "pkg", args=Args())


def test_every_format_is_covered():
    assert {"directory", "tar", "cpio", "disk", "uki", "esp", "none"} <= {
        n for n in FORMATS if formats.get(n).has_writer()
    }


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("distribution", ["debian", "custom"])
def test_plan_lists_the_steps_a_build_runs(tmp_path, fmt, distribution):
    config = load(tmp_path / "project", f"[Distribution]\nDistribution={distribution}\n\n[Output]\nFormat={fmt}\n")
    if not formats.get(fmt).has_writer():
        # plan and build both refuse it before any step (kosi plan and kosi build call this)
        with pytest.raises(KosiError, match=f"Format={fmt}: kosi cannot write this format yet"):
            check_buildable(config)
        return
    planned = plan(context_for(config, tmp_path / "plan"), build_steps())
    steps = [s if isinstance(s, (ReuseCache, SaveCache)) else Dry(s) for s in build_steps()]
    records = Runner(steps).run(context_for(config, tmp_path / "build"))
    built = [(r.name, None if r.status == "done" else r.reason) for r in records]
    assert built == planned
    if fmt == "none":  # the build ends after the build scripts: nothing of the image is made
        assert dict(planned)["write output"] == "Format=none"


def test_real_tar_build_runs_what_plan_lists(tmp_path):
    """Distribution=custom: a real build (trees, scripts, tar writer) without a package manager."""
    project = tmp_path / "project"
    (project / "mkosi.extra/etc").mkdir(parents=True)
    (project / "mkosi.extra/etc/hello").write_text("hi\n")
    (project / "mkosi.postinst").write_text("#!/bin/sh\necho postinst ran\n")
    (project / "mkosi.postinst").chmod(0o755)
    conf = (
        f"[Distribution]\nDistribution=custom\n\n[Output]\nFormat=tar\nOutputDirectory={tmp_path / 'out'}\n\n"
        f"[Build]\nWorkspaceDirectory={tmp_path}\nCacheDirectory={tmp_path / 'cache'}\n"
        f"PackageCacheDirectory={tmp_path / 'pkgcache'}\n"
    )
    config = load(project, conf)
    planned = image_plan(config, Args(), None)["steps"]

    import subprocess

    events_file = tmp_path / "events.jsonl"
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, str(repo / "bin/kosi"), "-C", str(project), "--log-json", str(events_file), "build"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "out/image.tar").exists() or list((tmp_path / "out").glob("*.tar*"))
    compare_plan_with_events(planned, [json.loads(line) for line in events_file.read_text().splitlines()])
    assert "postinst ran" in result.stderr + result.stdout  # the user's scripts are not chatter


def compare_plan_with_events(planned: list[dict], events: list[dict]) -> None:
    """Each step the plan runs was run (or, for a reason that depends on the image, skipped
    with that reason); each step it skips was skipped with the same reason."""
    outcome = {}
    for e in events:
        if e["kind"] in ("step-finished", "step-skipped", "step-failed"):
            outcome[e["step"]] = e.get("reason") if e["kind"] == "step-skipped" else e["kind"]
    assert [s["step"] for s in planned] == list(outcome), "the build ran other steps than the plan lists"
    for s in planned:
        got = outcome[s["step"]]
        if s["skip"] is None:
            assert got == "step-finished", (s["step"], got)
        elif s["depends-on-image"]:
            assert got in ("step-finished", s["skip"]), (s["step"], s["skip"], got)
        else:
            assert got == s["skip"], (s["step"], s["skip"], got)
    assert events[-1]["kind"] == "build-finished" and events[-1]["ok"] is True


def test_image_dependent_reasons_survive_the_dry_build(tmp_path):
    """The comparison above must see ImageDependent reasons as such (str subclass)."""
    assert isinstance(ImageDependent("x"), str)


#: a root holding what the image-dependent steps look for
FULL_ROOT = {
    "usr/bin/systemctl": "",
    "usr/sbin/sshd": "",
    "usr/lib/sysusers.d/x.conf": "",
    "usr/lib/tmpfiles.d/x.conf": "",
    "usr/lib/udev/hwdb.d/x.hwdb": "",
    "usr/lib/os-release": "ID=debian\n",
    "usr/lib/modules/6.1.0-1-amd64/vmlinuz": "kernel",
    "usr/lib/modules/6.1.0-1-amd64/kernel/x.ko": "",
    "etc/selinux/config": "SELINUXTYPE=targeted\n",
    "etc/selinux/targeted/policy/policy.33": "",
    "etc/selinux/targeted/contexts/files/file_contexts": "",
}


@pytest.mark.parametrize("fmt", ["directory", "disk", "uki"])
def test_a_reason_that_depends_on_the_image_says_so(tmp_path, fmt):
    """A step whose skip() changes with what the image holds must give an ImageDependent
    reason on the empty root: otherwise `kosi plan` (which sees no image) says "skip" for a
    step the build then runs."""
    config = load(tmp_path / "project", f"[Output]\nFormat={fmt}\n\n[Content]\nSELinuxRelabel=yes\n")
    empty = context_for(config, tmp_path / "empty")
    full = context_for(config, tmp_path / "full")
    for path, text in FULL_ROOT.items():
        (full.root / path).parent.mkdir(parents=True, exist_ok=True)
        (full.root / path).write_text(text)
    for step in build_steps():
        before, after = step.skip(empty), step.skip(full)
        if before != after:
            assert isinstance(before, ImageDependent), f"{step.name}: '{before}' depends on the image"
