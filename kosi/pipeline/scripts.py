"""Steps that run user scripts (manual: SCRIPTS), and handing build script output to the image."""

from __future__ import annotations

import shutil

from kosi.pipeline.cache import fingerprint_path
from kosi.pipeline.packages import build_scripts_configured, discard_build_root
from kosi.pipeline.step import Step
from kosi.sandbox import run
from kosi.scripts.execute import find_scripts, run_scripts


class ScriptStep(Step):
    kind = ""
    arguments: tuple[str, ...] = ()

    def skip(self, context):
        return None if find_scripts(context.config, self.kind) else f"no {self.kind} scripts"

    def run(self, context):
        run_scripts(context, self.kind, list(self.arguments))


class SyncScripts(ScriptStep):
    name = "run sync scripts"
    kind = "sync"


class PrepareFinal(ScriptStep):
    name = "run prepare scripts (final)"
    kind = "prepare"
    arguments = ("final",)

    def inputs(self, context):
        return {"PrepareScripts=": [(str(p), fingerprint_path(p)) for p in find_scripts(context.config, "prepare")]}


class PrepareBuild(ScriptStep):
    name = "run prepare scripts (build)"
    kind = "prepare"
    arguments = ("build",)

    def skip(self, context):
        if not build_scripts_configured(context):
            return "no build scripts"
        return super().skip(context)

    def run(self, context):
        context.state.build_phase = True
        try:
            run_scripts(context, "prepare", ["build"])
        finally:
            context.state.build_phase = False


class BuildScripts(ScriptStep):
    """Build scripts run on the build root (image + build packages); what they put in
    $DESTDIR is copied into the image afterwards. No network unless WithNetwork=."""

    name = "run build scripts"
    kind = "build"

    def run(self, context):
        destdir = context.workspace / "destdir"
        destdir.mkdir(exist_ok=True)
        context.state.build_phase = True
        try:
            run_scripts(context, "build", list(context.config.arguments), network=context.config.with_network)
        finally:
            context.state.build_phase = False
            discard_build_root(context)


class FinalizeNoneFormat(Step):
    """Format=none: the build scripts were the point; nothing after them applies."""

    name = "finish Format=none build"

    def skip(self, context):
        from kosi.outputs.naming import output_format

        return None if output_format(context.config) == "none" else "Format= is not none"

    ends_build = "Format=none"

    def run(self, context):
        pass  # the runner skips every later step (ends_build)


class CopyBuildOutputs(Step):
    name = "copy build outputs into image"

    def skip(self, context):
        destdir = context.workspace / "destdir"
        if not destdir.is_dir() or not any(destdir.iterdir()):
            return "build scripts left $DESTDIR empty" if build_scripts_configured(context) else "no build scripts"
        return None

    def run(self, context):
        destdir = context.workspace / "destdir"
        run(
            [
                "cp",
                "--reflink=auto",
                "-a",
                "--no-preserve=ownership",
                "--no-target-directory",
                str(destdir),
                str(context.root),
            ]
        )
        shutil.rmtree(destdir)


class PostinstScripts(ScriptStep):
    name = "run postinst scripts"
    kind = "postinst"


class FinalizeScripts(ScriptStep):
    name = "run finalize scripts"
    kind = "finalize"


class PostoutputScripts(ScriptStep):
    name = "run postoutput scripts"
    kind = "postoutput"
