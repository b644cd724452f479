"""`shell` and `boot`: running the image in a systemd-nspawn container."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from kosi import log
from kosi.config.model import Config
from kosi.errors import KosiError
from kosi.outputs.naming import base_name, output_directory
from kosi.run.credentials import nspawn_credential_args, runtime_credentials
from kosi.run.image import machine_name, runtime_trees
from kosi.run.registration import registration_args


def runtime_tree_binds(config: Config) -> list[str]:
    """RuntimeTrees=: relative targets (and none) are below /root/src."""
    return [f"--bind={tree.source}:{tree.target_under('/root/src')}" for tree in runtime_trees(config)]


def network_args(config: Config) -> list[str]:
    """RuntimeNetwork=: user shares the host's network (nspawn's default), interface adds a veth
    pair, none leaves only loopback."""
    if config.runtime_network == "interface":
        return ["--network-veth"]
    if config.runtime_network == "none":
        return ["--private-network"]
    return []


def bind_user_args(config: Config) -> list[str]:
    if not config.bind_user:
        return []
    user = os.environ.get("SUDO_USER") or getpass.getuser()
    if user == "root":
        log.warn("BindUser=yes: not binding root's home directory (systemd-nspawn refuses it); run via sudo as a user")
        return []
    return [f"--bind-user={user}"]


def settings_file(config: Config) -> Path | None:
    """NSpawnSettings= (the loader assigns mkosi.nspawn), or the copy the build placed next to the image."""
    if config.nspawn_settings is not None:
        return config.nspawn_settings
    published = output_directory(config) / f"{base_name(config)}.nspawn"
    return published if published.exists() else None


@contextlib.contextmanager
def installed_settings(config: Config, machine: str) -> Iterator[list[str]]:
    """nspawn reads <machine>.nspawn from /run/systemd/nspawn/; place the settings there for
    the container's lifetime, and trust them (they come from the image's own configuration)."""
    source = settings_file(config)
    if source is None:
        yield []
        return
    directory = Path("/run/systemd/nspawn")
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{machine}.nspawn"
    if target.exists():
        raise KosiError(f"{target} already exists: is a container named {machine} running? (set Machine=)")
    shutil.copyfile(source, target)
    try:
        yield ["--settings=trusted"]
    finally:
        target.unlink(missing_ok=True)


def nspawn_command(
    config: Config,
    image: Path,
    *,
    boot: bool,
    arguments: list[str],
    credential_dir: Path,
    ephemeral: bool,
    machine: str | None = None,
    interactive: bool | None = None,
) -> list[str]:
    """The systemd-nspawn command line for `shell` (boot=False) or `boot` (boot=True)."""
    machine = machine or machine_name(config)
    cmd = ["systemd-nspawn", f"--machine={machine}"]
    cmd += ["--image" if image.is_file() else "--directory", str(image)]
    if not log.DEBUG:
        cmd.append("--quiet")
    cmd += registration_args(config, "nspawn")
    if ephemeral:
        cmd.append("--ephemeral")
    if boot:
        cmd.append("--boot")
    elif interactive is False or (interactive is None and not sys.stdin.isatty()):
        # A command fed by a pipe or file: let its stdin/stdout pass straight through.
        cmd.append("--console=autopipe")
    cmd += network_args(config)
    cmd += runtime_tree_binds(config)
    cmd += bind_user_args(config)
    cmd += [f"--property={prop}" for prop in config.unit_properties]
    cmd += nspawn_credential_args(runtime_credentials(config), credential_dir)
    if config.forward_journal is not None:
        log.warn("ForwardJournal= is only supported by the vm verb here; the container's journal stays in the image")
    # Extra words: nspawn options first, then (for shell) the command or (for boot) init's arguments.
    cmd += arguments
    if boot:
        cmd += config.kernel_command_line_extra
    return cmd


def run_container(config: Config, image: Path, *, boot: bool, arguments: list[str], tools_prefix: list[str]) -> int:
    """Run systemd-nspawn in the foreground; its exit status (the command's or the container's) is ours."""
    import subprocess

    machine = machine_name(config)
    # nspawn's own --ephemeral snapshot is cheaper than copying; RuntimeSize= images were copied already.
    ephemeral = config.ephemeral and not (config.runtime_size and image.is_file())
    with (
        tempfile.TemporaryDirectory(prefix="kosi-credentials-") as scratch,
        installed_settings(config, machine) as settings_args,
    ):
        cmd = nspawn_command(
            config,
            image,
            boot=boot,
            arguments=arguments,
            credential_dir=Path(scratch),
            ephemeral=ephemeral,
            machine=machine,
        )
        cmd[1:1] = settings_args
        log.debug("+ " + " ".join(cmd))
        try:
            return subprocess.run([*tools_prefix, *cmd]).returncode
        except FileNotFoundError:
            raise KosiError(
                "systemd-nspawn is not installed (install systemd-container, or use ToolsTree=default)"
            ) from None


def start_container(project, args, *, boot: bool) -> int:
    """The shell and boot verbs: build if needed, then run the image (or its ephemeral copy)."""
    from kosi.run.image import ensure_built, runtime_image, verb_arguments
    from kosi.run.toolsenv import runtime_prefix
    from kosi.verbs.build import ensure_tools_tree

    config = project.main
    path = ensure_built(project, args)
    tools = ensure_tools_tree(project, args)
    arguments = verb_arguments(config, args)
    # nspawn --ephemeral snapshots by itself; only a disk that must grow needs our copy first.
    copy_config = config.copy()
    if not (config.runtime_size and path.is_file()):
        copy_config.values["Ephemeral"] = False
    with runtime_image(copy_config, path) as image:
        return run_container(config, image, boot=boot, arguments=arguments, tools_prefix=runtime_prefix(tools))
