"""KernelModules=, KernelInitrdModules= and FirmwareFiles=: choosing kernel modules by glob.

Modules are chosen as mkosi 27.1 chooses them (tests/compat/test_module_selection.py compares
with its own filter): globs are evaluated in order and the last one that matches decides, a
leading "-" excludes; a glob without "/" matches the module's file name (dashes and
underscores are the same, as modprobe treats them), one with "/" the last components of its
path, one starting with "/" its whole path below kernel/ (or below modules/<kver>), one ending
with "/" everything below. `re:` items (the older KernelModulesInclude= spelling) add every
module they match wherever they stand; KernelModulesExclude= keeps every module it does not
match. Everything a selected module needs (modules.dep) and the firmware it asks for
(modinfo's firmware field) comes along, so a selection never yields an unloadable module.

Removing modules from the image leaves its indexes stale; the Depmod setup step that follows
(kosi/pipeline/depmod.py) notices and reruns depmod. The staged modules initrd gets its own
depmod run here, with the image's depmod.d and System.map like that step.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Iterable, Sequence

from kosi.errors import KosiError
from kosi.pipeline.depmod import MODULE_SUFFIX, depmod_configuration, system_map
from kosi.pipeline.tools import find_tool, run_on_root
from kosi.sandbox import Mount, last_error_line, run

FIRMWARE_SUFFIX = re.compile(r"\.(xz|zst)$")

#: What a generic initrd needs to find and mount a root file system on common (virtual)
#: hardware: virtio, SCSI/SATA/NVMe/USB storage, the usual file systems, device mapper
#: (LUKS, verity) and a keyboard for passphrase prompts. Used for "default".
DEFAULT_INITRD_MODULES = (
    "drivers/virtio/*", "virtio_blk", "virtio_scsi", "virtio_console", "virtio_net", "virtio-rng",
    "sd_mod", "sr_mod", "ahci", "ata_piix", "nvme", "nvme-core", "usb-storage", "uas",
    "xhci-pci", "xhci-hcd", "ehci-pci", "ohci-pci", "usbhid", "hid-generic", "atkbd", "i8042",
    "ext4", "vfat", "nls_cp437", "nls_iso8859-1", "nls_ascii", "xfs", "btrfs", "erofs", "squashfs",
    "overlay", "loop", "dm-mod", "dm-crypt", "dm-verity", "dm-integrity", "efivarfs",
    "crc32c*", "libcrc32c", "qemu_fw_cfg", "vmw_pvscsi", "hv_storvsc", "xen-blkfront",
)  # fmt: skip


def host_modules(proc_modules: Path = Path("/proc/modules")) -> list[str]:
    """The names of the modules loaded on the host (read, never changed), for "host"."""
    try:
        return [line.split()[0] for line in proc_modules.read_text().splitlines() if line.strip()]
    except OSError:
        return []


def expand_patterns(patterns: Iterable[str], loaded: Sequence[str] | None = None) -> list[str]:
    """Replace the token "default" (and "-default") with the default initrd set and "host" with
    the modules loaded on the host (`loaded`; /proc/modules when None)."""
    out: list[str] = []
    for pattern in patterns:
        negative = pattern.startswith("-")
        bare = pattern[1:] if negative else pattern
        if bare == "default":
            out += [("-" if negative else "") + p for p in DEFAULT_INITRD_MODULES]
        elif bare == "host":
            names = host_modules() if loaded is None else loaded
            out += [("-" if negative else "") + name for name in names]
        else:
            out.append(pattern)
    return out


def glob_matches(glob: str, path: str) -> bool:
    """Does a glob match `path` (no suffixes), as mkosi 27.1 matches KernelModules= and
    FirmwareFiles= globs? One without "/" matches the file name, one with "/" the last
    components of the path, one starting with "/" the whole path, one ending with "/"
    everything below."""
    if glob.endswith("/"):
        glob += "*"
    if glob.startswith("/"):
        return fnmatch.fnmatchcase(path, glob[1:])
    if "/" in glob:
        return fnmatch.fnmatchcase(path, "*/" + glob) or fnmatch.fnmatchcase(path, glob)
    return fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], glob)


def matches(pattern: str, relative: str) -> bool:
    """Does one (positive) glob match the module at `relative` (path below modules/<kver>)? The
    suffixes are ignored, "-" is "_", and a whole path ("/...") may leave out kernel/."""
    path = MODULE_SUFFIX.sub("", relative).replace("-", "_")
    glob = pattern.replace("-", "_")
    if glob.startswith("/") and path.startswith("kernel/") and glob_matches(glob, path.removeprefix("kernel/")):
        return True
    return glob_matches(glob, path)


def regex_subject(relative: str) -> str:
    """What a `re:` item (or KernelModulesExclude=) is searched in, as mkosi 27.1 does: the
    module's path below kernel/ with its suffixes, or the file name of a module outside kernel/."""
    return relative.removeprefix("kernel/") if relative.startswith("kernel/") else relative.rsplit("/", 1)[-1]


