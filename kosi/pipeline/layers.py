"""Images that are layers on top of others: Overlay=yes and the extension formats.

- `layered_skip()`: the reason the steps that set up a whole OS (sysusers, presets,
  machine-id, ...) leave such an image alone: that is its base image's job, and their
  changes would land in the layer.
- `LayerFiles`: VerityCertificate= in /usr/lib/verity.d of a base image (mkosi 27.1 does so),
  extension-release.<Output> for Format=sysext/confext, with the fields
  mkosi 27.1 writes (ID=, SYSEXT_LEVEL=/CONFEXT_LEVEL= or VERSION_ID=, *_ID=, *_VERSION_ID=,
  *_SCOPE=, ARCHITECTURE=), keeping any the image already has.
- `OverlayDiff`: Overlay=yes keeps in the root only what it added or changed on top of
  BaseTrees= (content compared, not time stamps); what it deleted becomes an overlayfs
  whiteout (a 0:0 character device), so the output is an overlayfs upper layer.
- `check_layers()`: before any step, packages in a layer without a base tree.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import stat
from pathlib import Path

from kosi.config.model import Config
from kosi.errors import KosiError
from kosi.outputs import format as formats
from kosi.pipeline.context import Context
from kosi.pipeline.step import Step
from kosi.sandbox import run


def layered_format(config: Config) -> bool:
    """Whether the format's content is a layer on the running system (sysext, confext)."""
    return formats.get(config.format).layered_on_system


def layered_skip(config: Config) -> str | None:
    """Why steps that finish a whole OS skip this image, or None when they run."""
    if config.overlay:
        return "Overlay=yes: the base image does this"
    if layered_format(config):
        return f"Format={config.format}: the base image does this"
    return None


def check_layers(config: Config) -> None:
    """Before the build: a layer installs packages only on top of a base tree."""
    layered = config.overlay or layered_format(config)
    if layered and config.packages and not config.base_trees:
        what = "Overlay=yes" if config.overlay else f"Format={config.format}"
        raise KosiError(
            f"{what}: Packages= needs BaseTrees= (a layer installs packages on top of its base image)",
            hint="set BaseTrees= to the base image, e.g. BaseTrees=%O/base",
        )


def read_env_file(path: Path) -> dict[str, str]:
    fields: dict[str, str] = {}
    if not path.is_file():
        return fields
    for line in path.read_text(errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.lstrip().startswith("#"):
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            fields[key.strip()] = value
    return fields


def environment_value(config: Config, name: str) -> str | None:
    found = None
    for assignment in config.environment:  # later assignments win
        if name in assignment:
            found = assignment[name]
    return found


def verity_certificate_file(config: Config) -> Path | None:
    """VerityCertificate= when it is a file (a provider's certificate cannot be copied)."""
    certificate = config.verity_certificate
    if not certificate or config.verity_certificate_source.type != "file" or not Path(certificate).is_file():
        return None
    return Path(certificate)


#: files portablectl mounts over in a portable service image, so they must exist
PORTABLE_MOUNTPOINTS = ("passwd", "group", "shadow", "gshadow", "nsswitch.conf", "resolv.conf", "machine-id")


class LayerFiles(Step):
    name = "write extension-release/mount points"

    def skip(self, context):
        if not formats.get(context.config.format).extension_image and not verity_certificate_file(context.config):
            return f"Format={context.config.format} is no extension or portable image, and no VerityCertificate="
        return None

    def run(self, context):
        certificate = verity_certificate_file(context.config)
        fmt = formats.get(context.config.format)
        if not fmt.extension_image and certificate is not None:
            # The base system trusts the verity certificate: systemd-dissect (sysext, confext,
            # portablectl) checks signatures against /usr/lib/verity.d/*.crt, as mkosi ships it.
            target = context.root / "usr/lib/verity.d" / f"{certificate.stem}.crt"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(certificate, target)
            target.chmod(0o644)
            return
        if fmt.portable_service:
            etc = context.root / "etc"
            etc.mkdir(parents=True, exist_ok=True)
            for name in PORTABLE_MOUNTPOINTS:
                path = etc / name
                if not path.is_symlink() and not path.exists():
                    path.touch(mode=0o600 if name.endswith("shadow") else 0o644)
            return
        write_extension_release(context)


def write_extension_release(context: Context) -> None:
    config = context.config
    fields_of = formats.get(config.format).extension_release
    if fields_of is None:
        raise KosiError(f"Format={config.format} has no extension-release")
    prefix, directory = fields_of
    path = context.root / directory / "extension-release.d" / f"extension-release.{config.output}"
    osrelease = read_env_file(context.root / "usr/lib/os-release")
    fields = read_env_file(path)
    wanted = [
        ("ID", osrelease.get("ID", "_any")),
        (f"{prefix}_LEVEL", osrelease.get(f"{prefix}_LEVEL")),
        ("VERSION_ID", osrelease.get("VERSION_ID")),
        (f"{prefix}_ID", config.image_id),
        (f"{prefix}_VERSION_ID", config.image_version),
        (f"{prefix}_SCOPE", environment_value(config, f"{prefix}_SCOPE") or "initrd system portable"),
        ("ARCHITECTURE", config.architecture),
    ]
    for key, value in wanted:
        if key not in fields and value:
            fields[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in fields.items()))


