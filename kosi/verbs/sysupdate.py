"""`kosi sysupdate [-- ARGS...]`: systemd-sysupdate with the output directory as its transfer
source and SysupdateDirectory= (mkosi.sysupdate/) as its definitions.

The image is built first when its output is missing (or with -f), as for burn and vm, so
`kosi sysupdate -- update` right after editing the configuration does what it says.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from kosi.errors import KosiError


def find_sysupdate(tools: Path | None) -> str:
    from kosi.tools.host import SYSUPDATE_PATHS

    for location in SYSUPDATE_PATHS:
        # With a tools tree its /usr replaces the host's, so the path inside is the same.
        if Path(f"{tools or ''}{location}").exists():
            return location
    found = shutil.which("systemd-sysupdate")
    if found:
        return found
    raise KosiError(
        "sysupdate: systemd-sysupdate is neither in the tools tree nor on the host",
        hint="use ToolsTree=default (its runtime profile has it) or install systemd-container",
    )


def sysupdate_command(binary: str, definitions: Path, source: Path, arguments: list[str]) -> list[str]:
    return [binary, f"--definitions={definitions}", f"--transfer-source={source}", *arguments]


def run(args) -> int:
    from kosi.config.loader import load_project
    from kosi.outputs.naming import output_directory
    from kosi.run.image import ensure_built, verb_arguments
    from kosi.run.toolsenv import runtime_prefix
    from kosi.verbs.build import ensure_tools_tree

    project = load_project(args)
    config = project.main
    definitions = config.sysupdate_directory
    if not definitions:
        raise KosiError(
            "sysupdate: no transfer definitions: SysupdateDirectory= is unset and there is no mkosi.sysupdate/",
            hint="put systemd-sysupdate *.transfer files in mkosi.sysupdate/",
        )
    if not Path(definitions).is_dir():
        raise KosiError(f"SysupdateDirectory={definitions}: not a directory")
    ensure_built(project, args)
    tools = ensure_tools_tree(project, args)
    command = sysupdate_command(
        find_sysupdate(tools), Path(definitions), output_directory(config), verb_arguments(config, args)
    )
    return subprocess.run([*runtime_prefix(tools), *command]).returncode
