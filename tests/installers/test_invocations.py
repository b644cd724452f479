"""kosi runs dnf (dnf5 and dnf 4), zypper, pacman and apk as mkosi 27.1 does: the same sequence of
invocations with the same operations, packages and options that change what is installed.

mkosi's side was captured with tests/installers/capture_mkosi.py (fake package managers on
ExtraSearchPaths= that record their command line) into data/mkosi-27.1-invocations.json; kosi
builds the same configuration here with the same fakes. What is compared leaves out where
files are (the sandbox's paths differ by design) and how output looks; the deliberate
differences are listed in DELIBERATE and in docs/compatibility.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from capture_mkosi import TOOLS, fake_tools
from test_zypper import expired_keys

REPO = Path(__file__).resolve().parents[2]
ORACLE = json.loads((Path(__file__).parent / "data/mkosi-27.1-invocations.json").read_text())

#: per tool: options whose value is a path (left out with it), options taking a separate value,
#: options that only change how output looks, and spellings that mean the same
PATHS = {
    "dnf": {"--installroot", "--config", "reposdir", "varsdir", "cachedir", "persistdir", "logdir"}
    | {"system_cachedir", "proxy_sslcacert"},
    "zypper": {"--installroot", "--reposd-dir", "--cache-dir"},
    "rpm": {"--root"},
    "pacman": {"--config", "--root", "--dbpath", "--cachedir", "--gpgdir", "--hookdir", "--logfile"},
    "apk": {"--root", "--cache-dir", "--keys-dir", "--repositories-file"},
}
VALUES = {
    "dnf": set(),
    "zypper": {"--installroot", "--reposd-dir", "--cache-dir", "--download"},
    "rpm": {"--root"},
    "pacman": {"--config", "--root", "--dbpath", "--cachedir", "--gpgdir", "--hookdir", "--logfile"}
    | {"--arch", "--color", "--assume-installed"},
    "apk": {"--root", "--cache-dir", "--keys-dir", "--repositories-file", "--arch", "--cache-max-age"},
}
COSMETIC = {"--no-color", "--color", "--noprogressbar", "--no-progress"}
SAME = {"--setopt=tsflags=nodocs": "--nodocs", "-Sy": ["--sync", "--refresh"], "-S": ["--sync"], "-R": ["--remove"]}

#: kosi does these differently on purpose (docs/compatibility.md, "Package managers")
DELIBERATE = {
    # dnf: kosi sets skip_if_unavailable=0 on every call, mkosi on makecache only (same effect:
    # metadata is loaded only there)
    "--setopt=skip_if_unavailable=0": None,
    # pacman: kosi builds the keyring itself from archlinux-keyring's files, never with
    # pacman-key --populate (which would import the host's other keyrings)
    "pacman-key": None,
}


def normalise(call: str) -> tuple[str, list[str], list[str]]:
    """(tool, sorted options that matter, operations and packages in order) of one command line."""
    words = call.split()
    tool = {"dnf5": "dnf"}.get(words[0], words[0])
    options, operands, skip = [], [], False
    words = [w for word in words[1:] for w in (SAME[word] if isinstance(SAME.get(word), list) else [word])]
    for index, word in enumerate(words):
        if skip:
            skip = False
            continue
        word = SAME.get(word, word) if isinstance(SAME.get(word), str) else word
        name = word.split("=", 2)[1] if word.startswith("--setopt=") else word.split("=", 1)[0]
        if word.startswith("-") and name in VALUES.get(tool, set()) and "=" not in word:
            skip = True
            if name not in PATHS.get(tool, set()) and name not in COSMETIC:
                options.append(f"{word} {words[index + 1]}")
        elif name in PATHS.get(tool, set()) or name in COSMETIC or word in DELIBERATE:
            continue
        elif word.startswith("-"):
            options.append(word)
        elif tool == "rpm":
            operands.append(Path(word).name)  # key files: their names
        else:
            operands.append(word)
    return tool, sorted(options), sorted(operands) if tool == "rpm" else operands


def kosi_calls(settings: dict[str, str], keys: list[str], fake: Path, directory: Path) -> list[str]:
    project = directory / "project"
    project.mkdir()
    text = "[Distribution]\n" + "".join(f"{k}={v}\n" for k, v in settings.items() if k != "Packages")
    text += f"[Content]\nPackages={settings.get('Packages', '')}\n[Output]\nFormat=directory\n"
    text += f"[Build]\nWorkspaceDirectory={directory}\nCacheDirectory={directory / 'cache'}\n"
    (project / "mkosi.conf").write_text(text)
    (directory / "cache").mkdir()
    for key in keys:  # where mkosi found them: the sandbox tree's distribution-gpg-keys
        path = project / "mkosi.sandbox" / key.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    result = subprocess.run(
        [sys.executable, str(REPO / "bin/kosi"), "-C", str(project), "--debug", f"--extra-search-path={fake}", "build"],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(directory)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [line[len("FAKE-PM ") :] for line in result.stderr.splitlines() if line.startswith("FAKE-PM ")]


@pytest.mark.parametrize("case", sorted(ORACLE))
def test_package_manager_invocations_equal_mkosi_27_1s(case, tmp_path):
    """makecache/refresh/-Sy/update once, then the distribution's first packages in a transaction
    of their own (basesystem; filesystem and the release package; filesystem;
    postmarketos-baselayout and -release), then Packages=, each with mkosi's options; then
    RemovePackages= (one name installed, one provided by it, one unknown): dnf and zypper get them
    all, pacman only installed names, apk what its query finds installed by name or provides."""
    expected = ORACLE[case]
    fake = fake_tools(tmp_path / "bin", tuple(expected.get("tools", TOOLS)))
    calls = kosi_calls(expected["settings"], expected["keys"], fake, tmp_path)
    wanted = [normalise(c) for c in expected["calls"] if c.split()[0] not in DELIBERATE]
    if case == "fedora-dnf4":
        # dnf 4's makecache asks the mirror for repomd.xml even when the cached copy has not
        # expired: kosi loads the repositories with a query instead (docs/compatibility.md)
        wanted[0] = ("dnf", sorted([*wanted[0][1], "--quiet"]), ["repoquery", "kosi-metadata-sync"])
    got = [normalise(c) for c in calls]
    if expected["settings"].get("Distribution") == "opensuse":
        # kosi imports the keys one at a time, without those distribution-gpg-keys has only
        # expired (docs/compatibility.md, "openSUSE: repositories")
        merged: list[tuple[str, list[str], list[str]]] = []
        for call in got:
            if call[0] == "rpm" and merged and merged[-1][0] == "rpm":
                merged[-1] = ("rpm", call[1], sorted([*merged[-1][2], *call[2]]))
            else:
                merged.append(call)
        got = merged
        expired = expired_keys(expected["settings"])
        wanted = [(t, o, [k for k in ops if k not in expired]) if t == "rpm" else (t, o, ops) for t, o, ops in wanted]
    assert got == wanted


def test_normalise_leaves_out_paths_and_keeps_what_matters():
    assert normalise("pacman --root=/x --dbpath /y --color never -Sy --noprogressbar --assume-installed initramfs") == (
        "pacman",
        ["--assume-installed initramfs", "--refresh", "--sync"],
        [],
    )
    assert normalise("zypper --installroot /r --no-refresh install --download in-advance a b") == (
        "zypper",
        ["--download in-advance", "--no-refresh"],
        ["install", "a", "b"],
    )
    assert normalise("dnf5 --installroot=/r --setopt=cachedir=/c --setopt=tsflags=nodocs install x") == (
        "dnf",
        ["--nodocs"],
        ["install", "x"],
    )
