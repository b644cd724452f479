"""Run mkosi 27.1 and kosi on one configuration and compare their `--json summary` documents.

A case is a directory of configuration files (mkosi.conf, mkosi.conf.d/, ...) plus, optionally:
  args          extra command-line words (shell-split), placed before `--json summary`; when
                they contain the verb `summary` themselves they are the whole command line
  env           KEY=VALUE lines added to the environment of both tools
  expect-error  both tools must refuse the configuration: exit status 1 (2 for a malformed
                command line, as mkosi's argparse), and kosi says why in one line without a traceback (the file's content, if any, is a regex kosi's
                message must match)
Neither tool sees those three files: the case is copied without them into a directory of its
own, so both tools run on the same tree. Normalised: that directory's path, and the paths of
built-in configuration (Include=mkosi-vm, the default tools tree's mkosi-tools): mkosi 27.1
unpacks its own into a fresh temporary directory on every run, kosi has its own text in
kosi/resources, so `$BUILTIN/<name>/<file>` stands for either, and in `Files` (which lists the
configuration files read) each run of files of one built-in configuration is `$BUILTIN/<name>`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CASES = Path(__file__).resolve().parent / "cases"
KOSI = [str(REPO / "bin/kosi")]
CONTROL_FILES = ("args", "env", "expect-error")
PROJECT = "project"  # the name of the directory both tools run in
PLACEHOLDER = "$CASE"
BUILTIN = re.compile(r"(?:/[^/\s\"]+)*/resources/(mkosi-(?:initrd|tools|vm|obs|addon))(?=/|$)")
MISSING = "<missing>"


@dataclass
class Case:
    name: str  # "<group>/<case>"
    files: dict[str, bytes]  # relative path -> content (configuration only)
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    expect_error: str | None = None  # None: both must succeed; "" or a regex: both must fail

    @classmethod
    def load(cls, directory: Path) -> "Case":
        files = {}
        for path in sorted(directory.rglob("*")):
            relative = path.relative_to(directory).as_posix()
            if relative in CONTROL_FILES or path.is_dir():
                continue
            files[relative] = path.read_bytes()
        args = shlex.split((directory / "args").read_text(), comments=True) if (directory / "args").exists() else []
        env = {}
        if (directory / "env").exists():
            for line in (directory / "env").read_text().splitlines():
                if line.strip() and not line.startswith("#"):
                    key, _, value = line.partition("=")
                    env[key] = value
        error = (directory / "expect-error").read_text().strip() if (directory / "expect-error").exists() else None
        return cls(directory.relative_to(CASES).as_posix(), files, args, env, error)

    def mentions(self, word: str) -> bool:
        """Whether the case's configuration or arguments say `word` (case-insensitive)."""
        text = b"\n".join(self.files.values()).decode(errors="replace") + " ".join(self.args)
        return word.lower() in text.lower()

    def materialise(self, base: Path) -> Path:
        project = base / PROJECT
        project.mkdir(parents=True)
        for relative, content in self.files.items():
            path = project / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        return project


def all_cases() -> list[Path]:
    return sorted(p for p in CASES.glob("*/*") if p.is_dir())


@dataclass
class Run:
    status: int
    stdout: str
    stderr: str
    document: Any = None


def command_line(tool: list[str], args: list[str]) -> list[str]:
    if "summary" in args:
        return [*tool, *args]
    return [*tool, *args, "--json", "summary"]


def base_environment(extra: dict[str, str]) -> dict[str, str]:
    env = {key: os.environ[key] for key in ("PATH", "HOME", "TMPDIR") if key in os.environ}
    env.update(LANG="C.UTF-8", TERM="dumb", KOSI_NO_COLOR="1", NO_COLOR="1")
    env.update(extra)
    return env


