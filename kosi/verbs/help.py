"""`kosi help`, `--help`, `kosi VERB --help` and `--version`, rendered from the tables.

The verbs come from kosi.verbs.table.VERBS, the command-line-only options from
kosi.config.cli_args.CLI_ONLY_OPTIONS and the settings from the settings table, so the
usage text cannot drift from what the parser accepts.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from typing import Any

#: What each verb takes after it, for the usage lines.
VERB_ARGUMENTS = {
    "build": "[-- SCRIPT-ARGS...]", "shell": "[COMMAND...] [-- NSPAWN-ARGS...]", "boot": "[-- NSPAWN-ARGS...]",
    "vm": "[-- VMM-ARGS...]", "ssh": "[COMMAND...]", "journalctl": "[-- ARGS...]", "coredumpctl": "[-- ARGS...]",
    "sysupdate": "[-- ARGS...]", "box": "[-- COMMAND...]", "dependencies": "[-- --profile PROFILE...]",
    "burn": "DEVICE", "documentation": "[manual]", "completion": "bash|zsh|fish",
}  # fmt: skip

#: Verbs that read the project's configuration, so every setting option applies to them.
CONFIG_VERBS = {"summary", "cat-config", "build", "plan", "shell", "boot", "vm", "ssh", "journalctl", "coredumpctl",
                "sysupdate", "box", "clean", "serve", "burn", "latest-snapshot"}  # fmt: skip

#: Command-line-only options (by dest) that matter to one verb beyond the common ones.
VERB_OPTIONS = {
    "build": ("force", "auto_bump", "wipe_build_dir", "rerun_build_scripts", "debug_shell", "debug_workspace",
              "debug_sandbox", "log_json"),
    "summary": ("json",), "plan": ("json", "force"), "clean": ("force",), "genkey": ("force", "genkey_common_name", "genkey_valid_days"),
    "documentation": ("doc_format",), "serve": ("force",), "burn": ("force",), "shell": ("force",),
    "boot": ("force",), "vm": ("force",),
}  # fmt: skip
COMMON_OPTIONS = ("directory", "debug", "help")


def width() -> int:
    return max(60, min(shutil.get_terminal_size((100, 24)).columns, 120))


def option_label(long: str, short: str | None, metavar: str | None) -> str:
    label = f"{short}, {long}" if short else f"    {long}"
    return f"{label} {metavar}" if metavar else label


def setting_metavar(setting: Any) -> str | None:
    from kosi.config.cli_args import OPTIONAL_VALUE_OPTIONS

    if setting.long in OPTIONAL_VALUE_OPTIONS:
        return f"[{setting.type.metavar}]"
    if setting.type.choices:
        return "{" + ",".join(setting.type.choices) + "}"
    return setting.type.metavar


def cli_option_metavar(option: Any) -> str | None:
    return {"value": "VALUE"}.get(option.kind)


def entry(label: str, text: str, columns: int) -> list[str]:
    """`label` in the left column, `text` wrapped in the right one (or below, when too wide)."""
    indent = 30
    body_width = max(20, columns - indent)
    wrapped = textwrap.wrap(text, body_width) or [""]
    first = f"  {label}"
    if len(first) < indent - 1:
        lines = [first.ljust(indent) + wrapped[0]]
    else:
        lines = [first, " " * indent + wrapped[0]]
    lines += [" " * indent + rest for rest in wrapped[1:]]
    return lines


def cli_only_lines(dests: tuple[str, ...] | None, columns: int) -> list[str]:
    from kosi.config.cli_args import CLI_ONLY_OPTIONS

    lines = []
    for option in CLI_ONLY_OPTIONS:
        if dests is None or option.dest in dests:
            lines += entry(option_label(option.long, option.short, cli_option_metavar(option)), option.help, columns)
    return lines


def settings_lines(columns: int) -> list[str]:
    from kosi.config.settings import SETTINGS

    lines: list[str] = []
    section = None
    for setting in SETTINGS:
        if not setting.long:
            continue
        if setting.section != section:
            section = setting.section
            lines += ["", f"{section} options ([{section}] in configuration files):"]
        text = f"{setting.help} ({setting.name}=)"
        if setting.unsupported:
            text += " [not supported by kosi yet]"
        lines += entry(option_label(setting.long, setting.short, setting_metavar(setting)), text, columns)
    return lines


def render_help(verb: str | None = None) -> str:
    """The usage text: everything without a verb, a verb's description and options with one."""
    from kosi.verbs.table import VERBS

    columns = width()
    if verb is not None and verb not in ("help",) and verb in VERBS:
        _, description = VERBS[verb]
        lines = [
            f"Usage: kosi [OPTIONS...] {verb} {VERB_ARGUMENTS.get(verb, '')}".rstrip(),
            "",
            description + ".",
            "",
            "Options:",
        ]
        lines += cli_only_lines(COMMON_OPTIONS + VERB_OPTIONS.get(verb, ()), columns)
        if verb in CONFIG_VERBS:
            lines += [
                "",
                "Every setting of the configuration can be given as an option as well;",
                "see 'kosi --help' for the full list.",
            ]
        return "\n".join(lines) + "\n"
    lines = ["Usage:"]
    for name in VERBS:
        lines.append(f"  kosi [OPTIONS...] {name} {VERB_ARGUMENTS.get(name, '')}".rstrip())
    lines += ["", "Build bespoke OS images from mkosi configuration.", "", "Verbs:"]
    for name, (_, description) in VERBS.items():
        lines += entry(name, description, columns)
    lines += ["", "Command-line-only options:"]
    lines += cli_only_lines(None, columns)
    lines += settings_lines(columns)
    return "\n".join(lines) + "\n"


def render_version() -> str:
    from kosi import __version__

    return f"kosi {__version__}\n"


def run(args) -> int:
    words = getattr(args, "verb_args", []) or []
    sys.stdout.write(render_help(words[0] if words else None))
    return 0
