"""Shared helpers for the configuration tests.

The settings table (kosi/config/settings.py) is filled by another piece of work; until it
holds every setting these tests use, `table` adds the missing ones for the duration of a
test, with the scope/match/specifier the manual gives them. Entries already in the real
table are never replaced, so once the table is complete this adds nothing.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kosi.config import settings as settings_module
from kosi.config.setting import MatchKind, Scope, Setting
from kosi.config.values import Assignments, ListOf, PathValue, String

DATA = Path(__file__).parent / "data"


def _missing_settings() -> list[Setting]:
    wanted = [
        Setting("Architecture", "Distribution", String(), "Architecture", long="--architecture",
                scope=Scope.universal, match=MatchKind.plain, specifier="a"),
        Setting("Repositories", "Distribution", ListOf(String()), "Repositories", long="--repositories",
                scope=Scope.universal, match=MatchKind.plain),
        Setting("Output", "Output", String(), "Output name", long="--output", short="-o", specifier="o"),
        Setting("OutputDirectory", "Output", PathValue(required=False), "Output directory",
                long="--output-directory", short="-O", scope=Scope.universal, specifier="O"),
        Setting("ImageId", "Output", String(), "Image id", long="--image-id", scope=Scope.passed_down,
                match=MatchKind.glob, specifier="i"),
        Setting("ImageVersion", "Output", String(), "Image version", long="--image-version",
                scope=Scope.passed_down, match=MatchKind.version, specifier="v",
                paths=("mkosi.version",), path_read=True),
        Setting("Environment", "Content", Assignments(), "Environment", long="--environment", match=MatchKind.plain),
        Setting("RootPassword", "Content", String(), "Root password", long="--root-password",
                paths=("mkosi.rootpw",), path_read=True),
        Setting("CacheKey", "Build", String(), "Cache key", long="--cache-key", scope=Scope.passed_down,
                default="&d~&r~&a~&I"),
        Setting("Include", "Include", ListOf(PathValue()), "Include", long="--include", short="-I"),
        Setting("Dependencies", "Config", ListOf(String()), "Dependencies", long="--dependency"),
        Setting("MinimumVersion", "Config", String(), "Minimum version", long="--minimum-version",
                scope=Scope.main_only),
        Setting("PassEnvironment", "Config", ListOf(String()), "Pass environment", long="--pass-environment",
                scope=Scope.main_only),
        Setting("ToolsTreeDistribution", "Build", String(), "Tools tree distribution",
                long="--tools-tree-distribution", scope=Scope.main_only, match=MatchKind.plain),
        Setting("ToolsTreeRelease", "Build", String(), "Tools tree release", long="--tools-tree-release",
                scope=Scope.main_only, match=MatchKind.plain),
        Setting("ToolsTreePackages", "Build", ListOf(String()), "Tools tree packages",
                long="--tools-tree-package", scope=Scope.main_only),
        Setting("SecureBootKey", "Validation", PathValue(), "Secure Boot key", long="--secure-boot-key",
                scope=Scope.universal),
    ]  # fmt: skip
    return [s for s in wanted if s.name not in settings_module.SETTINGS_BY_NAME]


@pytest.fixture(autouse=True)
def table(monkeypatch):
    extra = _missing_settings()
    if extra:
        monkeypatch.setattr(settings_module, "SETTINGS", settings_module.SETTINGS + extra)
        monkeypatch.setattr(settings_module, "SETTINGS_BY_NAME", {**settings_module.SETTINGS_BY_NAME, **{s.name: s for s in extra}})
        monkeypatch.setattr(settings_module, "SETTINGS_BY_DEST", {**settings_module.SETTINGS_BY_DEST, **{s.dest: s for s in extra}})
    return settings_module


def write(root: Path, files: dict[str, str]) -> Path:
    """Create a project from {relative path: content}; content is dedented."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content).lstrip("\n"))
    return root


@pytest.fixture
def project(tmp_path):
    def make(files: dict[str, str]) -> Path:
        return write(tmp_path / "proj", files)

    return make


def load(directory: Path, *argv: str):
    from kosi.config.cli_args import parse_command_line
    from kosi.config.loader import load_project

    args = parse_command_line(["-C", str(directory), *argv])
    return load_project(args)


def main_config(directory: Path, *argv: str):
    return load(directory, *argv).main
