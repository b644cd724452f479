"""The one table of settings. Parser, CLI, summary, --json, completion and docs read it.

Each entry follows the manual's section order. Defaults that depend on other settings
are functions of the Config (see defaults.py).
"""

from __future__ import annotations

from kosi.config.setting import MatchKind, Scope, Setting
from kosi.config.values import (
    Boolean,
    Choice,
    FeatureType,
    ListOf,
    PathValue,
    String,
    TreeValue,
)

DISTRIBUTIONS = (
    "fedora", "debian", "kali", "ubuntu", "arch", "opensuse", "mageia", "centos", "rhel",
    "rhel-ubi", "openmandriva", "rocky", "alma", "azure", "postmarketos", "custom",
)  # fmt: skip

FORMATS = (
    "directory", "tar", "cpio", "disk", "uki", "esp", "oci", "sysext", "confext", "portable", "addon", "none",
)  # fmt: skip

SETTINGS: list[Setting] = [
    # [Distribution]
    Setting("Distribution", "Distribution", Choice(*DISTRIBUTIONS), "Distribution to install",
            long="--distribution", short="-d", scope=Scope.universal, match=MatchKind.plain, specifier="d"),
    Setting("Release", "Distribution", String(), "Distribution release to install",
            long="--release", short="-r", scope=Scope.universal, match=MatchKind.plain, specifier="r"),
    # [Output]
    Setting("Format", "Output", Choice(*FORMATS), "Output format", default="disk",
            long="--format", short="-t", match=MatchKind.plain, specifier="t"),
    # [Content]
    Setting("Packages", "Content", ListOf(String()), "Packages to install",
            long="--package", short="-p"),
    Setting("ExtraTrees", "Content", ListOf(TreeValue(required=False)), "Trees copied into the image after packages",
            long="--extra-tree", paths=("mkosi.extra", "mkosi.extra.tar")),
    Setting("Bootable", "Content", FeatureType(), "Make the image bootable", default=None,
            long="--bootable", match=MatchKind.plain),
    Setting("WithDocs", "Content", Boolean(), "Install documentation", default=True, long="--with-docs"),
    # [Config]
    Setting("Profiles", "Config", ListOf(String()), "Profiles to select",
            long="--profile", scope=Scope.passed_down, match=MatchKind.plain),
    Setting("BuildSources", "Build", ListOf(TreeValue()), "Source trees mounted for scripts",
            long="--build-sources", scope=Scope.multiversal, match=MatchKind.plain),
    Setting("ToolsTree", "Build", PathValue(), "Tree to take tools from", long="--tools-tree",
            scope=Scope.universal, paths=("mkosi.tools",)),
]

SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
SETTINGS_BY_DEST: dict[str, Setting] = {s.dest: s for s in SETTINGS}
