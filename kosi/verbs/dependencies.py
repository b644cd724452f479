"""`kosi dependencies [-- --profile PROFILE...]`: the host packages kosi needs, one per line.

The list is the default tools tree's (the distribution's tools_tree_packages), so building a tools tree
and installing the host's tools never disagree: the base set and the package-manager
profile are always printed, other profiles on request, e.g. `-- --profile runtime` for
what booting images needs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from kosi.errors import KosiError

ALWAYS = ("base", "package-manager")


def host_tools_distribution(os_release: Path = Path("/etc/os-release")) -> str:
    """The host's distribution, or the one it derives from, that kosi has a tools tree for."""
    try:
        text = os_release.read_text()
    except OSError:
        return "debian"
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    ids = [fields.get("ID", "").strip('"')] + fields.get("ID_LIKE", "").strip('"').split()
    return next((i for i in ids if tools_tree_packages(i)), ids[0] or "debian")


def tools_tree_packages(name: str) -> dict[str, tuple[str, ...]]:
    """The default tools tree's packages per profile when built from `name`; {} if kosi has none."""
    from kosi import distributions

    return distributions.get(name).tools_tree_packages if name in distributions.names() else {}


def requested_profiles(words: list[str]) -> list[str]:
    """`--profile runtime`, `--profile=runtime,misc`, repeated as needed."""
    profiles: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--profile":
            if i + 1 >= len(words):
                raise KosiError("dependencies: --profile needs a value")
            i += 1
            value = words[i]
        elif word.startswith("--profile="):
            value = word.split("=", 1)[1]
        else:
            raise KosiError(f"dependencies: unknown argument {word!r}", hint="only --profile PROFILE is understood")
        profiles += [p for p in value.replace(",", " ").split() if p]
        i += 1
    return profiles


def packages(distribution: str, profiles: list[str]) -> list[str]:
    from kosi import distributions

    table = tools_tree_packages(distribution)
    if not table:
        known = [name for name in distributions.names() if tools_tree_packages(name)]
        raise KosiError(f"dependencies: kosi has no package list for {distribution}", hint="known: " + ", ".join(known))
    unknown = [p for p in profiles if p not in table]
    if unknown:
        raise KosiError(
            f"dependencies: unknown profile {unknown[0]!r}", hint="known: " + ", ".join(p for p in table if p != "base")
        )
    result: list[str] = []
    for profile in [*ALWAYS, *profiles]:
        result += table[profile]
    return list(dict.fromkeys(result))


def run(args) -> int:
    words = list(getattr(args, "cmdline", []) or []) + list(getattr(args, "verb_args", []) or [])
    sys.stdout.write("".join(f"{name}\n" for name in packages(host_tools_distribution(), requested_profiles(words))))
    return 0
