"""Choosing, reusing and invalidating the tools tree."""

from __future__ import annotations

import json

from kosi.boot.policy import needs_boot_tools
from kosi.config.cli_args import Args
from kosi.config.model import Config, Project
from kosi.config.values import Feature
from kosi.tools import host
from kosi.tools import tree as tools_tree
from kosi.verbs import build


def project(**values) -> Project:
    return Project(images=[Config({"Distribution": "debian", "Release": "trixie", **values})])


def test_disk_build_on_old_host_wants_tools_tree():
    if (host.systemd_version("systemd-repart") or 0) >= host.MINIMUM_SYSTEMD:
        return  # this host can build disks itself; nothing to decide
    reason = host.host_shortcoming(Config({"Format": "disk"}))
    assert reason and "systemd-repart" in reason and "254" in reason


def test_directory_build_needs_no_tools_tree():
    assert host.host_shortcoming(Config({"Format": "directory", "Bootable": Feature.disabled})) is None


def test_bootable_follows_the_feature_and_format():
    assert needs_boot_tools(Config({"Format": "disk"}))  # unset: auto
    assert not needs_boot_tools(Config({"Format": "directory"}))
    assert needs_boot_tools(Config({"Format": "directory", "Bootable": Feature.enabled}))
    assert not needs_boot_tools(Config({"Format": "disk", "Bootable": Feature.disabled}))


def test_disk_build_does_not_pull_qemu():
    packages = tools_tree.tools_config(project(Format="disk"), "build").values["Packages"]
    assert "systemd-repart" in packages and "systemd-ukify" in packages and "systemd-boot-efi" in packages
    assert "qemu-system-x86" not in packages
    runtime = tools_tree.tools_config(project(Format="disk"), "vm").values["Packages"]
    assert "qemu-system-x86" in runtime and "ovmf" in runtime


def test_cached_tree_reused_until_inputs_change(tmp_path):
    config = tools_tree.tools_config(project(), "build")
    inputs = tools_tree.inputs_of(config)
    tree = tmp_path / "debian-trixie"
    assert tools_tree.cached_tree_usable(tree, inputs) == "no tools tree built yet"
    tree.mkdir()
    tree.with_name(tree.name + ".json").write_text(json.dumps(inputs))
    assert tools_tree.cached_tree_usable(tree, inputs) is None
    # a tree with qemu in it serves a plain build too
    runtime = tools_tree.inputs_of(tools_tree.tools_config(project(), "vm"))
    tree.with_name(tree.name + ".json").write_text(json.dumps(runtime))
    assert tools_tree.cached_tree_usable(tree, inputs) is None
    assert "release changed" in tools_tree.cached_tree_usable(tree, dict(inputs, release="forky"))
    assert "lacks" in tools_tree.cached_tree_usable(tree, dict(inputs, packages=[*inputs["packages"], "foo"]))


def test_explicit_tools_tree_path_is_used(tmp_path):
    args = Args(verb="build")
    assert build.ensure_tools_tree(project(ToolsTree=str(tmp_path)), args) == tmp_path
    assert build.ensure_tools_tree(project(ToolsTree="no", Format="disk"), args) is None


def test_mkosi_tools_conf_adds_packages_and_invalidates(tmp_path):
    from kosi.config.cli_args import parse_command_line
    from kosi.config.loader import load_project

    (tmp_path / "mkosi.conf").write_text("[Distribution]\nDistribution=debian\n\n[Output]\nFormat=disk\n")
    (tmp_path / "mkosi.tools.conf").write_text("[Content]\nPackages=hello\n")
    loaded = load_project(parse_command_line(["-C", str(tmp_path), "build"]))
    config = tools_tree.tools_config(loaded, "build")
    assert "hello" in config.values["Packages"] and "systemd-repart" in config.values["Packages"]
    assert config.values["Release"] == "trixie"
    plain = tools_tree.inputs_of(tools_tree.tools_config(project(Format="disk"), "build"))
    tree = tmp_path / "debian-trixie"
    tree.mkdir()
    tree.with_name(tree.name + ".json").write_text(json.dumps(plain))
    assert "lacks hello" in tools_tree.cached_tree_usable(tree, tools_tree.inputs_of(config))


def test_tools_tree_build_never_runs_the_projects_scripts(tmp_path, monkeypatch):
    """The tools tree is built from the project's directory settings, but the project's
    mkosi.postinst, mkosi.build, ... belong to the user's image (a real failure: the tools
    tree ran a postinst that copied a file only the user's image has)."""
    from kosi.scripts.execute import find_scripts

    for name in ("mkosi.postinst", "mkosi.build", "mkosi.finalize"):
        (tmp_path / name).write_text("#!/bin/sh\nexit 1\n")
        (tmp_path / name).chmod(0o755)
    monkeypatch.setattr(build, "cache_root", lambda: tmp_path / "cache")
    seen = {}
    monkeypatch.setattr(build, "build_image", lambda config, args, tools=None: seen.setdefault("config", config))
    config = Config(
        {"Distribution": "debian", "Release": "trixie", "Packages": ["systemd"]}, image="tools", directory=tmp_path
    )
    try:
        build.build_tree(config, tmp_path / "tree", Args())
    except Exception:  # no tree was really built; only the configuration handed on matters here
        pass
    built = seen["config"]
    assert all(find_scripts(built, kind) == [] for kind in ("postinst", "build", "finalize"))


