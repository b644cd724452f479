"""`kosi build`: build every image of the project in order, publish outputs only on success.

Also the helper images kosi builds with the same pipeline: the default tools tree
(ensure_tools_tree; which one and with what is kosi/tools/tree.py's decision) and the
default initrd (the boot steps call back through Context.build_tree).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from contextlib import ExitStack, contextmanager
from typing import Iterator

from kosi import distributions, log
from kosi.boot.signing import check_keys
from kosi.boot.pcrs import check_pcr_keys
from kosi.pipeline.layers import check_layers
from kosi.config import history
from kosi.config.cli_args import Args
from kosi.config.model import Config, Project
from kosi.errors import KosiError
from kosi.outputs import format as formats
from kosi.outputs.checksum import check_signing
from kosi.outputs.naming import output_directory, output_format
from kosi.outputs.publish import check_previous, existing_outputs, publish
from kosi.pipeline.cache import default_state_directory
from kosi.pipeline.context import Context
from kosi.pipeline import atomic
from kosi.pipeline import workspace as workspaces
from kosi.pipeline.flow import build_steps
from kosi.pipeline.monitors import JsonLinesMonitor, Monitor, TerminalMonitor
from kosi.pipeline.runner import ReuseCache, Runner, cache_verdict
from kosi.pipeline.scripts import BuildScripts
from kosi.pipeline.trees import SandboxTrees
from kosi.scripts.execute import find_scripts
from kosi.tools.tree import cache_root, cached_tree_usable, choose_tools_tree, helper_image_config, location


def package_cache_directory(config: Config) -> Path:
    """PackageCacheDirectory= (mkosi.pkgcache/ when it exists), or the per-user cache; shared between builds."""
    path = config.package_cache_directory or default_state_directory() / "packages"
    path.mkdir(parents=True, exist_ok=True)
    return path


def workspace_parent(config: Config) -> Path:
    path = config.workspace_directory or Path("/var/tmp")
    path.mkdir(parents=True, exist_ok=True)
    return path


def debug_shell(context: Context, step, error: BaseException) -> None:
    """--debug-shell: a shell in the image where the build failed."""
    log.error(f"step '{step.name}' failed: {error}; opening a shell in the image (exit to continue)")
    root = context.state.build_root or context.root
    env = dict(os.environ, BUILDROOT=str(root))
    from kosi.scripts.chroot import main as chroot

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        chroot(["", "/bin/sh"])
    finally:
        os.environ.clear()
        os.environ.update(saved)


def build_image(config: Config, args: Args, tools: Path | None = None, *, rerun: bool = False) -> list[Path]:
    """Build one image in a fresh workspace; returns the published outputs. `rerun` (-R):
    only run the build scripts on the image's cached image, publishing nothing."""
    started = time.monotonic()
    workspaces.remove_orphans(workspace_parent(config))
    workspace, owner = workspaces.create(workspace_parent(config), f"kosi-{config.image}-")
    context = Context(
        config=config,
        workspace=workspace,
        package_cache=package_cache_directory(config),
        tools=tools,
        args=args,
        build_tree=build_tree,
    )
    for directory in (context.root, context.staging, context.pkgmngr, context.repository, context.artifacts):
        directory.mkdir(parents=True, exist_ok=True)
    keep = args.debug_workspace
    try:
        monitors: list[Monitor] = [TerminalMonitor(sys.stderr)]
        if args.log_json:
            monitors.append(JsonLinesMonitor(Path(args.log_json)))
        steps = build_steps()
        if rerun:
            check_rerun_cache(context, steps)
        runner = Runner(
            steps,
            monitors=monitors,
            on_failure=debug_shell if args.debug_shell else None,
            only=RERUN_STEPS if rerun else None,
        )
        runner.run(context)
        outputs = [] if rerun else publish(context)
    finally:
        if keep:
            log.info(f"workspace kept in {workspace} (--debug-workspace)")
            (workspace / workspaces.OWNER_FILE).unlink(missing_ok=True)  # kept: no later build removes it
        else:
            workspaces.remove(workspace)
        os.close(owner)
    for path in outputs:
        log.info(f"wrote {path}")
    done = "reran the build scripts of" if rerun else "built"
    log.info(f"{done} '{config.image}' in {time.monotonic() - started:.1f}s")
    return outputs


#: what -R/--rerun-build-scripts runs: the build scripts on the restored cached image
RERUN_STEPS = (SandboxTrees, ReuseCache, BuildScripts)


def check_rerun(images: list[Config]) -> None:
    """-R needs Incremental= and images built before (the build scripts run on their cache)."""
    if images and images[-1].incremental == "no":
        raise KosiError("--rerun-build-scripts needs Incremental=yes or strict (it reruns the build scripts on "
                        "the cached image)")  # fmt: skip
    for config in images:
        if output_format(config) != "none" and not existing_outputs(config):
            raise KosiError(f"image '{config.image}' must be built once before --rerun-build-scripts",
                            hint="build it with `kosi build` first")  # fmt: skip


def check_rerun_cache(context: Context, steps: list) -> None:
    verdict = cache_verdict(context, steps)
    if verdict.reason is not None:
        raise KosiError(f"--rerun-build-scripts: the cached image of '{context.config.image}' cannot be used "
                        f"({verdict.reason})", hint="rebuild the image (kosi -f build)")  # fmt: skip