def start_tool(tool: list[str], tool_env: dict[str, str], case: Case, project: Path) -> subprocess.Popen:
    env = base_environment({**tool_env, **case.env})
    return subprocess.Popen(
        command_line(tool, case.args),
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_tool(process: subprocess.Popen, project: Path) -> Run:
    stdout, stderr = process.communicate(timeout=120)
    run = Run(process.returncode, stdout, stderr)
    if process.returncode == 0:
        try:
            run.document = normalise(json.loads(stdout), str(project))
        except json.JSONDecodeError:
            pass
    return run


def normalise(value: Any, project: str) -> Any:
    """The document with the case's directory replaced by $CASE and built-in configuration's
    by $BUILTIN/<name> (see the module's docstring)."""
    if isinstance(value, str):
        return BUILTIN.sub(r"$BUILTIN/\1", value.replace(project, PLACEHOLDER))
    if isinstance(value, list):
        return [normalise(v, project) for v in value]
    if isinstance(value, dict):
        return {
            k: builtin_files(normalise(v, project)) if k == "Files" else normalise(v, project) for k, v in value.items()
        }
    return value


def builtin_files(files: Any) -> Any:
    """`Files` with each run of one built-in configuration's files as one `$BUILTIN/<name>`."""
    if not isinstance(files, list):
        return files
    out: list[Any] = []
    for entry in files:
        if isinstance(entry, str) and entry.startswith("$BUILTIN/"):
            entry = "/".join(entry.split("/")[:2])
            if out and out[-1] == entry:
                continue
        out.append(entry)
    return out


def is_uuid(value: Any) -> bool:
    try:
        return isinstance(value, str) and str(uuid.UUID(value)) == value
    except ValueError:
        return False


def neutralise_random(case: Case, mkosi: Any, kosi: Any) -> None:
    """Seed= defaults to a random UUID, and Seed=random or MachineId=random are a random UUID
    too, drawn anew by every run of either tool: where mkosi's value is such a UUID (one the case
    does not spell out), kosi's only has to be a UUID as well."""
    if not isinstance(mkosi, dict) or not isinstance(kosi, dict):
        return
    text = (b"\n".join(case.files.values()).decode(errors="replace") + " ".join(case.args)).lower()
    pairs = list(zip(kosi.get("Images") or [], mkosi.get("Images") or [], strict=False))
    if isinstance(kosi.get("Tools"), dict) and isinstance(mkosi.get("Tools"), dict):
        pairs.append((kosi["Tools"], mkosi["Tools"]))
    for ours, theirs in pairs:
        for key in RANDOM_KEYS:
            if is_uuid(theirs.get(key)) and is_uuid(ours.get(key)) and theirs[key].lower() not in text:
                ours[key] = theirs[key] = "<random uuid>"


RANDOM_KEYS = ("Seed", "MachineId")


DEFAULT_INITRD = "default-initrd"
#: the heading of docs/compatibility.md that strip_default_initrd follows
DEFAULT_INITRD_DOC = "The default initrd is not an image of the summary"


def strip_default_initrd(mkosi: Any, kosi: Any) -> bool:
    """docs/compatibility.md, DEFAULT_INITRD_DOC: mkosi 27.1 lists the default initrd as an image
    `default-initrd`, adds it to the Dependencies= of each image needing it and its output
    (`<OutputDirectory>/initrd`) to the image's Initrds=; kosi builds it inside the image's
    build. Takes exactly that out of mkosi's document (an Initrds= entry kosi prints too, as for
    Initrds=default, stays) and says whether there was anything to take out."""
    if not isinstance(mkosi, dict) or not isinstance(kosi, dict):
        return False
    images = mkosi.get("Images") or []
    if not any(image.get("Image") == DEFAULT_INITRD for image in images):
        return False
    if any(image.get("Image") == DEFAULT_INITRD for image in kosi.get("Images") or []):
        return False
    mkosi["Images"] = [image for image in images if image.get("Image") != DEFAULT_INITRD]
    ours = {image.get("Image"): image for image in kosi.get("Images") or []}
    for image in mkosi["Images"]:
        if DEFAULT_INITRD not in (image.get("Dependencies") or []):
            continue
        image["Dependencies"] = [d for d in image["Dependencies"] if d != DEFAULT_INITRD]
        kept = list(ours.get(image.get("Image"), {}).get("Initrds") or [])
        initrds = []
        for initrd in image.get("Initrds") or []:
            if initrd in kept:
                kept.remove(initrd)
                initrds.append(initrd)
            elif not initrd.endswith("/initrd"):
                initrds.append(initrd)
        image["Initrds"] = initrds
    return True


def differences(expected: Any, actual: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Every key path where the two documents differ, with mkosi's and kosi's value."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in list(expected) + [k for k in actual if k not in expected]:
            out += differences(expected.get(key, MISSING), actual.get(key, MISSING), f"{path}.{key}" if path else key)
        return out
    if (
        isinstance(expected, list)
        and isinstance(actual, list)
        and len(expected) == len(actual)
        and any(isinstance(v, (dict, list)) for v in expected + actual)
    ):
        out = []
        for index, (a, b) in enumerate(zip(expected, actual, strict=True)):
            out += differences(a, b, f"{path}[{index}]")
        return out
    if expected != actual or type(expected) is not type(actual):
        return [(path or "<document>", expected, actual)]
    return []


def key_name(path: str) -> str:
    """The setting a key path is about: "Images[1].Packages" -> "Packages", "Tools" -> "Tools"."""
    match = re.match(r"Images\[\d+\]\.(\w+)", path)
    return match.group(1) if match else path.split(".")[0].split("[")[0]


def image_label(document: Any, index: int) -> str:
    try:
        return str(document["Images"][index]["Image"])
    except (KeyError, IndexError, TypeError):
        return str(index)


def describe(diffs: list[tuple[str, Any, Any]]) -> str:
    return "\n".join(f"  {path}:\n    mkosi: {json.dumps(a)}\n    kosi:  {json.dumps(b)}" for path, a, b in diffs)


@dataclass
class Outcome:
    case: Case
    mkosi: Run
    kosi: Run
    diffs: list[tuple[str, Any, Any]]
    problems: list[str]  # failures other than differing documents (exit status, tracebacks)
    default_initrd: bool = False  # strip_default_initrd took mkosi's default-initrd image out

    @property
    def equal(self) -> bool:
        return not self.diffs and not self.problems

    def report(self) -> str:
        lines = [f"case {self.case.name}:"]
        lines += [f"  {p}" for p in self.problems]
        if self.diffs:
            lines.append(f"  {len(self.diffs)} differing key(s) (mkosi 27.1 vs kosi):")
            lines.append(describe(self.diffs))
        return "\n".join(lines)


def compare(case: Case, base: Path, mkosi_tool: tuple[list[str], dict[str, str]]) -> Outcome:
    mkosi_dir = case.materialise(base / "mkosi")
    kosi_dir = case.materialise(base / "kosi")
    # Both at once: the machine has two cores and the suite runs hundreds of cases.
    mkosi_process = start_tool(*mkosi_tool, case, mkosi_dir)
    kosi_process = start_tool(KOSI, {}, case, kosi_dir)
    mkosi = finish_tool(mkosi_process, mkosi_dir)
    kosi = finish_tool(kosi_process, kosi_dir)
    problems: list[str] = []
    diffs: list[tuple[str, Any, Any]] = []
    if "Traceback (most recent call last)" in kosi.stderr:
        problems.append(f"kosi crashed:\n{kosi.stderr}")
    if case.expect_error is not None:
        if mkosi.status not in (1, 2):  # 2: mkosi's argparse refusing the command line
            problems.append(
                f"mkosi was expected to refuse the configuration, exit status {mkosi.status}: {mkosi.stderr.strip()[-400:]}"
            )
        # 1 for a refused configuration, 2 (as argparse) for a malformed command line
        wanted = mkosi.status if mkosi.status in (1, 2) else 1
        if kosi.status != wanted:
            problems.append(
                f"kosi was expected to refuse the configuration with exit status {wanted}, got {kosi.status}"
            )
        else:
            lines = [line for line in kosi.stderr.splitlines() if line.strip()]
            if len(lines) != 1:
                problems.append(f"kosi's error is not one line:\n{kosi.stderr}")
            elif case.expect_error and not re.search(case.expect_error, lines[0]):
                problems.append(f"kosi's error {lines[0]!r} does not match {case.expect_error!r}")
        return Outcome(case, mkosi, kosi, diffs, problems)
    if mkosi.status != 0 or mkosi.document is None:
        problems.append(
            f"mkosi failed (exit status {mkosi.status}), the case is wrong or needs expect-error:\n"
            f"{mkosi.stderr.strip()[-1500:]}"
        )
    if kosi.status != 0 or kosi.document is None:
        problems.append(
            f"kosi failed (exit status {kosi.status}) where mkosi succeeded:\n{kosi.stderr.strip()[-1500:]}"
        )
    stripped = False
    if not problems:
        stripped = strip_default_initrd(mkosi.document, kosi.document)
        neutralise_random(case, mkosi.document, kosi.document)
        diffs = differences(mkosi.document, kosi.document)
    return Outcome(case, mkosi, kosi, diffs, problems, stripped)


#: what each hand-written case run in this session came to: "equal", "deviation" or "different"
RESULTS: dict[str, str] = {}


def summary_line() -> str:
    values = list(RESULTS.values())
    return (
        f"compat: {len(all_cases())} cases, {len(values)} run, {values.count('equal')} equal, "
        f"{values.count('deviation')} documented deviations, {values.count('pending')} pending kosi fixes, "
        f"{values.count('different')} different"
    )
