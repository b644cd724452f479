"""The last steps on the image: removals, SELinux labels, reproducibility clean-up, outputs."""

from __future__ import annotations

import glob
import os
import shutil

from kosi.config.values import Feature
from kosi.errors import KosiError
from kosi.installers.base import package_manager
from kosi.pipeline.step import ImageDependent, Step
from kosi.sandbox import run


def remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


class RemoveFiles(Step):
    name = "remove files"

    def skip(self, context):
        return None if context.config.remove_files else "RemoveFiles= is empty"

    def run(self, context):
        root = str(context.root)
        for pattern in context.config.remove_files:
            for match in glob.glob(root + "/" + pattern.lstrip("/"), recursive=True):
                if os.path.realpath(match).startswith(os.path.realpath(root) + "/"):
                    remove(match)


class SELinuxRelabel(Step):
    name = "SELinux relabel"

    def policy(self, context) -> str | None:
        config = context.root / "etc/selinux/config"
        if not config.is_file():
            return None
        for line in config.read_text().splitlines():
            if line.startswith("SELINUXTYPE="):
                return line.split("=", 1)[1].strip()
        return None

    def skip(self, context):
        mode = context.config.selinux_relabel
        if mode == Feature.disabled:
            return "SELinuxRelabel=no"
        if mode == Feature.auto and context.config.format == "directory":
            return "directory images are not relabelled with SELinuxRelabel=auto"
        if not shutil.which("setfiles"):
            return "setfiles is not installed"
        if self.policy(context) is None:
            return ImageDependent("no SELinux policy in the image")
        return None

    def run(self, context):
        policy = self.policy(context)
        contexts = context.root / "etc/selinux" / policy / "contexts/files/file_contexts"
        strict = context.config.selinux_relabel == Feature.enabled
        binary_policy = next((context.root / "etc/selinux" / policy / "policy").glob("policy.*"), "")
        result = run(
            ["setfiles", "-mFr", str(context.root), "-c", str(binary_policy), str(contexts), str(context.root)],
            check=False,
        )
        if strict and result.returncode != 0:
            raise KosiError(f"setfiles failed with exit status {result.returncode}")


# Files whose content records when (or on which machine) the build happened.
VOLATILE_FILES = (
    "var/cache/ldconfig/aux-cache",
    "var/lib/dbus/machine-id",
    "var/lib/systemd/random-seed",
    "var/lib/systemd/catalog/database",
    "etc/.pwd.lock",
    "var/lib/dpkg/lock", "var/lib/dpkg/lock-frontend", "var/lib/dpkg/triggers/Lock",
    "var/cache/debconf/config.dat-old", "var/cache/debconf/templates.dat-old",
    "var/lib/dpkg/status-old", "var/lib/dpkg/diversions-old",
    "etc/passwd-", "etc/group-", "etc/shadow-", "etc/gshadow-", "etc/subuid-", "etc/subgid-",
)  # fmt: skip


class Normalise(Step):
    """Leave no wall-clock or build-host traces: log files, caches keyed on time, lock files."""

    name = "normalise for reproducibility"

    def run(self, context):
        manager = package_manager(context)
        if manager is not None and hasattr(manager, "normalise_for_reproducibility"):
            manager.normalise_for_reproducibility(context)
        root = context.root
        for name in VOLATILE_FILES:
            remove(str(root / name))
        logs = root / "var/log"
        if logs.is_dir():
            for directory, _, files in os.walk(logs):
                for name in files:
                    os.unlink(os.path.join(directory, name))
        for stale in glob.glob(str(root / "var/cache/apt/*.bin")):
            os.unlink(stale)
        write_clock_epoch(context)


def write_clock_epoch(context) -> None:
    """/usr/lib/clock-epoch, as mkosi 27.1 leaves in every image: systemd never sets the clock
    earlier than its mtime (the build's SOURCE_DATE_EPOCH, else the build time)."""
    from kosi.outputs.base import source_date_epoch

    usr_lib = context.root / "usr/lib"
    if not usr_lib.is_dir():
        return
    epoch = source_date_epoch(context)
    path = usr_lib / "clock-epoch"
    if path.is_symlink():
        path.unlink()
    path.touch()
    path.chmod(0o644)
    if epoch is not None:
        os.utime(path, (epoch, epoch))


class WriteOutput(Step):
    name = "write output"

    def inputs(self, context):
        names = ("Format", "CompressOutput", "CompressLevel", "SplitArtifacts", "OciLabels", "OciAnnotations")
        return {n: context.config[n] for n in names}

    def run(self, context):
        from kosi.outputs.base import for_context
        from kosi.outputs.manifest import (
            installed_packages,
            manifest_formats,
            write_manifests,
        )
        from kosi.outputs.naming import output_format, output_link, output_name
        from kosi.outputs.publish import copy_nspawn_settings
        from kosi.outputs.split import write_split_artifacts, write_split_tar

        context.staging.mkdir(parents=True, exist_ok=True)
        if manifest_formats(context.config) and context.config.distribution != "custom":
            # as mkosi 27.1: no manifest without a package manager
            write_manifests(context, installed_packages(context))
        write_split_tar(context)  # before the output, which may move the tree away
        for_context(context).write()
        if output_format(context.config) != "none":
            write_split_artifacts(context, context.state.partitions, set(context.config.split_artifacts))
        link = output_link(context.config)
        if link:
            (context.staging / link).symlink_to(output_name(context.config))
        copy_nspawn_settings(context)


class Checksums(Step):
    name = "checksum outputs"

    def skip(self, context):
        return None if context.config.checksum else "Checksum=no"

    def run(self, context):
        from kosi.outputs.checksum import write_checksums

        write_checksums(context)


class SignChecksums(Step):
    name = "sign SHA256SUMS"

    def skip(self, context):
        return None if context.config.sign else "Sign=no"

    def inputs(self, context):
        return {"Sign": context.config.sign, "OpenPGPTool": context.config.openpgp_tool, "Key": context.config.key}

    def run(self, context):
        from kosi.outputs.checksum import sign_checksums
        from kosi.outputs.naming import base_name

        sums = context.staging / f"{base_name(context.config)}.SHA256SUMS"
        sign_checksums(context, sums if sums.exists() else None)
