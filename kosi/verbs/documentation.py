"""`kosi documentation`: the manual, as markdown or as a man page.

The prose lives in docs/kosi.md; its `<!-- verbs -->`, `<!-- options -->` and
`<!-- settings -->` markers are replaced by text generated from the verb, option and
settings tables, so every setting is documented with its flags, type and default. The
markdown uses a small subset (headings, paragraphs, fenced code, `term` + `: text`
definitions, `code`) that `to_roff` turns into a man page without pandoc.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from kosi.errors import KosiError

PROSE = Path(__file__).resolve().parent.parent.parent / "docs" / "kosi.md"
MANUAL_NAMES = ("kosi", "mkosi", "manual")
FORMATS = ("auto", "man", "markdown", "system")


def describe_default(setting: Any) -> str:
    if setting.default_factory is not None:
        return "derived from other settings"
    if setting.default in (None, [], ()):
        return "unset" if not setting.is_list else "empty"
    return f"`{setting.type.text(setting.default)}`"


def setting_entry(setting: Any) -> str:
    flags = [f"`{setting.name}=`"]
    if setting.long:
        flags.append(f"`{setting.long}=`")
    if setting.short:
        flags.append(f"`{setting.short}`")
    text = setting.help.rstrip(".") + "."
    text += f" Value: {setting.type.describe()}."
    if setting.type.choices and "one of" not in setting.type.describe():
        text += " Values: " + ", ".join(f"`{c}`" for c in setting.type.choices) + "."
    text += f" Default: {describe_default(setting)}."
    if setting.paths:
        text += " Picked up from " + ", ".join(f"`{p}`" for p in setting.paths) + " when present."
    if setting.specifier:
        text += f" Specifier: `%{setting.specifier}`."
    if setting.scope.value != "image":
        text += f" Scope: {setting.scope.value}."
    if not setting.long:
        text += " Only in configuration files."
    if setting.unsupported:
        effect = "refused" if setting.unsupported_fails else "ignored with a warning"
        text += f" **Not supported by kosi yet** ({setting.unsupported}); a non-default value is {effect}."
    return ", ".join(flags) + "\n: " + text + "\n"


def settings_markdown() -> str:
    from kosi.config.settings import SETTINGS

    parts = []
    section = None
    for setting in SETTINGS:
        if setting.section != section:
            section = setting.section
            parts.append(f"## [{section}] section\n")
        parts.append(setting_entry(setting))
    return "\n".join(parts)


def verbs_markdown() -> str:
    from kosi.verbs.table import VERBS
    from kosi.verbs.help import VERB_ARGUMENTS

    parts = []
    for name, (_, description) in VERBS.items():
        usage = f"{name} {VERB_ARGUMENTS.get(name, '')}".rstrip()
        parts.append(f"`{usage}`\n: {description}.\n")
    return "\n".join(parts)


def options_markdown() -> str:
    from kosi.config.cli_args import CLI_ONLY_OPTIONS

    parts = []
    for option in CLI_ONLY_OPTIONS:
        names = f"`{option.long}`" + (f", `{option.short}`" if option.short else "")
        parts.append(f"{names}\n: {option.help}.\n")
    return "\n".join(parts)


def manual_markdown() -> str:
    prose = PROSE.read_text() if PROSE.is_file() else "# SETTINGS\n\n<!-- settings -->\n"
    generated = {"verbs": verbs_markdown, "options": options_markdown, "settings": settings_markdown}
    return re.sub(r"<!-- (\w+) -->\n", lambda m: generated[m.group(1)](), prose)


def roff_text(text: str) -> str:
    """Escape one line of running text and turn `code` and **bold** into bold."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    text = re.sub(r"`([^`]*)`", r"\\fB\1\\fR", text)
    text = re.sub(r"\*\*([^*]*)\*\*", r"\\fB\1\\fR", text)
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def to_roff(markdown: str, title: str = "KOSI", section: str = "1") -> str:
    from kosi import __version__

    out = [f'.TH {title} {section} "" "kosi {__version__}" "kosi manual"']
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            out.append(".PP\n.nf\n.RS 4")
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                out.append(
                    lines[i].replace("\\", "\\e").replace("-", "\\-")
                    if not lines[i].startswith(".")
                    else "\\&" + lines[i]
                )
                i += 1
            out.append(".RE\n.fi")
        elif line.startswith("## "):
            out.append(".SS " + roff_text(line[3:]))
        elif line.startswith("# "):
            out.append(".SH " + roff_text(line[2:]))
        elif line.strip() and i + 1 < len(lines) and lines[i + 1].startswith(": "):
            out.append(".TP\n" + roff_text(line))
            i += 1
            out.append(roff_text(lines[i][2:]))
        elif line.strip():
            if i == 0 or not lines[i - 1].strip():
                out.append(".PP")
            out.append(roff_text(line))
        i += 1
    return "\n".join(out) + "\n"


def page(text: str, doc_format: str) -> None:
    """Show roff through man when a person is reading; print it as-is into pipes."""
    if doc_format == "man" and sys.stdout.isatty() and shutil.which("man"):
        subprocess.run(["man", "-l", "-"], input=text, text=True, check=False)
    else:
        sys.stdout.write(text)


def run(args) -> int:
    words = getattr(args, "verb_args", []) or []
    if len(words) > 1 or (words and words[0] not in MANUAL_NAMES):
        raise KosiError(f"documentation: unknown manual {' '.join(words)!r}", hint="the only one is 'manual'")
    doc_format = getattr(args, "doc_format", "auto") or "auto"
    if doc_format not in FORMATS:
        raise KosiError(f"--doc-format={doc_format}: expected one of {', '.join(FORMATS)}")
    if doc_format == "system":
        return subprocess.run(["man", "kosi"], check=False).returncode
    if doc_format == "auto":
        # A person at a terminal gets the formatted page; pipes and files get markdown.
        doc_format = "man" if sys.stdout.isatty() and shutil.which("man") else "markdown"
    markdown = manual_markdown()
    if doc_format == "markdown":
        sys.stdout.write(markdown)
    else:
        page(to_roff(markdown), doc_format)
    return 0