def test_tools_tree_settings_apply_the_same_loaded_or_in_memory(tmp_path):
    """ToolsTree<Setting>= become the tree's <Setting>= in one place (the loader's
    tools_tree_config), whether the project was read from files or made in memory."""
    from kosi.config.cli_args import parse_command_line
    from kosi.config.loader import load_project

    settings = {
        "ToolsTreeRelease": "forky",
        "ToolsTreeMirror": "http://mirror.example/debian",
        "ToolsTreeRepositories": ["contrib"],
        "ToolsTreePackages": ["hello"],
    }
    (tmp_path / "mkosi.conf").write_text(
        "[Build]\nToolsTreeRelease=forky\nToolsTreeMirror=http://mirror.example/debian\n"
        "ToolsTreeRepositories=contrib\nToolsTreePackages=hello\n"
    )
    loaded = load_project(parse_command_line(["-C", str(tmp_path), "build"]))
    for configured in (loaded, project(**settings)):
        config = tools_tree.tools_config(configured, "build")
        assert config["Distribution"] == "debian" and config["Release"] == "forky"
        assert config["Mirror"] == "http://mirror.example/debian" and config["Repositories"] == ["contrib"]
        assert config["Packages"][0] == "hello" and config["Packages"].count("hello") == 1
        assert "systemd-repart" in config["Packages"] and config["Format"] == "directory"


def test_other_distributions_get_their_package_managers_in_a_tree_of_their_own():
    """As mkosi 27.1's Debian tools tree (testing's): every package manager kosi drives, built
    from sid (the newest distribution-gpg-keys and archlinux-keyring) with dnf5, in its own cache
    entry, so the plain trixie tree stays; ToolsTreeRelease=trixie gives trixie's, with dnf 4."""
    plain = tools_tree.tools_config(project(), "build")
    assert plain.values["_tools_tree_name"] == "debian-trixie"
    assert "zypper" not in plain.values["Packages"]
    for distribution in ("fedora", "arch", "opensuse", "centos"):
        config = tools_tree.tools_config(project(Distribution=distribution, Release=None), "build")
        assert config.values["Distribution"] == "debian" and config.values["Release"] == "sid"
        assert config.values["_tools_tree_name"] == "debian-sid+package-managers"
        packages = config.values["Packages"]
        for name in ("dnf5", "rpm", "zypper", "pacman-package-manager", "archlinux-keyring", "distribution-gpg-keys"):
            assert name in packages, (distribution, name)
        assert "dnf" not in packages
    trixie = tools_tree.tools_config(project(Distribution="fedora", Release="42", ToolsTreeRelease="trixie"), "build")
    assert trixie.values["_tools_tree_name"] == "debian-trixie+package-managers"
    assert "dnf" in trixie.values["Packages"] and "dnf5" not in trixie.values["Packages"]
    # a profile list without package-manager carries none of them, and stays on trixie
    bare = tools_tree.tools_config(project(Distribution="arch", Release=None, ToolsTreeProfiles=["runtime"]), "build")
    assert "pacman-package-manager" not in bare.values["Packages"] and bare.values["Release"] == "trixie"


def test_host_without_the_package_manager_wants_the_tools_tree(monkeypatch):
    present = {"dnf"}
    monkeypatch.setattr(host.shutil, "which", lambda name, path=None: f"/usr/bin/{name}" if name in present else None)
    monkeypatch.delenv("MKOSI_DNF", raising=False)
    directory = {"Format": "directory", "Bootable": Feature.disabled}
    assert host.host_shortcoming(Config({"Distribution": "fedora", **directory})) is None
    reason = host.host_shortcoming(Config({"Distribution": "opensuse", **directory}))
    assert reason == "Distribution=opensuse is installed with zypper, which the host lacks"
    present.clear()
    assert "dnf5 or dnf" in host.host_shortcoming(Config({"Distribution": "fedora", **directory}))
    monkeypatch.setenv("MKOSI_DNF", "/opt/dnf")
    assert host.host_shortcoming(Config({"Distribution": "fedora", **directory})) is None


def test_tools_tree_of_another_distribution_is_the_builtin_configuration(tmp_path):
    """ToolsTreeDistribution=fedora (no package table of kosi's): the tree is the built-in
    mkosi-tools configuration for Fedora, as `summary` shows it, and `plan` can name it; only
    building it needs Fedora's mirror."""
    from kosi.config.cli_args import parse_command_line
    from kosi.config.loader import load_project

    (tmp_path / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=debian\nRelease=trixie\n[Build]\nToolsTree=default\n"
        "ToolsTreeDistribution=fedora\nToolsTreeProfiles=package-manager\nToolsTreePackages=hello\n"
    )
    loaded = load_project(parse_command_line(["-C", str(tmp_path), "build"]))
    choice = tools_tree.choose_tools_tree(loaded, "build")
    assert choice.config is not None and choice.tree is not None and choice.tree.name == "fedora-rawhide"
    packages = choice.config["Packages"]
    assert {"dnf5", "systemd-ukify", "pacman", "hello"} <= set(packages) and "qemu-kvm-core" not in packages
    assert choice.config["Format"] == "directory" and choice.config["Bootable"] == Feature.disabled
