"""`kosi ssh`: SSH into the VM that `kosi vm` is running for this configuration."""

from __future__ import annotations

import os

from kosi.errors import KosiError


def run(args) -> int:
    from kosi.config.loader import load_project
    from kosi.run.image import image_path, verb_arguments
    from kosi.run.ssh import ssh_command
    from kosi.run.vsock import read_runtime

    project = load_project(args)
    config = project.main
    info = read_runtime(image_path(config))
    if info is None:
        raise KosiError(f"no running VM for {image_path(config)}", hint="start it with `kosi vm` first")
    cmd = ssh_command(config, info, verb_arguments(config, args))
    try:
        os.execvp(cmd[0], cmd)
    except FileNotFoundError:
        raise KosiError("ssh is not installed (install openssh-client)") from None