# ---- Overlay=yes ----------------------------------------------------------------------------


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)


class BaseView:
    """The union of the base trees as overlayfs shows it: the last tree wins, whiteouts hide."""

    def __init__(self, trees: list[Path]):
        self.trees = list(reversed(trees))  # topmost first

    def lookup(self, rel: str) -> tuple[Path, os.stat_result] | None:
        for tree in self.trees:
            path = tree / rel
            try:
                st = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if is_whiteout(st):
                return None
            return path, st
        return None

    def listdir(self, rel: str) -> set[str]:
        names: set[str] = set()
        hidden: set[str] = set()
        for tree in self.trees:
            path = tree / rel
            if path.is_symlink() or not path.is_dir():
                continue
            for entry in os.scandir(path):
                if entry.name in hidden or entry.name in names:
                    continue
                if is_whiteout(entry.stat(follow_symlinks=False)):
                    hidden.add(entry.name)
                else:
                    names.add(entry.name)
        return names


def same_entry(path: Path, st: os.stat_result, base: Path, bst: os.stat_result) -> bool:
    """Whether `path` in the image equals `base` (type, mode, and content or link target)."""
    if stat.S_IFMT(st.st_mode) != stat.S_IFMT(bst.st_mode):
        return False
    if stat.S_ISLNK(st.st_mode):
        return os.readlink(path) == os.readlink(base)
    if stat.S_IMODE(st.st_mode) != stat.S_IMODE(bst.st_mode):
        return False
    if stat.S_ISREG(st.st_mode):
        return st.st_size == bst.st_size and filecmp.cmp(path, base, shallow=False)
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        return st.st_rdev == bst.st_rdev
    return True  # fifos, sockets


def reduce_to_changes(root: Path, base: BaseView, rel: str = "") -> bool:
    """Remove from `root`/`rel` what equals the base and add whiteouts for what the base has
    and the image lost. Returns whether the directory still holds anything."""
    directory = root / rel
    present = set(os.listdir(directory))
    for name in sorted(present):
        child_rel = f"{rel}/{name}" if rel else name
        path = directory / name
        st = os.lstat(path)
        found = base.lookup(child_rel)
        if found is None:
            continue  # new: kept whole
        bpath, bst = found
        if stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(bst.st_mode):
            kept = reduce_to_changes(root, base, child_rel)
            if not kept and stat.S_IMODE(st.st_mode) == stat.S_IMODE(bst.st_mode):
                os.rmdir(path)
        elif same_entry(path, st, bpath, bst):
            os.unlink(path)
    for name in sorted(base.listdir(rel) - present):
        os.mknod(directory / name, stat.S_IFCHR | 0o000, os.makedev(0, 0))  # overlayfs whiteout
    return bool(os.listdir(directory))


def base_tree_directories(context: Context) -> list[Path]:
    """BaseTrees= as directories: archives are unpacked into the workspace for the comparison."""
    directories = []
    for index, item in enumerate(context.config.base_trees):
        source = Path(item)
        if source.is_dir():
            directories.append(source)
            continue
        target = context.workspace / f"overlay-base-{index}"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        run(
            [
                "tar",
                "--extract",
                f"--file={source}",
                f"--directory={target}",
                "--same-owner",
                "--xattrs",
                "--xattrs-include=*",
                "--numeric-owner",
            ]
        )
        directories.append(target)
    return directories


class OverlayDiff(Step):
    name = "keep only changes to base trees"

    def skip(self, context):
        if not context.config.overlay:
            return "Overlay=no"
        if not context.config.base_trees:
            return "no BaseTrees= (everything is a change)"
        return None

    def inputs(self, context):
        return {}

    def run(self, context):
        reduce_to_changes(context.root, BaseView(base_tree_directories(context)))
