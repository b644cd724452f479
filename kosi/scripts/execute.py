"""Finding and running the scripts of one kind (single files, .chroot files and .d directories)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import kosi
from kosi import log
from kosi.config.model import Config
from kosi.errors import KosiError
from kosi.pipeline.context import Context
from kosi.scripts.environment import CHROOT_WORK, project_file, script_environment
from kosi.scripts.helpers import write_helpers
from kosi.scripts.sources import Sources, prepare_sources
from kosi.sandbox import Mount, run, sandbox_command, script_network

SETTING_OF_KIND = {
    "configure": "ConfigureScripts", "sync": "SyncScripts", "prepare": "PrepareScripts", "build": "BuildScripts",
    "postinst": "PostInstallationScripts", "finalize": "FinalizeScripts", "postoutput": "PostOutputScripts",
    "clean": "CleanScripts",
}  # fmt: skip


def expand(path: Path) -> list[Path]:
    """A script file, or every file of a .d directory in lexicographic order."""
    if path.is_dir():
        return sorted((p for p in path.iterdir() if p.is_file()), key=lambda p: p.name)
    return [path]


def find_scripts(config: Config, kind: str) -> list[Path]:
    configured = config[SETTING_OF_KIND[kind]] or []
    if configured:
        found = [Path(getattr(p, "source", p)) for p in configured]
    else:
        found = [
            p
            for p in (
                project_file(config, f"mkosi.{kind}"),
                project_file(config, f"mkosi.{kind}.chroot"),
                project_file(config, f"mkosi.{kind}.d"),
            )
            if p
        ]
    scripts = [s for p in found for s in expand(p)]
    for script in scripts:
        if not os.access(script, os.X_OK):
            raise KosiError(f"{SETTING_OF_KIND[kind]}=: {script} is not executable", hint="chmod +x it")
    return scripts


def script_command(script: Path, helpers: Path, arguments: list[str]) -> list[str]:
    if script.name.endswith(".chroot"):
        return [str(helpers / "mkosi-chroot"), f"{CHROOT_WORK}/{script.name}", *arguments]
    return [str(script), *arguments]


def script_sandbox(
    context: Context, kind: str, script: Path, sources: Sources, env: dict[str, str], network: bool | None = None
) -> list[str]:
    """The sandbox a script runs in: only what it is meant to change is writable (the workspace
    with $BUILDROOT, $DESTDIR, $OUTPUTDIR, $ARTIFACTDIR and $PACKAGEDIR; the sources, the build
    directory and the package cache); /usr is read-only and /home, /root, /var, /srv, ... are
    not there at all. The script itself and kosi (for mkosi-chroot and the package manager
    wrappers) are visible read-only."""
    writable = [context.workspace, context.package_cache]
    if env.get("BUILDDIR"):
        writable.append(Path(env["BUILDDIR"]))
    readonly = [script, Path(kosi.__file__).resolve().parent]
    # The interpreter kosi runs with, for mkosi-chroot and nested sandboxes, when it is not in /usr.
    interpreter = Path(sys.base_prefix)
    if not interpreter.is_relative_to("/usr"):
        readonly.append(interpreter)
    if context.tools:
        readonly.append(Path(context.tools))
    mounts = []
    for path in dict.fromkeys(Path(p) for p in writable):
        path.mkdir(parents=True, exist_ok=True)
        mounts.append(Mount(path, str(path)))
    mounts += [Mount(path, str(path), "ro-bind") for path in readonly]
    mounts += sources.mounts
    if network is None:
        network = script_network(kind, bool(context.config["WithNetwork"]))
    return sandbox_command(mounts=mounts, tools=context.tools, network=network, workdir=str(sources.directory))


def run_scripts(context: Context, kind: str, arguments: list[str] | None = None, *, network: bool | None = None) -> int:
    """Run every script of `kind` in its sandbox; returns how many ran. Build scripts are
    offline unless WithNetwork= (or `network`) says otherwise."""
    scripts = find_scripts(context.config, kind)
    if not scripts:
        return 0
    arguments = arguments or []
    sources = prepare_sources(context, kind)
    try:
        for script in scripts:
            script = script.resolve()
            helpers = write_helpers(context, context.workspace / "helpers" / kind, script)
            env = script_environment(context, kind, script, sources.directory, helpers)
            cmd = script_command(script, helpers, arguments)
            log.info(f"running {kind} script {script}" + (f" {' '.join(arguments)}" if arguments else ""))
            sandbox = script_sandbox(context, kind, script, sources, env, network)
            result = run(cmd, sandbox=sandbox, env=env, check=False, chatter=False)  # the user's own output
            if result.returncode != 0:
                raise KosiError(f"{kind} script {script} failed with exit status {result.returncode}")
    finally:
        sources.discard()
    return len(scripts)


def run_configure_scripts(config: Config) -> Config:
    """mkosi.configure: the config as JSON on stdin, the modified config as JSON on stdout."""
    scripts = find_scripts(config, "configure")
    if not scripts:
        return config
    import subprocess

    from kosi.config.settings import SETTINGS_BY_NAME
    from kosi.scripts.environment import config_json

    with tempfile.TemporaryDirectory(prefix="kosi-configure-") as tmp:
        context = Context(config=config, workspace=Path(tmp), package_cache=Path(tmp))
        for script in scripts:
            script = script.resolve()
            directory = Path(config.directory)
            env = script_environment(context, "configure", script, directory, None)
            sandbox = script_sandbox(
                context, "configure", script, Sources(directory, [Mount(directory, str(directory))]), env
            )
            result = run(
                [str(script)], sandbox=sandbox, input=config_json(config), env=env, stdout=subprocess.PIPE, check=False
            )
            if result.returncode != 0:
                raise KosiError(f"configure script {script} failed with exit status {result.returncode}")
            try:
                document = json.loads(result.stdout)
            except ValueError as e:
                raise KosiError(f"configure script {script} did not print JSON: {e}") from None
            config = config.copy()
            for name, value in document.items():
                known = SETTINGS_BY_NAME.get(name)
                config.values[name] = known.type.from_json(value) if known and value is not None else value
    return config
