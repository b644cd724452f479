"""Devicetrees=: compiled devicetrees (.dtb) of a kernel, chosen by glob patterns.

Kernel packages install their dtbs in different places; the patterns are relative to each of
them. One match goes into a UKI's .dtb section (or a Type 1 entry's `devicetree` line); more
matches become .dtbauto sections, from which systemd-stub picks the one whose `compatible`
fits the machine. Type 1 entries can name only one devicetree.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from kosi.errors import KosiError


def search_directories(root: Path, kver: str) -> list[Path]:
    return [
        root / f"usr/lib/modules/{kver}/dtb",
        root / f"usr/lib/firmware/{kver}/device-tree",
        root / f"usr/lib/linux-image-{kver}",
    ]


def find_devicetrees(root: Path, kver: str, patterns: list[str]) -> list[Path]:
    """The dtbs the patterns select, in pattern order, each once; a pattern without match is an error."""
    found: dict[str, Path] = {}
    for pattern in patterns:
        relative = pattern.lstrip("/")
        matches: dict[str, Path] = {}
        for directory in search_directories(root, kver):
            if not directory.is_dir():
                continue
            for path in sorted(directory.glob(relative)):
                # the first directory providing a name wins, like a search path
                if path.is_file():
                    matches.setdefault(str(path.relative_to(directory)), path)
        if not matches:
            places = ", ".join("/" + str(d.relative_to(root)) for d in search_directories(root, kver))
            raise KosiError(f"Devicetrees={pattern}: no devicetree of kernel {kver} matches (searched {places})")
        for name, path in matches.items():
            found.setdefault(name, path)
    return list(found.values())


def ukify_arguments(devicetrees: list[Path]) -> list[str]:
    """One devicetree: the .dtb section; several: a .dtbauto section each."""
    if len(devicetrees) == 1:
        return [f"--devicetree={devicetrees[0]}"]
    return [f"--devicetree-auto={path}" for path in devicetrees]


def add_to_type1_entry(entry: Path, esp: Path, devicetrees: list[Path]) -> None:
    """Copy the devicetree next to the entry's kernel and name it in a `devicetree` line."""
    if not devicetrees:
        return
    if len(devicetrees) > 1:
        names = ", ".join(p.name for p in devicetrees)
        raise KosiError(
            f"Devicetrees=: a Type 1 boot entry takes one devicetree, the patterns select {names}",
            hint="narrow the patterns, or boot through UKIs (UnifiedKernelImages=yes)",
        )
    lines = entry.read_text().splitlines()
    linux = next(line.split(None, 1)[1] for line in lines if line.startswith("linux "))
    target = f"{linux.rsplit('/', 1)[0]}/{devicetrees[0].name}"
    shutil.copy2(devicetrees[0], esp / target.lstrip("/"))
    options = next((i for i, line in enumerate(lines) if line.startswith("options ")), len(lines))
    lines.insert(options, f"devicetree {target}")
    entry.write_text("\n".join(lines) + "\n")
