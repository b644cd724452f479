"""Precedence, directories, drop-ins, profiles, Include=, default paths and parse errors."""

import os

import pytest

from config_helpers import DATA, load, main_config
from kosi.config.loader import load_project
from kosi.config.cli_args import parse_command_line
from kosi.config.parser import parse_ini_text
from kosi.config.values import Feature
from kosi.errors import KosiError


def pkgs(root, *argv):
    return main_config(root, *argv).packages or []


def test_ini_parser_keeps_lines_and_continuations():
    sections = parse_ini_text("# c\n[Content]\n  # c\nPackages=a\n  b\n\tc\nEnvironment=X=1=2\n", "f")
    (content,) = sections
    assert [(e.key, e.value, e.line) for e in content.entries] == [
        ("Packages", "a\nb\nc", 4),
        ("Environment", "X=1=2", 7),
    ]


@pytest.mark.parametrize(
    "line,value",
    [("Incremental=yes  # saves time", "yes"), ("Incremental=yes# x", "yes"), ("Incremental=#yes", ""),
     ("Incremental=y;es", "y;es")],
)  # fmt: skip
def test_hash_starts_a_comment_anywhere_as_in_mkosi(line, value):
    (section,) = parse_ini_text(f"[Build] # c\n{line}\n", "f")
    assert [(e.key, e.value) for e in section.entries] == [("Incremental", value)]


def test_semicolon_starts_no_comment_as_in_mkosi():
    with pytest.raises(KosiError, match="f:2: expected Key=Value"):
        parse_ini_text("[Build]\n; a comment in other ini dialects\n", "f")


@pytest.mark.parametrize("text,line", [("[Content]\nPackages\n", 2), ("Packages=a\n", 1), ("[Content\n", 1)])
def test_ini_parser_errors_name_file_and_line(text, line):
    with pytest.raises(KosiError) as e:
        parse_ini_text(text, "x.conf")
    assert str(e.value).startswith(f"x.conf:{line}:")


def test_line_without_equals_in_project(project):
    root = project({"mkosi.conf": "[Content]\nPackages=a\nvim\n"})
    with pytest.raises(KosiError, match=r"mkosi.conf:3:"):
        main_config(root)


def test_bad_value_names_file_line_and_setting(project):
    root = project({"mkosi.conf": "[Output]\nFormat=floppy\n"})
    with pytest.raises(KosiError, match=r"mkosi.conf:2: Format=: invalid value 'floppy'"):
        main_config(root)


def test_unknown_setting_and_section_only_warn(project, capsys):
    root = project({"mkosi.conf": "[Content]\nPackage=vim\nPackages=git\n[Contnet]\nX=1\n"})
    assert pkgs(root) == ["git"]
    err = capsys.readouterr().err
    assert "mkosi.conf:2" in err and "did you mean Packages" in err
    assert "mkosi.conf:4" in err and "did you mean Content" in err


def test_older_names_apply_with_a_warning_as_in_mkosi(project, capsys):
    root = project({"mkosi.conf": "[Content]\nBuildScript=b.sh\nKernelModulesInclude=x\n[Runtime]\nQemuSmp=3\n"})
    (root / "b.sh").write_text("#!/bin/sh\n")
    config = main_config(root)
    assert config.build_scripts == [root / "b.sh"] and config.cpus == 3
    err = capsys.readouterr().err
    assert "mkosi.conf:2: BuildScript= is deprecated, write BuildScripts= instead" in err
    assert "mkosi.conf:5: QemuSmp= is deprecated, write CPUs= instead" in err
    assert "KernelModulesInclude" not in err  # mkosi 27.1 still reads it as a name of its own


