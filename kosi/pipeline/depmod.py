"""The Depmod step: depmod only when the image's module indexes are stale, with the image's
depmod.d and System.map; and the module-file helpers the kernel-module selection shares.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from kosi import log
from kosi.pipeline.image_tool import ImageTool
from kosi.pipeline.step import ImageDependent
from kosi.sandbox import Mount

#: what depmod reads besides the module files: its configuration (lowest precedence first; a
#: file name in a later directory overrides the same name in an earlier one) and the kernel's lists
DEPMOD_CONFIG_DIRECTORIES = ("usr/lib/depmod.d", "usr/local/lib/depmod.d", "etc/depmod.d")
DEPMOD_LISTS = ("modules.order", "modules.builtin", "modules.builtin.modinfo")
DEPMOD_INDEXES = ("modules.dep", "modules.dep.bin", "modules.alias.bin", "modules.symbols.bin")
MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")
#: a module file's suffix, compressed or not
MODULE_SUFFIX = re.compile(r"\.ko(\.(xz|zst|gz))?$")


def depmod_configuration(root: Path) -> dict[str, Path]:
    """The image's depmod.d files by name, the overriding one for each name."""
    files: dict[str, Path] = {}
    for directory in DEPMOD_CONFIG_DIRECTORIES:
        base = root / directory
        if base.is_dir():
            for path in sorted(base.iterdir()):
                if path.name.endswith(".conf"):
                    files[path.name] = path
    return {name: path for name, path in files.items() if path.is_file()}  # /dev/null symlinks mask


def module_files(moddir: Path) -> dict[str, int]:
    """Module files below `moddir` (relative paths, as modules.dep names them) and their mtimes."""
    found: dict[str, int] = {}
    for directory, _, names in os.walk(moddir):
        for name in names:
            if name.endswith(MODULE_SUFFIXES):
                path = os.path.join(directory, name)
                found[os.path.relpath(path, moddir)] = os.lstat(path).st_mtime_ns
    return found


def module_name(relative: str) -> str:
    """The name modprobe knows a module file by: no directory, no suffix, "_" for "-"."""
    return MODULE_SUFFIX.sub("", relative.rsplit("/", 1)[-1]).replace("-", "_")


def stale_index(root: Path, kver: str) -> str | None:
    """Why depmod's indexes of `kver` no longer describe its modules, or None when they do.

    Decompressing every module is what makes depmod slow (over 500 MB of xz for a Debian
    kernel: about 10 s of one core), and the kernel package's postinst has already run it in
    the image. A rerun is needed only when modules came or went (modules.dep lists every one)
    or a module, list or depmod.d file changed after the index was written.
    """
    moddir = root / "usr/lib/modules" / kver
    missing = [index for index in DEPMOD_INDEXES if not (moddir / index).is_file()]
    if missing:
        return f"no {missing[0]}"
    written = (moddir / "modules.dep").stat().st_mtime_ns
    listed = {line.split(":", 1)[0] for line in (moddir / "modules.dep").read_text().splitlines() if ":" in line}
    found = module_files(moddir)
    removed = listed - set(found)
    # A module left out because another file of the same name won (depmod.d search order) is
    # not listed either; only a name modules.dep does not know at all is a new module.
    known = {module_name(m) for m in listed}
    added = {m for m in set(found) - listed if module_name(m) not in known}
    if removed or added:
        example = sorted(removed | added)[0]
        return f"{len(removed)} modules removed and {len(added)} added since modules.dep was written (e.g. {example})"
    newer = [name for name, mtime in found.items() if mtime > written]
    newer += [
        p.name
        for p in [*(moddir / n for n in DEPMOD_LISTS), *depmod_configuration(root).values()]
        if p.exists() and p.stat().st_mtime_ns > written
    ]
    if newer:
        return f"{sorted(newer)[0]} is newer than modules.dep"
    return None


def system_map(root: Path, kver: str) -> Path | None:
    for candidate in (root / "boot" / f"System.map-{kver}", root / "usr/lib/modules" / kver / "System.map"):
        if candidate.is_file():
            return candidate
    return None


class Depmod(ImageTool):
    """depmod for each kernel in usr/lib/modules whose indexes are out of date, with the image's
    depmod.d configuration (not the host's or the tools tree's) and the kernel's System.map."""

    name = program = "depmod"

    def kernels(self, context) -> list[str]:
        modules = context.root / "usr/lib/modules"
        if not modules.is_dir():
            return []
        return sorted(p.name for p in modules.iterdir() if (p / "kernel").is_dir())

    def stale(self, context) -> dict[str, str]:
        reasons = {kver: stale_index(context.root, kver) for kver in self.kernels(context)}
        return {kver: reason for kver, reason in reasons.items() if reason}

    def nothing_to_do(self, context):
        kernels = self.kernels(context)
        if not kernels:
            return ImageDependent("image has no kernel modules")
        if not self.stale(context):
            return ImageDependent(f"module indexes of {', '.join(kernels)} are up to date")
        return None

    def run(self, context):
        config = context.workspace / "depmod.d"
        shutil.rmtree(config, ignore_errors=True)
        config.mkdir(parents=True)
        for name, path in depmod_configuration(context.root).items():
            shutil.copyfile(path, config / name)
        for kver, reason in self.stale(context).items():
            log.debug(f"depmod {kver}: {reason}")
            arguments = ["--all", f"--basedir={context.root}", f"--config={config}"]
            symbols = system_map(context.root, kver)
            if symbols:
                arguments.append(f"--filesyms={symbols}")
            self.run_tool(context, [*arguments, kver], mounts=[Mount(config, str(config), "ro-bind")])
        shutil.rmtree(config)
