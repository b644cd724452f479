#!/usr/bin/env python3
"""Capture what mkosi 27.1 hands its package manager: run the oracle's `build` with fake zypper,
pacman, apk, dnf5 and rpm on ExtraSearchPaths= (they record their command line and the
repository files they find in the sandbox, create an os-release, report one installed package
and succeed), and print the result as JSON. Used to write tests/installers/data/mkosi-27.1-*.json:

    tests/installers/capture_mkosi.py '{"name": {"Distribution": "opensuse", "Release": "15.6"}}'

Key files mkosi asks for are created empty in the case's mkosi.sandbox/ (it names one missing
key at a time), so the result also lists the keys mkosi requires.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compat"))
import oracle

FAKE = r"""#!/bin/sh
echo "FAKE-PM $(basename "$0") $*" >&2
root= prev=
for a in "$@"; do
  case "$a" in --installroot=*|--root=*) root="${a#*=}";; esac
  case "$prev" in --root|-r|--installroot) root="$a";; esac
  prev="$a"
done
for f in /etc/yum.repos.d/* /etc/zypp/repos.d/* /etc/pacman.conf /etc/pacman.d/* /etc/apk/repositories; do
  [ -f "$f" ] || continue
  echo "FAKE-FILE $f" >&2; sed 's/^/FAKE-LINE /' "$f" >&2
done
if [ -n "$root" ]; then
  mkdir -p "$root/usr/lib" "$root/etc" && ln -sf ../usr/lib/os-release "$root/etc/os-release"
  [ -f "$root/usr/lib/os-release" ] || printf 'ID=fake\n' > "$root/usr/lib/os-release"
fi
# one installed package, realpkg providing virtualpkg, for RemovePackages= to find: in pacman's
# database once pacman installed something, and as apk's answer to a query
case "$(basename "$0") $*" in
  "pacman "*" --needed "*)
    mkdir -p "$root/var/lib/pacman/local/realpkg-1.0-1"
    printf '%%NAME%%\nrealpkg\n\n%%VERSION%%\n1.0-1\n\n%%PROVIDES%%\nvirtualpkg\n\n' \
      > "$root/var/lib/pacman/local/realpkg-1.0-1/desc";;
  "apk "*" query "*) echo '[{"name":"realpkg","provides":["virtualpkg=1"]}]';;
esac
exit 0
"""
TOOLS = ("dnf5", "rpm", "zypper", "pacman", "pacman-key", "pacman-conf", "apk")
KEYS = {"opensuse": "/usr/share/distribution-gpg-keys/opensuse", "fedora": "/usr/share/distribution-gpg-keys/fedora"}


def fake_tools(directory: Path, tools: tuple[str, ...] = TOOLS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in tools:
        (directory / name).write_text(FAKE)
        (directory / name).chmod(0o755)
    return directory


def run_once(settings: dict[str, str], keys: list[str], fake: Path) -> tuple[list[str], dict[str, str], list[str]]:
    command, env = oracle.mkosi_command(oracle.ensure_oracle())
    with tempfile.TemporaryDirectory() as directory:
        text = "[Distribution]\n" + "".join(f"{k}={v}\n" for k, v in settings.items()) + "[Output]\nFormat=directory\n"
        Path(directory, "mkosi.conf").write_text(text)
        for key in keys:
            path = Path(directory, "mkosi.sandbox", key.lstrip("/"))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")
        result = subprocess.run(
            [*command, "-f", f"--extra-search-path={fake}", "build"],
            cwd=directory, env={**os.environ, **env}, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    calls, files, current = [], {}, ""
    for line in result.stderr.splitlines():
        if line.startswith("FAKE-PM "):
            calls.append(line[8:])
        elif line.startswith("FAKE-FILE "):
            current = line[10:]
            files[current] = ""
        elif line.startswith("FAKE-LINE "):
            files[current] += line[10:] + "\n"
    return calls, files, result.stderr.splitlines()[-3:]


def capture(settings: dict[str, str], fake: Path) -> dict:
    keys: list[str] = []
    for _ in range(16):
        calls, files, tail = run_once(settings, keys, fake)
        missing = [m.group(1) for line in tail if (m := re.search(r"(\S+) GPG key not found", line))]
        if not missing:
            break
        keys.append(f"{KEYS[settings['Distribution']]}/{missing[0]}")
    return {"settings": settings, "keys": keys, "calls": calls, "files": files, "tail": tail}


def main() -> None:
    """A case's "_tools" (comma-separated) fakes those tools instead of TOOLS (e.g. "dnf,rpm": dnf 4)."""
    cases = json.loads(sys.argv[1])
    results = {}
    with tempfile.TemporaryDirectory() as directory:
        for name, settings in cases.items():
            tools = tuple(settings.pop("_tools").split(",")) if "_tools" in settings else TOOLS
            fake = fake_tools(Path(directory) / name, tools)
            results[name] = capture(settings, fake)
            if tools != TOOLS:
                results[name]["tools"] = list(tools)
        json.dump(results, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
