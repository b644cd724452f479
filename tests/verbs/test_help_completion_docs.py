"""help, completion and documentation are generated from the tables: nothing may be missing."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from verbs_helpers import kosi

from kosi import __version__
from kosi.verbs.table import VERBS
from kosi.config.cli_args import CLI_ONLY_OPTIONS
from kosi.config.settings import SETTINGS


def all_options() -> list[str]:
    names = [o.long for o in CLI_ONLY_OPTIONS] + [o.short for o in CLI_ONLY_OPTIONS if o.short]
    names += [s.long for s in SETTINGS if s.long] + [s.short for s in SETTINGS if s.short]
    return names


def test_version():
    assert kosi("--version").stdout == f"kosi {__version__}\n"


def test_help_lists_every_verb_and_option():
    out = kosi("--help").stdout
    assert out == kosi("help").stdout == kosi("-h").stdout
    for verb in VERBS:
        assert f"kosi [OPTIONS...] {verb}" in out
    for name in all_options():
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", out), name


def test_verb_help_describes_the_verb_and_its_options(tmp_path: Path):
    out = kosi("genkey", "--help", cwd=tmp_path).stdout
    assert out.startswith("Usage: kosi [OPTIONS...] genkey")
    assert "--genkey-common-name" in out and "--genkey-valid-days" in out
    assert "--json" not in out
    assert not (tmp_path / "mkosi.key").exists()  # --help never runs the verb
    assert "--auto-bump" in kosi("build", "-h").stdout
    assert kosi("help", "summary").stdout == kosi("summary", "--help").stdout


@pytest.fixture(scope="module")
def scripts() -> dict[str, str]:
    return {shell: kosi("completion", shell).stdout for shell in ("bash", "zsh", "fish")}


def test_completion_scripts_offer_every_option_and_verb(scripts):
    for shell, text in scripts.items():
        for verb in VERBS:
            assert verb in text, (shell, verb)
        for name in all_options():
            spelled = name.lstrip("-") if shell == "fish" else name
            assert re.search(rf"(?<![\w-]){re.escape(spelled)}(?![\w-])", text), (shell, name)


def test_bash_completion_is_valid_and_completes(scripts, tmp_path: Path):
    script = tmp_path / "kosi.bash"
    script.write_text(scripts["bash"])
    subprocess.run(["bash", "-n", str(script)], check=True)
    probe = f"""source {script}
complete_words() {{ COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _kosi; echo "${{COMPREPLY[*]}}"; }}
complete_words kosi --form
complete_words kosi --format ""
complete_words kosi sum
"""
    lines = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True).stdout.splitlines()
    assert lines[0] == "--format"
    formats = next(s for s in SETTINGS if s.name == "Format").type.choices
    assert lines[1].split() == list(formats)
    assert lines[2] == "summary"


@pytest.mark.skipif(not shutil.which("zsh"), reason="zsh is not installed")
def test_zsh_completion_parses(scripts, tmp_path: Path):
    script = tmp_path / "_kosi"
    script.write_text(scripts["zsh"])
    subprocess.run(["zsh", "-n", str(script)], check=True)


@pytest.mark.skipif(not shutil.which("fish"), reason="fish is not installed")
def test_fish_completion_parses_and_completes(scripts, tmp_path: Path):
    script = tmp_path / "kosi.fish"
    script.write_text(scripts["fish"])
    subprocess.run(["fish", "-n", str(script)], check=True)
    probe = f"source {script}; complete -C'kosi --format '; echo ---; complete -C'kosi sum'"
    out = subprocess.run(["fish", "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    offered, verbs = out.split("---\n")
    formats = next(s for s in SETTINGS if s.name == "Format").type.choices
    assert sorted(line.split("\t")[0] for line in offered.splitlines()) == sorted(formats)
    assert verbs.split("\t")[0].strip() == "summary"


def test_completion_needs_a_known_shell():
    result = kosi("completion", "tcsh", check=False)
    assert result.returncode == 1 and "bash, zsh or fish" in result.stderr
    assert kosi("completion", env={"SHELL": "/bin/bash"}).stdout == kosi("completion", "bash").stdout


def test_manual_documents_every_setting_in_both_formats():
    markdown = kosi("--doc-format=markdown", "documentation").stdout
    roff = kosi("--doc-format=man", "documentation").stdout
    assert roff.startswith(".TH KOSI 1")
    for setting in SETTINGS:
        assert f"`{setting.name}=`" in markdown, setting.name
        assert f"\\fB{setting.name}=\\fR" in roff, setting.name
        if setting.long:
            assert f"`{setting.long}=`" in markdown
    for verb in VERBS:
        assert f"\n`{verb}" in markdown
    sections = list(dict.fromkeys(s.section for s in SETTINGS))
    positions = [markdown.index(f"## [{section}] section") for section in sections]
    assert positions == sorted(positions)


@pytest.mark.skipif(not shutil.which("groff"), reason="groff is not installed")
def test_man_page_renders_without_warnings():
    roff = kosi("--doc-format=man", "documentation").stdout
    result = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"], input=roff, capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_documentation_defaults_to_markdown_in_a_pipe():
    assert kosi("documentation").stdout.startswith("# NAME")
    assert kosi("documentation", "manual").stdout.startswith("# NAME")
    assert kosi("documentation", "nonsense", check=False).returncode == 1