def test_single_values_last_wins_empty_resets_cli_wins(project):
    root = project({
        "mkosi.conf": "[Output]\nFormat=tar\n",
        "mkosi.conf.d/10.conf": "[Output]\nFormat=cpio\n",
        "mkosi.conf.d/20.conf": "[Content]\nWithDocs=no\n",
        "mkosi.conf.d/30.conf": "[Content]\nWithDocs=\n",
    })  # fmt: skip
    config = main_config(root)
    assert config.format == "cpio"
    assert config.with_docs is True  # reset to the default
    assert main_config(root, "-t", "directory").format == "directory"
    assert main_config(root, "--format=").format == "disk"  # the CLI's reset beats the files


def test_lists_append_clear_and_cli_comes_last(project):
    root = project({
        "mkosi.conf": "[Content]\nPackages=a b,c\n",
        "mkosi.conf.d/10.conf": "[Content]\nPackages=\nPackages=d\n",
        "mkosi.conf.d/20.conf": "[Content]\nPackages=e\n",
    })  # fmt: skip
    assert pkgs(root) == ["d", "e"]
    assert pkgs(root, "-p", "x", "--package=y") == ["d", "e", "x", "y"]
    assert pkgs(root, "--package=", "-p", "z") == ["z"]


def test_local_config_overrides_later_files_but_not_cli(project):
    root = project({
        "mkosi.local.conf": "[Output]\nFormat=tar\n[Content]\nPackages=local\n",
        "mkosi.local/mkosi.conf": "[Content]\nPackages=local-dir\n",
        "mkosi.conf": "[Output]\nFormat=cpio\n[Content]\nPackages=conf\n",
    })  # fmt: skip
    config = main_config(root)
    assert config.format == "tar"
    assert config.packages == ["conf", "local", "local-dir"]
    assert main_config(root, "-t", "directory").format == "directory"
    # read in this order, listed as mkosi 27.1 lists them: mkosi.local/ first
    assert main_config(root).files[:2] == [root / "mkosi.local/mkosi.conf", root / "mkosi.local.conf"]


def test_local_match_applies_to_the_file_only(project):
    root = project({
        "mkosi.local.conf": "[Match]\nDistribution=fedora\n[Content]\nPackages=local\n",
        "mkosi.conf": "[Distribution]\nDistribution=debian\n[Content]\nPackages=conf\n",
    })  # fmt: skip
    assert pkgs(root, "-d", "debian") == ["conf"]


def test_dropins_sorted_files_and_directories(project):
    root = project({
        "mkosi.conf.d/20-b.conf": "[Content]\nPackages=b\n",
        "mkosi.conf.d/10-a/mkosi.conf": "[Content]\nPackages=a\n",
        "mkosi.conf.d/10-a/mkosi.conf.d/x.conf": "[Content]\nPackages=a-x\n",
        "mkosi.conf.d/30-c.txt": "[Content]\nPackages=ignored\n",
        "mkosi.conf.d/40-d/mkosi.images/x.conf": "[Content]\nPackages=not-an-image\n",
    })  # fmt: skip
    project_ = load(root)
    assert project_.main.packages == ["a", "a-x", "b"]
    assert len(project_.images) == 1  # mkosi.images/ only counts at the top


def test_mkosi_subdirectory_is_used_without_top_level_config(project):
    root = project({"mkosi/mkosi.conf": "[Content]\nPackages=sub\n"})
    assert pkgs(root) == ["sub"]


def test_empty_directory_option_ignores_configuration(project, monkeypatch):
    root = project({"mkosi.conf": "[Content]\nPackages=x\n"})
    monkeypatch.chdir(root)
    assert load_project(parse_command_line(["-C", "", "-p", "cli"])).main.packages == ["cli"]
    assert load_project(parse_command_line([])).main.packages == ["x"]


def test_default_paths_are_picked_up_per_directory(project):
    root = project({
        "mkosi.extra/f": "x", "mkosi.conf.d/sub/mkosi.extra/g": "y",
        "mkosi.conf.d/sub/mkosi.conf": "[Content]\nWithDocs=no\n",
    })  # fmt: skip
    trees = main_config(root).extra_trees
    assert [t.source for t in trees] == [root / "mkosi.extra", root / "mkosi.conf.d/sub/mkosi.extra"]


