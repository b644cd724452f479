#!/usr/bin/env python3
"""Load a corpus of mkosi projects with mkosi 27.1 and kosi and tabulate where they differ.

The corpus is a directory of project directories (one per subdirectory). Each project is run as
`mkosi --json summary` and `kosi --json summary` (the way tests/compat/harness.py compares a
case, with its normalisation) once plainly, once with each profile the project defines
(mkosi.profiles/<name>[.conf]) and once with each extra command line listed in an optional
file `.real-corpus` in the project directory:

    cd=<subdirectory>       run the tools in this subdirectory of the project
    args=<words>            one more configuration: these words before `--json summary`
    noprofiles              do not add a configuration per profile

Each configuration comes out as one of: equal, tools-only (differing only in Tools and
ToolsTree, the default tools tree, in a way docs/compatibility.md does not name), documented
(one tool refuses it, or the tools tree differs, as an entry of docs/compatibility.md says),
different (the differing keys), kosi-error
(mkosi succeeds), mkosi-error (kosi succeeds), both-error (with both messages' last lines).

    bench/real_corpus.py CORPUS [--only NAME...] [--verbose] [--json FILE] [--kosi BIN]
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests/compat"))

import harness  # noqa: E402
import oracle  # noqa: E402

CONTROL = ".real-corpus"
#: a difference only in these keys is one of the default tools tree (ToolsTree=default), told apart
TOOLS_KEYS = {"Tools", "ToolsTree"}
#: errors of one tool that are entries of docs/compatibility.md (message regex -> heading)
DOCUMENTED_ERRORS = {
    r"does not ship mkosi's built-in configuration": "Include=mkosi-initrd and the other built-in includes",
    r"'bios' is not a valid Firmware": "Firmware=bios boots with SeaBIOS",
}
RESULTS = ("equal", "tools-only", "documented", "different", "kosi-error", "mkosi-error", "both-error")


@dataclass
class Configuration:
    project: Path
    workdir: str  # relative to the project
    args: list[str]
    label: str
    result: str = ""
    detail: list[str] = field(default_factory=list)


def profiles(directory: Path) -> list[str]:
    found = set()
    for path in (directory / "mkosi.profiles").glob("*"):
        if path.is_dir():
            found.add(path.name)
        elif path.name.endswith(".conf"):
            found.add(path.name.removesuffix(".conf"))
    return sorted(found)


def configurations(project: Path) -> list[Configuration]:
    workdir, extra, with_profiles = "", [], True
    control = project / CONTROL
    if control.exists():
        for line in control.read_text().splitlines():
            key, _, value = line.strip().partition("=")
            if key == "cd":
                workdir = value
            elif key == "args":
                extra.append(shlex.split(value))
            elif key == "noprofiles":
                with_profiles = False
    out = [Configuration(project, workdir, [], "")]
    if with_profiles:
        out += [
            Configuration(project, workdir, ["--profile", p], f"--profile {p}") for p in profiles(project / workdir)
        ]
    out += [Configuration(project, workdir, words, " ".join(words)) for words in extra]
    return out


def config_text(directory: Path) -> dict[str, bytes]:
    """The project's text files, which harness.neutralise_random looks for spelled-out UUIDs in."""
    files = {}
    for path in directory.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_size < 100_000:
            files[path.relative_to(directory).as_posix()] = path.read_bytes()
    return files


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def documented_tools_difference(path: str, mkosi: object, kosi: object) -> str | None:
    """The entry of docs/compatibility.md a difference of the default tools tree is, if any."""
    if harness.key_name(path) == "ToolsTree" and kosi in ("default", "yes") and str(mkosi).endswith("/mkosi.tools"):
        return "The default tools tree lives in kosi's cache"
    if path == "Tools.Release" and (mkosi, kosi) == ("testing", "trixie"):
        return TRIXIE_TOOLS_TREE
    if path == "Tools.Packages" and isinstance(mkosi, list) and isinstance(kosi, list):
        if sorted("dnf" if p == "dnf5" else p for p in mkosi) == sorted(kosi):  # testing has dnf5
            return TRIXIE_TOOLS_TREE
    return None


TRIXIE_TOOLS_TREE = "The default Debian tools tree is trixie, not testing"