def compile_regexes(expressions: Iterable[str], setting: str) -> list[re.Pattern[str]]:
    try:
        return [re.compile(expression) for expression in expressions]
    except re.error as e:
        raise KosiError(f"{setting}=: invalid regular expression {e.pattern!r}: {e}") from None


def split_patterns(patterns: Sequence[str], setting: str) -> tuple[list[str], list[re.Pattern[str]]]:
    """A list setting's globs (in order) and its compiled `re:` items."""
    globs = [p for p in patterns if not p.startswith("re:")]
    return globs, compile_regexes([p[3:] for p in patterns if p.startswith("re:")], setting)


def last_glob_verdict(globs: Sequence[str], relative: str, verdict: bool, match: Callable[[str, str], bool]) -> bool:
    """`verdict`, unless one of `globs` matches `relative`: then the last one that does
    decides (kept, or dropped when it starts with -)."""
    for pattern in globs:
        negative = pattern.startswith("-")
        if match(pattern[1:] if negative else pattern, relative):
            verdict = not negative
    return verdict


def select(
    patterns: Sequence[str],
    candidates: Iterable[str],
    excludes: Sequence[str] = (),
    loaded: Sequence[str] | None = None,
) -> set[str]:
    """The modules mkosi 27.1 keeps: those whose last matching glob is positive and those a
    `re:` item matches (wherever it stands); with `excludes` (KernelModulesExclude=: `re:`
    items) also every module none of them matches; with neither, every module."""
    patterns = expand_patterns(patterns, loaded)
    globs, regexes = split_patterns(patterns, "KernelModules")
    exclude = compile_regexes([e.removeprefix("re:") for e in excludes], "KernelModulesExclude")
    chosen: set[str] = set()
    if not patterns and not excludes:
        return set(candidates)
    for relative in candidates:
        subject = regex_subject(relative)
        verdict = bool(exclude) and not any(e.search(subject) for e in exclude)
        verdict = last_glob_verdict(globs, relative, verdict, matches)
        if verdict or any(r.search(subject) for r in regexes):
            chosen.add(relative)
    return chosen


def read_dependencies(moddir: Path) -> dict[str, list[str]]:
    """modules.dep: module path -> the module paths it needs (all relative to moddir)."""
    deps: dict[str, list[str]] = {}
    depfile = moddir / "modules.dep"
    if depfile.exists():
        for line in depfile.read_text().splitlines():
            module, _, needs = line.partition(":")
            deps[module.strip()] = needs.split()
    else:  # no depmod run yet: every module file, no dependencies known
        for path in moddir.rglob("*.ko*"):
            if MODULE_SUFFIX.search(path.name):
                deps[str(path.relative_to(moddir))] = []
    return deps


def with_dependencies(selected: set[str], deps: dict[str, list[str]]) -> set[str]:
    closure: set[str] = set()
    pending = list(selected)
    while pending:
        module = pending.pop()
        if module in closure:
            continue
        closure.add(module)
        pending += deps.get(module, [])
    return closure


def firmware_of(moddir: Path, modules: Iterable[str], tools: Path | None) -> set[str]:
    """Firmware files the modules declare (modinfo -F firmware), relative to /usr/lib/firmware."""
    paths = [str(moddir / m) for m in sorted(modules)]
    found: set[str] = set()
    if not paths:
        return found
    tool = find_tool("modinfo", tools)
    if tool is None:
        raise KosiError(
            "choosing kernel modules needs modinfo (for their firmware), which neither the host nor the tools tree has",
            hint="install kmod, or use ToolsTree=default",
        )
    # The sandbox shows only what is mounted: the modules directory, at its own path.
    sandbox = tool.sandbox([Mount(moddir, str(moddir), "ro-bind")])
    for start in range(0, len(paths), 500):  # keep the command line short enough
        result = run(
            [tool.path, "-F", "firmware", *paths[start : start + 500]],
            sandbox=sandbox,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            check=False,
        )
        if result.returncode != 0:
            raise KosiError(
                f"modinfo could not read the modules in {moddir}: "
                f"{last_error_line(result.stderr) or f'exit status {result.returncode}'}"
            )
        found.update(line.strip() for line in (result.stdout or b"").decode().splitlines() if line.strip())
    return found