def test_list_settings_take_every_default_path_present(project):
    root = project({"mkosi.build": "#!/bin/sh\n", "mkosi.build.d/10-more.sh": "#!/bin/sh\n", "mkosi.key": "k"})
    (root / "mkosi.key").chmod(0o600)
    scripts = [str(p) for p in main_config(root).build_scripts]
    # as mkosi 27.1: a .d directory stands for its files, in order
    assert scripts == [str(root / "mkosi.build"), str(root / "mkosi.build.d/10-more.sh")]
    assert str(main_config(root).secure_boot_key) == str(root / "mkosi.key")  # a single value takes one


def test_profiles_after_dropins_and_undefined_profile_accepted(project):
    root = project({
        "mkosi.conf": "[Config]\nProfiles=p1\n",
        "mkosi.conf.d/10.conf": "[Content]\nPackages=dropin\n",
        "mkosi.profiles/p1.conf": "[Content]\nPackages=p1\n",
        "mkosi.profiles/p2/mkosi.conf": "[Content]\nPackages=p2\n",
    })  # fmt: skip
    assert pkgs(root) == ["dropin", "p1"]
    assert pkgs(root, "--profile", "p2,nothing-here") == ["dropin", "p1", "p2"]


def test_include_is_immediate_relative_and_once(project):
    root = project({
        "mkosi.conf": "[Content]\nKernelCommandLine=before\n[Include]\nInclude=inc/one.conf\n[Content]\nKernelCommandLine=after\n",
        # relative to the directory being parsed (%P, mkosi 27.1), not to the including file
        "inc/one.conf": "[Content]\nKernelCommandLine=one\n[Include]\nInclude=inc/two\n",
        "inc/two/mkosi.conf": "[Content]\nKernelCommandLine=two\n[Include]\nInclude=../one.conf\n",
        "cli.conf": "[Content]\nKernelCommandLine=cli-include\n",
    })  # fmt: skip
    assert main_config(root).kernel_command_line == ["before", "one", "two", "after"]
    with_cli = main_config(root, "-I", str(root / "cli.conf")).kernel_command_line
    assert with_cli == ["cli-include", "before", "one", "two", "after"]


def test_missing_include_target_is_an_error(project):
    root = project({"mkosi.conf": "[Include]\nInclude=nope.conf\n"})
    with pytest.raises(KosiError, match=r"mkosi.conf:2: Include=: .*nope.conf does not exist"):
        main_config(root)


def test_relative_paths(project, tmp_path, monkeypatch):
    # as mkosi 27.1: relative to the directory of the mkosi.conf being parsed (%P), and on the
    # command line to --directory
    root = project(
        {"mkosi.conf.d/a.conf": "[Content]\nExtraTrees=tree\n", "tree/f": "", "t/f": "", "elsewhere/t/f": ""}
    )
    monkeypatch.chdir(root / "elsewhere")
    config = main_config(root, "--extra-tree", "t")
    assert [t.source for t in config.extra_trees] == [root / "tree", root / "t"]


def test_minimum_version(project):
    root = project({"mkosi.conf": "[Config]\nMinimumVersion=1\nMinimumVersion=5\nMinimumVersion=2\n"})
    assert main_config(root).minimum_version == "5"
    too_new = project({"mkosi.conf": "[Config]\nMinimumVersion=999\n"})
    with pytest.raises(KosiError, match=r"mkosi.conf:2: MinimumVersion=999 is newer than mkosi 27.1"):
        main_config(too_new)
    # configurations name mkosi's versions: what mkosi 27.1 builds, kosi builds
    assert main_config(project({"mkosi.conf": "[Config]\nMinimumVersion=27.1\n"})).minimum_version == "27.1"


