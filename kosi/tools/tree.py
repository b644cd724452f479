"""The default tools tree: which tree an invocation uses, with which packages, and whether
the cached one serves. Deciding only: building it is kosi/verbs/build.py's.

ToolsTree= takes a path (use that tree), "default"/"yes" (build and cache kosi's own tree)
or is unset, in which case mkosi.tools/ is used when present and otherwise the default
tree is built only when the host's tools cannot do the configured work (for example
systemd-repart older than 254 for Format=disk); one line says why. The default tree is
built by kosi's own pipeline as a Format=directory image, installs only the profiles the
work needs (no qemu for a plain disk build), lives in the cache directory and is reused
until its inputs change (the inputs are stored next to it as JSON).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kosi import __version__, distributions, log
from kosi.config.model import Config, Project
from kosi.config.values import Feature
from kosi.errors import KosiError
from kosi.tools.host import host_shortcoming

#: verbs that start the image and so need the runtime profile (qemu, firmware, swtpm)
RUNTIME_VERBS = {"vm", "qemu", "boot", "shell", "ssh", "box", "sysupdate"}


def cache_root() -> Path:
    if os.getuid() == 0:
        return Path("/var/cache/kosi")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kosi"


def location() -> Path:
    return cache_root() / "tools"


def _explicit(config: Config, name: str) -> Any:
    """A value the user set; defaults derived from the host (its release) do not apply here."""
    return config[name] if config.is_set(name) else None


def profiles_for(project: Project, verb: str) -> list[str]:
    """The profiles to install: ToolsTreeProfiles= when set, else only what the work needs."""
    configured = _explicit(project.main, "ToolsTreeProfiles")
    if configured:
        return sorted(set(configured))
    profiles = {"package-manager"}
    if verb in RUNTIME_VERBS:
        profiles.add("runtime")
    return sorted(profiles)


def tools_config(project: Project, verb: str) -> Config:
    """The configuration of the default tools tree: what the user configured for it (the
    loader's tools_tree_config: ToolsTree<Setting>= and mkosi.tools.conf), with kosi's choices
    added: the distribution that builds the tree, its release, and the packages the work needs."""
    from kosi.config.loader import tools_tree_config

    main = project.main
    # Loaded from files: mkosi.tools.conf applies; a Config made in memory has no files to read.
    base = (
        project.tools.copy()
        if project.tools is not None
        else tools_tree_config(main, read_files=hasattr(main, "origins"))
    )
    named = str(base["Distribution"])
    # A distribution whose tools another one builds (Ubuntu's come from Debian) names it.
    distribution = distributions.get(named).tools_tree_distribution or named
    fallback = not distributions.get(distribution).tools_tree_packages and not _explicit(main, "ToolsTreeDistribution")
    if fallback:
        # kosi builds Debian tools trees only; their package-manager profile carries pacman, zypper, ...
        log.debug(f"tools tree: Debian's (kosi builds no {distribution} tools tree)")
        distribution = "debian"
    table = distributions.get(distribution).tools_tree_packages
    if not table:
        # No package table of kosi's own: the built-in mkosi-tools configuration (as `summary`
        # shows it, mkosi 27.1's packages for that distribution) is what gets built.
        config = tools_tree_config(main, read_files=hasattr(main, "origins"), builtin=True)
        config.values.update(Format="directory", Bootable=Feature.disabled)
        config.values["_tools_profiles"] = list(config.values.get("Profiles") or [])
        config.values["_tools_tree_name"] = f"{config['Distribution']}-{config['Release']}"
        return config
    profiles = profiles_for(project, verb)
    packages: list[str] = list(table["base"])
    for profile in profiles:
        packages += table.get(profile, ())
    release = _explicit(main, "ToolsTreeRelease") if distribution != named else base["Release"]
    # The host's release is usually what is too old; the default tree is the newest stable.
    tools = distributions.get(distribution)
    release = release or tools.default_release
    other = "package-manager" in profiles and needs_other_package_managers(distribution, main)
    if other and tools.package_managers_release and release == tools.default_release:
        if not _explicit(main, "ToolsTreeRelease"):  # the newest keys of the other distributions
            release = tools.package_managers_release
    name = f"{distribution}-{release}"
    if other:
        packages += tools.package_manager_tools(release)
        name += OTHER_PACKAGE_MANAGERS  # its own cache entry: the plain tree stays as it is
    values = dict(base.values)
    values.update(
        {
            "Distribution": distribution,
            "Release": release,
            "Format": "directory",
            "Packages": list(dict.fromkeys([*(values.get("Packages") or []), *packages])),
            "Bootable": Feature.disabled,
            "WithDocs": False,
        }
    )
    config = Config(values, image="tools", directory=base.directory)
    config.values["_tools_profiles"] = profiles
    config.values["_tools_tree_name"] = name
    return config


#: the suffix of a tools tree that carries the package managers of other distributions
OTHER_PACKAGE_MANAGERS = "+package-managers"


def needs_other_package_managers(tools_distribution: str, main: Config) -> bool:
    """An apt tools tree for an image built with dnf, pacman or zypper carries those (apk is
    not packaged for Debian: a postmarketOS build finds it on PATH or in a tree the user gives)."""
    tools = distributions.get(tools_distribution)
    image = distributions.get(str(main.distribution))
    return tools.package_manager == "apt" and image.package_manager in ("dnf", "pacman", "zypper")


def inputs_of(config: Config) -> dict[str, Any]:
    """What the tree is rebuilt for when it changes."""
    return {
        "kosi": __version__,
        "distribution": config.values["Distribution"],
        "release": config.values["Release"],
        "mirror": config.values.get("Mirror"),
        "packages": sorted(config.values["Packages"]),
        "repositories": config.values.get("Repositories"),
    }


def digest(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def cached_tree_usable(tree: Path, inputs: dict[str, Any]) -> str | None:
    """None when the cached tree can be reused, else why not. A tree built with more
    packages than needed is fine (it was built for a runtime verb earlier)."""
    stamp = tree.with_name(tree.name + ".json")
    if tree.is_dir() and not stamp.exists():
        return "it has no stamp: its last build was interrupted or failed"
    if not tree.is_dir() or not stamp.exists():
        return "no tools tree built yet"
    try:
        stored = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return "its record is unreadable"
    if not isinstance(stored, dict) or not isinstance(stored.get("packages", []), list):
        return "its record is garbled"
    for key in ("kosi", "distribution", "release", "mirror", "repositories"):
        if stored.get(key) != inputs.get(key):
            return f"{key} changed ({stored.get(key)} -> {inputs.get(key)})"
    missing = set(inputs["packages"]) - set(stored.get("packages", []))
    if missing:
        return f"it lacks {', '.join(sorted(missing)[:4])}{' ...' if len(missing) > 4 else ''}"
    return None


def helper_image_config(values: dict[str, Any], *, image: str, directory: Path) -> Config:
    """A Config for an image kosi builds for itself (tools tree, default initrd): unset list
    settings are empty lists, as the loader makes them for configured images."""
    from kosi.config.settings import SETTINGS

    filled: dict[str, Any] = {s.name: [] for s in SETTINGS if s.is_list}
    filled.update({k: v for k, v in values.items() if v is not None})
    return Config(filled, image=image, directory=directory)


@dataclass
class ToolsTreeChoice:
    """Which tools tree an invocation uses, and whether (and why) it must be built first."""

    tree: Path | None
    why_used: str | None = None  # why the default tree is used at all, when not asked for
    why_build: str | None = None  # why it must be (re)built, None when the cached one serves
    config: Config | None = None
    inputs: dict[str, Any] | None = None


def choose_tools_tree(project: Project, verb: str, force: int = 0) -> ToolsTreeChoice:
    """Decide without side effects (`kosi plan` shows this; ensure_tools_tree acts on it)."""
    main = project.main
    text = str(main.tools_tree) if main.tools_tree is not None else None
    if text and text not in ("default", "yes", "no"):
        tree = Path(text)
        if not tree.is_dir():
            raise KosiError(f"ToolsTree={text}: no such directory", hint="give a directory, 'default' or 'no'")
        return ToolsTreeChoice(tree)
    if text == "no":
        return ToolsTreeChoice(None)
    why_used = None
    if text is None:
        local = main.directory / "mkosi.tools"
        if local.is_dir():
            return ToolsTreeChoice(local)
        why_used = host_shortcoming(main, verb)
        if why_used is None:
            return ToolsTreeChoice(None)
    config = tools_config(project, verb)
    inputs = inputs_of(config)
    tree = location() / config.values["_tools_tree_name"]
    why_build = cached_tree_usable(tree, inputs)
    if why_build is None and force >= 3:
        why_build = "forced with -fff"
    return ToolsTreeChoice(tree, why_used, why_build, config, inputs)