def check_buildable(config: Config) -> None:
    """Refuse, in one line and before anything runs, what kosi cannot build yet: a format
    without a writer, a distribution without an installer (both still load, for summary)."""
    formats.require_writer(config.format).check(config)
    if config.distribution != "custom":
        from kosi.installers.base import installer

        distribution = distributions.require_installer(config.distribution)
        installer(str(distribution.installer)).check_available(config)


@contextmanager
def outputs_locked(images: list[Config]) -> Iterator[None]:
    """Builds writing into the same output directory (two builds of one project) take turns:
    the second waits for the first, saying so, then decides afresh (its outputs exist now, so
    without -f it refuses). An flock on the directory itself: nothing is left behind."""
    with ExitStack() as stack:
        for directory in sorted({output_directory(config).absolute() for config in images}):
            directory.mkdir(parents=True, exist_ok=True)
            stack.enter_context(
                atomic.locked(directory, f"waiting for another kosi build that writes into {directory} to finish")
            )
        yield


def build_project(project: Project, args: Args) -> list[Path]:
    from kosi.scripts.execute import run_configure_scripts

    images = [run_configure_scripts(config) for config in project.images]
    with outputs_locked(images):
        return build_images(project, images, args)


def build_images(project: Project, images: list[Config], args: Args) -> list[Path]:
    force = args.force
    rerun = args.rerun_build_scripts
    # Refuse (or with -f clean up) before spending time on any image.
    for config in images:
        check_buildable(config)
        if not rerun:
            check_previous(config, force)
        check_keys(config)  # SecureBoot=yes without a key
        check_pcr_keys(config)  # SignExpectedPcr=yes without a key or certificate
        check_signing(config)  # Sign= with a Stateless OpenPGP tool but no key file
        check_layers(config)  # Packages= in a layer without BaseTrees=

    if args.wipe_build_dir:
        from kosi.scripts.environment import wipe_build_directory

        for config in images:
            wipe_build_directory(config)
    if rerun:
        check_rerun(images)
    elif project.main.history:
        history.write(project.main.directory, project.history)

    tools = ensure_tools_tree(project, args)
    outputs: list[Path] = []
    for config in images:
        if rerun and not find_scripts(config, "build"):
            log.info(f"'{config.image}' has no build scripts: nothing to rerun")
            continue
        outputs += build_image(config, args, tools=tools, rerun=rerun)
    return outputs


def run(args: Args) -> int:
    from kosi.config.loader import load_project
    from kosi.verbs import bump

    # --auto-bump: the build uses the bumped version (so %v sees it); the file is only
    # written when every image was built.
    pending = bump.auto_bump_begin(args) if args.auto_bump else None
    if args.log_json:
        Path(args.log_json).write_text("")  # this build's events only; each image appends
    project = load_project(args)
    if not project.images:
        raise KosiError("nothing to build")
    from kosi.config import unsupported

    unsupported.check(project)  # settings kosi does not implement: warn, or refuse when it matters
    build_project(project, args)
    bump.auto_bump_commit(pending)
    return 0


# ---- helper images: the default tools tree and the default initrd, built by the pipeline ----


def build_tree(config: Config, destination: Path, args: Args, tools: Path | None = None) -> None:
    """Build a helper image with kosi's own pipeline (a plain Format=directory image): the tools
    tree (with the host's tools) or the default initrd (with the image's tools, as mkosi 27.1)."""
    values = dict(config.values, Format="directory", Output=destination.name, OutputDirectory=destination.parent)
    values.pop("_tools_profiles", None)
    # Not the project's directory: the pipeline looks there for mkosi.postinst, mkosi.env, ...,
    # which belong to the user's image (mkosi.tools.conf's own scripts are in its settings).
    directory = cache_root() / "tools-build"
    directory.mkdir(parents=True, exist_ok=True)
    build_image(helper_image_config(values, image=config.image, directory=directory), _quiet_args(args), tools=tools)
    if not destination.is_dir():
        raise KosiError(f"building the {config.image} image produced no directory at {destination}")


def _quiet_args(args: Args) -> Args:
    """The build options that apply to helper images: not the main image's --force counts
    or debug shells, which are about the user's image."""
    return Args(verb="build", debug_workspace=args.debug_workspace)


def ensure_tools_tree(project: Project, args: Args) -> Path | None:
    """The tools tree to use for this invocation, building the default one if needed."""
    from kosi.sandbox import use_extra_search_paths, use_host_certificates

    use_host_certificates(project.main.tools_tree_certificates is False)
    use_extra_search_paths(project.main.extra_search_paths or [])
    choice = choose_tools_tree(project, args.verb or "build", args.force)
    if choice.why_used:
        log.info(f"using the default tools tree: {choice.why_used}")
    tree = choice.tree
    if tree is None or choice.why_build is None:
        return tree
    assert choice.config is not None and choice.inputs is not None  # a tree to build has its configuration
    stamp = tree.with_name(tree.name + ".json")
    # One build of the tools tree at a time; whoever waited finds it built (unless -fff).
    with atomic.locked(location() / ".lock", f"waiting for another kosi that builds the tools tree {tree}") as waited:
        if waited and choice.why_build != "forced with -fff" and cached_tree_usable(tree, choice.inputs) is None:
            return tree
        log.step(f"building the default tools tree in {tree} ({choice.why_build})")
        # Never poisoned: the stamp goes first, the tree is committed by rename when complete,
        # and the stamp is written last.
        stamp.unlink(missing_ok=True)
        with atomic.partial_directory(tree) as partial:
            build_tree(choice.config, partial / tree.name, args)
            atomic.commit(partial / tree.name, tree)
        atomic.write_stamp(stamp, choice.inputs)
    return tree
