"""Steps that use the package manager: metadata sync, installs, the build overlay, removals.

The package manager itself (apt, ...) is the installer backend's business; these steps
only decide when to call which of its operations.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from kosi import log
from kosi.boot.steps import packages_installed_up_front
from kosi.config.values import Feature
from kosi.installers.base import package_manager, required_package_manager
from kosi.pipeline.cache import copy_tree, fingerprint_path
from kosi.pipeline.context import Context
from kosi.pipeline.layers import layered_skip
from kosi.pipeline.step import Step


def build_scripts_configured(context: Context) -> bool:
    from kosi.scripts.execute import find_scripts

    return bool(find_scripts(context.config, "build"))


def build_root(context: Context) -> Path:
    return context.workspace / "build-root"


def package_inputs(context: Context) -> dict[str, Any]:
    config = context.config
    return {
        "Distribution=": config.distribution,
        "Release=": config.release,
        "Architecture=": config.architecture,
        "Mirror=": config.mirror,
        "Snapshot=": config.snapshot,
        "LocalMirror=": config.local_mirror,
        "Repositories=": config.repositories,
        "Packages=": sorted(config.packages),
        "WithDocs=": config.with_docs,
        "WithRecommends=": config.with_recommends,
        "PackageDirectories=": {str(p): fingerprint_path(p) for p in config.package_directories},
    }


class SyncMetadata(Step):
    name = "sync repository metadata"

    def skip(self, context):
        if package_manager(context) is None:
            return "no package manager (Distribution=custom)"
        return None

    def run(self, context):
        manager = required_package_manager(context)
        manager.setup(context)
        cache_only = context.config.cache_only
        if cache_only in ("always", "metadata"):
            return  # CacheOnly= forbids refreshing the metadata
        if cache_only == "auto" and context.state.cached:
            return  # the cached image already has its packages
        manager.sync(context)


class MetadataSnapshot(Step):
    name = "copy repository metadata into image"

    def skip(self, context):
        return None if package_manager(context) else "no package manager"

    def run(self, context):
        required_package_manager(context).copy_metadata_into_image(context)


class InstallPackages(Step):
    name = "install distribution and packages"

    def skip(self, context):
        if package_manager(context) is None:
            return "no package manager (Distribution=custom)"
        layered = layered_skip(context.config)
        if layered and not context.config.base_trees:
            return layered.replace("does this", "is installed elsewhere (no BaseTrees=)")
        return None

    def inputs(self, context):
        inputs = package_inputs(context)
        if extra := packages_installed_up_front(context):
            inputs["boot loader packages"] = extra
        return inputs

    def run(self, context):
        packages = list(context.config.packages)
        if extra := packages_installed_up_front(context):
            log.info(f"Bootloader=systemd-boot-signed: installing {', '.join(extra)} with the packages")
            packages += extra
        required_package_manager(context).install(context, packages)


class InstallVolatilePackages(Step):
    """VolatilePackages= after the build scripts: outside the Incremental= cache, so a new
    version of them never invalidates it (manual: VolatilePackages=)."""

    name = "install volatile packages"

    def skip(self, context):
        if not context.config.volatile_packages:
            return "VolatilePackages= is empty"
        if package_manager(context) is None:
            return "no package manager (Distribution=custom)"
        return None

    def run(self, context):
        required_package_manager(context).install(context, context.config.volatile_packages)


class InstallBuildPackages(Step):
    """BuildPackages= go into a copy of the root that is thrown away after the build scripts:
    they never reach the final image."""

    name = "install build packages (overlay)"

    def skip(self, context):
        if not build_scripts_configured(context):
            return "no build scripts"
        return None

    def inputs(self, context):
        if not build_scripts_configured(context):
            return {}
        return {"BuildPackages=": sorted(context.config.build_packages)}

    def run(self, context):
        target = build_root(context)
        copy_tree(context.root, target)
        context.state.build_root = target
        packages = context.config.build_packages
        if packages:
            required_package_manager(context).install(context, packages, root=target)


class RemovePackages(Step):
    name = "remove packages"

    def skip(self, context):
        if not context.config.remove_packages:
            return "RemovePackages= is empty"
        if context.config.clean_package_metadata == Feature.disabled:  # the manual: skipped then
            return "CleanPackageMetadata=no"
        if package_manager(context) is None:
            return "no package manager"
        return None

    def run(self, context):
        required_package_manager(context).remove(context, context.config.remove_packages)


class CleanPackageMetadata(Step):
    name = "clean package metadata"

    def skip(self, context):
        if package_manager(context) is None:
            return "no package manager"
        if context.config.clean_package_metadata == Feature.disabled:
            return "CleanPackageMetadata=no"
        return None

    def run(self, context):
        required_package_manager(context).clean_metadata(context)


def discard_build_root(context: Context) -> None:
    target = build_root(context)
    if target.is_dir():
        shutil.rmtree(target)
    context.state.build_root = None
