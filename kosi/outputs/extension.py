"""Format=sysext, confext and portable: discoverable disk images for systemd-sysext,
systemd-confext and portablectl, written by systemd-repart.

One erofs root partition (Type=root, with the architecture's GUID) holds /usr and /opt
(sysext), /etc (confext) or the whole tree (portable). With verity (Verity=signed, hash,
defer, or auto with VerityKey=/VerityCertificate=) the partition gets its verity hash
partition and, unless Verity=hash, its signature partition, as mkosi 27.1's definitions
lay them out. What an extension adds outside its directories would silently be lost, so
such a file is an error naming it; the package manager's own records (dpkg database,
caches, logs) are the exception: they describe the base, not the extension.
"""

from __future__ import annotations

import os
import shutil
from typing import ClassVar

from kosi.errors import KosiError
from kosi.outputs.base import OutputFormat
from kosi.outputs.disk import run_repart
from kosi.pipeline.layers import BaseView, base_tree_directories

#: state a package manager keeps about the base system; it never belongs to an extension
BOOKKEEPING = (
    "var/lib/dpkg/",
    "var/lib/apt/",
    "var/cache/",
    "var/log/",
    "var/lib/rpm/",
    "var/lib/pacman/",
    "var/lib/dnf/",
    "var/lib/zypp/",
    "var/lib/systemd/",
    "etc/ld.so.cache",
    "usr/lib/sysimage/rpm/",
)


def verity_wanted(config) -> bool:
    """Verity partitions at all: not with Verity=no, nor with auto when no key is there."""
    if config.verity == "disabled":
        return False
    if config.verity == "auto":
        return bool(config.verity_key and config.verity_certificate)
    return True


def definitions(copy: list[str], verity: bool) -> dict[str, str]:
    root = ["[Partition]", "Type=root", "Format=erofs", *(f"CopyFiles=/{d}" for d in copy)]
    if not verity:
        return {"10-root.conf": "\n".join([*root, "Minimize=best"]) + "\n"}
    return {
        "10-root.conf": "\n".join([*root, "Verity=data", "VerityMatchKey=root", "Minimize=best"]) + "\n",
        "20-root-verity.conf": "[Partition]\nType=root-verity\nVerity=hash\nVerityMatchKey=root\nMinimize=best\n",
        "30-root-verity-sig.conf": "[Partition]\nType=root-verity-sig\nVerity=signature\nVerityMatchKey=root\n",
    }


class ExtensionImage(OutputFormat):
    extension = "raw"
    can_boot = False
    needs_repart = True
    extension_image = True
    compresses_output = True
    #: directories (relative to /) the image consists of; empty: the whole tree
    directories: ClassVar[tuple[str, ...]] = ()

    def added_paths(self) -> list[str]:
        """Files (not directories) this image adds: everything with Overlay=yes or without
        BaseTrees=, else what the base trees do not have."""
        root = self.context.root
        config = self.config
        base = BaseView(base_tree_directories(self.context)) if config.base_trees and not config.overlay else None
        added = []
        for directory, dirs, files in os.walk(root):
            rel_dir = os.path.relpath(directory, root)
            rel_dir = "" if rel_dir == "." else rel_dir + "/"
            for name in files + [d for d in dirs if os.path.islink(os.path.join(directory, d))]:
                rel = rel_dir + name
                if base is None or base.lookup(rel) is None:
                    added.append(rel)
        return sorted(added)

    def check_content(self) -> None:
        if not self.directories:
            return
        allowed = tuple(f"{d}/" for d in self.directories)
        for rel in self.added_paths():
            if rel.startswith(allowed) or rel.startswith(BOOKKEEPING) or f"{rel}/" in BOOKKEEPING:
                continue
            where = " and ".join(f"/{d}" for d in self.directories)
            raise KosiError(
                f"Format={self.name}: /{rel} is outside {where}, which is all a {self.name} image holds",
                hint="move it, or drop it with RemoveFiles=",
            )

    def write(self) -> None:
        self.check_content()
        root = self.context.root
        copy = [f"{d}/" for d in self.directories if (root / d).is_dir()] if self.directories else [""]
        directory = self.context.workspace / f"{self.name}-definitions"
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        for name, text in definitions(copy, verity_wanted(self.config)).items():
            (directory / name).write_text(text)
        wanted = set(self.config.split_artifacts)
        table = run_repart(self.context, self.target, split="partitions" in wanted, definitions=[directory])
        if not any(p.get("type", "").startswith("root-") for p in table):
            raise KosiError(f"Format={self.name}: systemd-repart wrote no root partition")


class SysextOutput(ExtensionImage):
    name = "sysext"
    directories = ("usr", "opt")
    layered_on_system = True
    extension_release = ("SYSEXT", "usr/lib")


class ConfextOutput(ExtensionImage):
    name = "confext"
    directories = ("etc",)
    layered_on_system = True
    extension_release = ("CONFEXT", "etc")


class PortableOutput(ExtensionImage):
    name = "portable"
    directories = ()
    portable_service = True

    def write(self) -> None:
        if (
            not (self.context.root / "usr/lib/os-release").exists()
            and not (self.context.root / "etc/os-release").exists()
        ):
            raise KosiError(
                "Format=portable: the image has no os-release, which portablectl requires",
                hint="build it on a distribution, or add usr/lib/os-release with ExtraTrees=",
            )
        super().write()
