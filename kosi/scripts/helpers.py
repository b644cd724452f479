"""The helper commands put on a script's $PATH: mkosi-chroot, git, useradd/groupadd and
the package manager wrappers (apt, dpkg, mkosi-install, ...) from the installer."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

import kosi
from kosi.pipeline.context import Context


def _write(directory: Path, name: str, text: str) -> None:
    path = directory / name
    path.write_text(text)
    path.chmod(0o755)


def _host_tool(name: str, exclude: Path) -> str | None:
    search = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != exclude)
    return shutil.which(name, path=search + ":/usr/sbin:/sbin")


def write_helpers(context: Context, directory: Path, script: Path | None) -> Path:
    """Create the helper commands for one script run in `directory` and return it."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    package_root = Path(kosi.__file__).resolve().parent.parent
    # kosi goes on sys.path from within Python, not through $PYTHONPATH: the command run in the
    # image inherits the environment and must see exactly the manual's variables.
    bootstrap = (
        f"import sys; sys.path.insert(0, {str(package_root)!r}); import runpy; "
        "runpy.run_module('kosi.scripts.chroot', run_name='__main__')"
    )
    _write(
        directory,
        "mkosi-chroot",
        "#!/bin/sh\n"
        f'exec {shlex.quote(sys.executable)} -c {shlex.quote(bootstrap)} {shlex.quote(str(script or ""))} "$@"\n',
    )
    git = _host_tool("git", directory)
    if git:
        # Sources are owned by the invoking user, scripts run as (namespace) root.
        _write(directory, "git", f"#!/bin/sh\nexec {shlex.quote(git)} -c safe.directory='*' \"$@\"\n")
    for tool in ("useradd", "groupadd"):
        real = _host_tool(tool, directory)
        if real:
            _write(directory, tool, f'#!/bin/sh\nexec {shlex.quote(real)} --root "$BUILDROOT" "$@"\n')
    add_installer_wrappers(context, directory)
    return directory


def add_installer_wrappers(context: Context, directory: Path) -> None:
    """apt, dpkg, mkosi-install, ... operating on the image, as the package manager backend defines them."""
    from kosi.installers.base import package_manager

    manager = package_manager(context)
    if manager is None or not hasattr(manager, "wrappers"):
        return
    wrappers = manager.wrappers(context)
    if isinstance(wrappers, dict):
        for name, text in wrappers.items():
            _write(
                directory,
                name,
                text if isinstance(text, str) else "#!/bin/sh\nexec " + shlex.join(map(str, text)) + ' "$@"\n',
            )
    elif wrappers:
        for path in wrappers:
            path = Path(path)
            target = directory / path.name
            if not target.exists():
                target.symlink_to(path)