def firmware_files(root: Path, wanted: set[str], patterns: Sequence[str], excludes: Sequence[str] = ()) -> set[Path]:
    """Existing firmware files (any compression) chosen as mkosi 27.1 chooses them: those the
    modules want (`wanted`) unless a FirmwareExclude= expression matches, then FirmwareFiles=
    globs in order (the last match decides), and whatever its `re:` items match. Globs ignore
    the compression suffix, expressions search the path with it."""
    base = root / "usr/lib/firmware"
    if not base.is_dir():
        return set()
    globs, regexes = split_patterns(patterns, "FirmwareFiles")
    exclude = compile_regexes([e.removeprefix("re:") for e in excludes], "FirmwareExclude")
    out: set[Path] = set()
    for path in base.rglob("*"):
        if not (path.is_file() or path.is_symlink()):
            continue
        full = str(path.relative_to(base))
        relative = FIRMWARE_SUFFIX.sub("", full)
        verdict = relative in wanted and not any(e.search(full) for e in exclude)
        verdict = last_glob_verdict(globs, relative, verdict, glob_matches)
        if verdict or any(r.search(full) for r in regexes):
            out.add(path)
    return out


def resolve(
    root: Path,
    kver: str,
    patterns: Sequence[str],
    tools: Path | None,
    excludes: Sequence[str] = (),
    firmware: tuple[Sequence[str], Sequence[str]] = ((), ()),
) -> tuple[set[str], set[Path]]:
    """Modules (relative to modules/<kver>) and firmware files (absolute) a selection needs;
    `firmware` is (FirmwareFiles=, FirmwareExclude=)."""
    moddir = root / "usr/lib/modules" / kver
    deps = read_dependencies(moddir)
    modules = with_dependencies(select(patterns, deps, excludes), deps)
    return modules, firmware_files(root, firmware_of(moddir, modules, tools), *firmware)


def depmod_staged(image: Path, staged: Path, kver: str, tools: Path | None) -> None:
    """depmod over the modules staged below `staged`, configured as the image configures it."""
    tool = find_tool("depmod", tools)
    if tool is None:
        raise KosiError(
            "the kernel modules initrd needs depmod, which neither the host nor the tools tree has",
            hint="install kmod, or use ToolsTree=default",
        )
    config = staged.with_name(staged.name + ".depmod.d")
    shutil.rmtree(config, ignore_errors=True)
    config.mkdir(parents=True)
    for name, path in depmod_configuration(image).items():
        shutil.copyfile(path, config / name)
    arguments = ["--all", f"--basedir={staged}", f"--config={config}"]
    mounts = [Mount(config, str(config), "ro-bind")]
    symbols = system_map(image, kver)
    if symbols:
        arguments.append(f"--filesyms={symbols}")
        mounts.append(Mount(symbols, str(symbols), "ro-bind"))
    try:
        run_on_root(tool, staged, [*arguments, kver], mounts=mounts)
    finally:
        shutil.rmtree(config)


def filter_image_modules(
    root: Path,
    kver: str,
    patterns: Sequence[str],
    firmware_patterns: Sequence[str],
    tools: Path | None,
    excludes: Sequence[str] = (),
    firmware_excludes: Sequence[str] = (),
) -> int:
    """Remove every module (and firmware) KernelModules= does not select; returns how many were removed."""
    moddir = root / "usr/lib/modules" / kver
    deps = read_dependencies(moddir)
    keep, keep_firmware = resolve(root, kver, patterns, tools, excludes, (firmware_patterns, firmware_excludes))
    removed = 0
    for module in set(deps) - keep:
        (moddir / module).unlink(missing_ok=True)
        removed += 1
    base = root / "usr/lib/firmware"
    if base.is_dir():
        for path in list(base.rglob("*")):
            if (path.is_file() or path.is_symlink()) and path not in keep_firmware:
                path.unlink()
    return removed


def stage_modules(
    root: Path,
    kver: str,
    patterns: Sequence[str],
    firmware_patterns: Sequence[str],
    destination: Path,
    tools: Path | None,
    excludes: Sequence[str] = (),
    firmware_excludes: Sequence[str] = (),
) -> int:
    """Copy the selected modules, their firmware and depmod's indexes into `destination`
    (a tree for the kernel-modules initrd); returns the number of modules."""
    moddir = root / "usr/lib/modules" / kver
    modules, firmware = resolve(root, kver, patterns, tools, excludes, (firmware_patterns, firmware_excludes))
    target = destination / "usr/lib/modules" / kver
    target.mkdir(parents=True, exist_ok=True)
    for module in modules:
        (target / module).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(moddir / module, target / module)
    for index in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
        if (moddir / index).exists():
            shutil.copy2(moddir / index, target / index)
    for path in firmware:
        relative = path.relative_to(root)
        (destination / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination / relative, follow_symlinks=False)
    # depmod looks in <basedir>/lib/modules; the staged tree is merged-/usr only for the
    # duration of the call, the initrd it is appended to has its own /lib symlink.
    link = destination / "lib"
    link.symlink_to("usr/lib")
    try:
        depmod_staged(root, destination, kver, tools)
    finally:
        link.unlink()
    return len(modules)
