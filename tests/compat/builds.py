"""What the build-level differential tests share: running mkosi 27.1 and kosi on a project,
giving mkosi its apt sources, listing an output directory, and reporting two listings'
differences apart from the documented ones.

mkosi gets its apt sources in its sandbox tree (mkosi.sandbox/etc/apt/sources.list.d/
mkosi.sources), because it otherwise adds a debug repository this network cannot reach.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SITE = "usr/lib/python3/dist-packages"
KOSI = [sys.executable, str(REPO / "bin/kosi")]

SOURCES = """\
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie trixie-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: trixie-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

#: what mkosi 27.1 leaves in a Debian image and kosi removes, because it records when and where
#: the build ran (docs/compatibility.md, "Build-time traces are removed")
BUILD_TRACES = {
    path: "kosi removes"
    for path in (
        "etc/.pwd.lock", "var/cache/debconf/config.dat-old", "var/cache/debconf/templates.dat-old",
        "var/cache/ldconfig/aux-cache", "var/lib/dpkg/diversions-old", "var/lib/dpkg/lock",
        "var/lib/dpkg/status-old", "var/lib/dpkg/triggers/Lock", "var/log/alternatives.log", "var/log/apt",
        "var/log/btmp", "var/log/lastlog", "var/log/wtmp",
    )
}  # fmt: skip


def mkosi_command() -> tuple[list[str], dict[str, str]]:
    try:
        import oracle  # tests/compat/oracle.py fetches and caches mkosi 27.1
    except ImportError:
        root = Path("/var/cache/kosi-oracle/root")
        if not (root / SITE / "mkosi").is_dir():
            pytest.skip("mkosi 27.1 (the oracle) is not unpacked in /var/cache/kosi-oracle")
        return [sys.executable, "-m", "mkosi"], {"PYTHONPATH": str(root / SITE)}
    return oracle.mkosi_command(oracle.ensure_oracle())


def mkosi_project(directory: Path, conf: str) -> None:
    """A project directory for mkosi: `conf` as mkosi.conf, and apt sources without the debug
    repository in its sandbox tree."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "mkosi.conf").write_text(conf)
    sources = directory / "mkosi.sandbox/etc/apt/sources.list.d/mkosi.sources"
    sources.parent.mkdir(parents=True, exist_ok=True)
    sources.write_text(SOURCES)


def run_build(command: list[str], env: Mapping[str, str], directory: Path) -> None:
    """`<command> build` in `directory`; the test fails with the end of the log when it fails."""
    result = subprocess.run([*command, "build"], cwd=directory, env=dict(os.environ, **env), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)  # fmt: skip
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command[-2:])} build failed:\n{result.stdout[-3000:]}")


def listing(directory: Path, own: set[str]) -> dict[str, str]:
    """The outputs in `directory` (or its mkosi.output/ or out/): file, directory, symlink target,
    and the names a SHA256SUMS file lists. Entries named in `own` (the project's files) are left out."""
    found = {}
    for path in sorted(directory.rglob("*")):
        relative = str(path.relative_to(directory))
        if relative.split("/")[0] in own:
            continue
        depth = relative.count("/") - (1 if relative.startswith(("mkosi.output/", "out/")) else 0)
        if depth > 0:
            continue  # inside an output directory tree (Format=directory): not the naming
        if path.is_symlink():
            found[relative] = "-> " + os.readlink(path)
        elif path.is_dir():
            found[relative] = "dir"
        else:
            found[relative] = "file"
        if path.name.endswith(".SHA256SUMS"):
            found[relative] = "sums: " + " ".join(
                sorted(line.split(" *", 1)[1] for line in path.read_text().splitlines())
            )
    return found


def installed(status: Path) -> dict[str, str]:
    """Package -> version of what a dpkg status file records as installed."""
    found = {}
    for stanza in status.read_text().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " ")
        if fields.get("Status") == "install ok installed":
            found[fields["Package"]] = fields["Version"]
    return found


def differences(theirs: Mapping[str, object], ours: Mapping[str, object], known: Iterable[str] = ()) -> list[str]:
    """One line per key only one side has, or with different values, except the `known` keys."""
    known = set(known)
    report = [f"only mkosi: {k}" for k in sorted(set(theirs) - set(ours)) if k not in known]
    report += [f"only kosi: {k}" for k in sorted(set(ours) - set(theirs)) if k not in known]
    report += [
        f"{k}: mkosi {theirs[k]!r}, kosi {ours[k]!r}"
        for k in sorted(set(theirs) & set(ours))
        if theirs[k] != ours[k] and k not in known
    ]
    return report