def test_executable_version_and_rootpw_scripts(project):
    root = project({"mkosi.version": "#!/bin/sh\necho 7.$((1+1))\n", "mkosi.rootpw": "#!/bin/sh\necho secret\n"})
    os.chmod(root / "mkosi.version", 0o755)
    os.chmod(root / "mkosi.rootpw", 0o700)
    config = main_config(root)
    assert config.image_version == "7.2"
    assert config.root_password == "secret"


def test_plain_version_file(project):
    root = project({"mkosi.version": "1.0\n"})
    assert main_config(root).image_version == "1.0"


@pytest.mark.parametrize("name,setting", [("mkosi.rootpw", None), ("mkosi.key", "SecureBootKey")])
def test_readable_secret_files_are_refused(project, name, setting):
    files = {name: "s3cret\n"}
    if setting:
        files["mkosi.conf"] = f"[Validation]\n{setting}={name}\n"
    root = project(files)
    os.chmod(root / name, 0o644)
    with pytest.raises(KosiError, match=r"readable by others.*chmod 600"):
        main_config(root)
    os.chmod(root / name, 0o600)
    main_config(root)


def test_fixture_project_loads():
    project_ = load(DATA / "multi")
    assert [c.image for c in project_.images] == ["base", "app", "main"]
    main = project_.main
    assert main.output == "demo_1.2.3"
    # sorted, as mkosi 27.1 sorts the packages the configuration files name
    assert main.packages == sorted(["systemd", "udev", "less", "apt", f"marker-{DATA / 'multi/mkosi.conf.d/30-dir'}"])
    assert main.files[0] == DATA / "multi/mkosi.conf"
    assert "gdb" in load(DATA / "multi", "--profile", "dev").main.packages


def test_arguments_after_double_dash(project):
    root = project({"mkosi.conf": ""})
    assert load(root, "build", "--", "-x", "y").main.arguments == ["-x", "y"]


def test_builtin_include_is_kosis_own_configuration(project):
    """Include=mkosi-tools, mkosi-vm, mkosi-initrd and mkosi-addon read kosi/resources (tests/compat proves the
    summaries equal mkosi 27.1's); a directory of that name in the project still wins."""
    tools = main_config(
        project({"mkosi.conf": "[Distribution]\nDistribution=fedora\n[Include]\nInclude=mkosi-tools\n"})
    )
    assert "dnf5" in tools.packages and "systemd-ukify" in tools.packages and "apt" not in tools.packages
    assert str(tools["Output"]) == "mkosi.tools"
    assert any("resources/mkosi-tools" in str(f) for f in tools.files)
    addon = main_config(project({"mkosi.conf": "[Include]\nInclude=mkosi-addon\n"}))
    assert str(addon["Format"]) == "addon" and str(addon["Distribution"]) == "custom"
    vm = main_config(project({"mkosi.conf": "[Distribution]\nDistribution=debian\n[Include]\nInclude=mkosi-vm\n"}))
    assert vm["Bootable"] == Feature.enabled and "linux-image-generic" in vm.packages
    initrd = main_config(
        project(
            {
                "mkosi.conf": "[Distribution]\nDistribution=arch\n[Config]\nProfiles=lvm\n[Include]\nInclude=mkosi-initrd\n"
            }
        )
    )
    assert initrd["MakeInitrd"] is True and "lvm2" in initrd.packages and "ahci" in initrd["KernelModules"]
    local = project(
        {"mkosi.conf": "[Include]\nInclude=mkosi-tools\n", "mkosi-tools/mkosi.conf": "[Content]\nPackages=own\n"}
    )
    assert main_config(local).packages == ["own"]


def test_mkosi_obs_include_is_refused_in_one_line(project):
    name = "mkosi-obs"
    root = project({"mkosi.conf": f"[Include]\nInclude={name}\n"})
    with pytest.raises(KosiError, match=rf"mkosi.conf:2: Include={name}: kosi does not ship mkosi's built-in"):
        main_config(root)
    local = project({"mkosi.conf": f"[Include]\nInclude={name}\n", f"{name}/mkosi.conf": "[Content]\nPackages=own\n"})
    assert main_config(local).packages == ["own"]