def run(config: Configuration, mkosi_tool, base: Path) -> None:
    case = harness.Case(f"{config.project.name} {config.label}".strip(), config_text(config.project), config.args)
    dirs = {}
    for tool in ("mkosi", "kosi"):
        copy = base / tool / harness.PROJECT
        shutil.copytree(config.project, copy, symlinks=True)
        dirs[tool] = copy / config.workdir
    mkosi_process = harness.start_tool(*mkosi_tool, case, dirs["mkosi"])
    kosi_process = harness.start_tool(harness.KOSI, {}, case, dirs["kosi"])
    mkosi = harness.finish_tool(mkosi_process, base / "mkosi" / harness.PROJECT)
    kosi = harness.finish_tool(kosi_process, base / "kosi" / harness.PROJECT)
    if "Traceback (most recent call last)" in kosi.stderr:
        config.detail.append("kosi crashed: " + last_line(kosi.stderr))
    mkosi_ok = mkosi.status == 0 and mkosi.document is not None
    kosi_ok = kosi.status == 0 and kosi.document is not None
    if mkosi_ok and kosi_ok:
        harness.strip_default_initrd(mkosi.document, kosi.document)
        harness.neutralise_random(case, mkosi.document, kosi.document)
        diffs = harness.differences(mkosi.document, kosi.document)
        keys = {harness.key_name(path) for path, _, _ in diffs}
        config.result = "equal" if not diffs else "tools-only" if keys <= TOOLS_KEYS else "different"
        headings = {documented_tools_difference(path, a, b) for path, a, b in diffs}
        if config.result == "tools-only" and None not in headings:
            config.result = "documented"
            config.detail += [f"docs/compatibility.md: {heading}" for heading in sorted(headings)]
        config.detail += [f"{path}: mkosi {json.dumps(a)[:200]} kosi {json.dumps(b)[:200]}" for path, a, b in diffs]
    elif mkosi_ok:
        config.result = "kosi-error"
        config.detail.append("kosi: " + last_line(kosi.stderr))
    elif kosi_ok:
        config.result = "mkosi-error"
        config.detail.append("mkosi: " + last_line(mkosi.stderr))
    else:
        config.result = "both-error"
        config.detail += ["mkosi: " + last_line(mkosi.stderr), "kosi: " + last_line(kosi.stderr)]
    if config.result in ("kosi-error", "mkosi-error"):
        for pattern, heading in DOCUMENTED_ERRORS.items():
            if re.search(pattern, config.detail[-1]):
                config.result = "documented"
                config.detail.append(f"docs/compatibility.md: {heading}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--only", nargs="*", help="project directory names to run")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every differing key")
    parser.add_argument("--json", type=Path, help="write the results to this file")
    parser.add_argument("--kosi", type=Path, help="the kosi to compare (default: this checkout's bin/kosi)")
    args = parser.parse_args()
    if args.kosi:
        harness.KOSI[:] = [str(args.kosi.absolute())]

    mkosi_tool = oracle.mkosi_command(oracle.ensure_oracle())
    projects = sorted(p for p in args.corpus.iterdir() if p.is_dir() and (not args.only or p.name in args.only))
    results: list[Configuration] = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, project in enumerate(projects):
            for number, config in enumerate(configurations(project)):
                run(config, mkosi_tool, Path(tmp) / f"{index}-{number}")
                results.append(config)
                keys = (
                    sorted({harness.key_name(d.split(":")[0]) for d in config.detail})
                    if config.result == "different"
                    else []
                )
                print(f"{config.result:12} {project.name} {config.label} {' '.join(keys)}".rstrip(), flush=True)
                if args.verbose or config.result not in ("equal", "different", "tools-only", "documented"):
                    for line in config.detail[: None if args.verbose else 4]:
                        print(f"    {line}")
    counts = Counter(c.result for c in results)
    equal_projects = sum(
        all(c.result == "equal" for c in results if c.project == p) for p in {c.project for c in results}
    )
    print(
        f"\n{len(projects)} projects ({equal_projects} all equal), {len(results)} configurations: "
        + ", ".join(f"{counts[k]} {k}" for k in RESULTS)
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {"project": c.project.name, "label": c.label, "result": c.result, "detail": c.detail}
                    for c in results
                ],
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
