"""Register=: whether containers and VMs are registered with systemd-machined.

Register=auto registers only when that can work: the host runs systemd as its init
(/run/systemd/system exists) and machined is reachable. Without systemd as init, nspawn can
neither register nor ask systemd for a scope unit, so it must also keep its own unit.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from kosi.config.model import Config
from kosi.config.values import Feature
from kosi.errors import KosiError


def systemd_is_init() -> bool:
    return os.path.isdir("/run/systemd/system")


def machined_available() -> bool:
    if not systemd_is_init() or not shutil.which("busctl"):
        return False
    try:
        result = subprocess.run(
            ["busctl", "--timeout=2", "status", "org.freedesktop.machine1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def should_register(config: Config) -> bool:
    if config.register == Feature.enabled:
        if not machined_available():
            raise KosiError(
                "Register=yes: systemd-machined is not reachable on this host", hint="use Register=auto or Register=no"
            )
        return True
    if config.register == Feature.disabled:
        return False
    return machined_available()


def registration_args(config: Config, tool: str) -> list[str]:
    """Options for systemd-nspawn that follow from Register= and the host's init."""
    if tool != "nspawn":
        return []
    if should_register(config):
        return ["--register=yes"]
    args = ["--register=no"]
    if not systemd_is_init():
        args.append("--keep-unit")
    return args
