"""Every matcher of the manual's table, negation, triggering, and the section rules."""

from pathlib import Path

import pytest

from config_helpers import main_config
from kosi.config.match import host_systemd_version
from kosi.config.specifiers import host_architecture, host_distribution
from kosi.errors import KosiError

HOST_ID, HOST_RELEASE = host_distribution()
ARCH = host_architecture()
SYSTEMD = host_systemd_version()

# (settings in mkosi.conf, condition in the drop-in's [Match], whether it matches)
CASES = [
    ("[Config]\nProfiles=a,b", "Profiles=b", True),
    ("[Config]\nProfiles=a", "Profiles=c", False),
    ("", "Profiles=a", False),  # unset: match fails
    ("[Distribution]\nDistribution=fedora", "Distribution=fedora", True),
    ("[Distribution]\nDistribution=fedora", "Distribution=debian", False),
    ("", f"Distribution={HOST_ID}", True),  # unset: the host's
    ("", f"Release={HOST_RELEASE}", True),
    ("[Distribution]\nDistribution=fedora\nRelease=40", "Release=40", True),
    ("[Distribution]\nDistribution=fedora\nRelease=40", "Release=41", False),
    ("", f"Architecture={ARCH}", True),
    ("[Distribution]\nArchitecture=arm64", "Architecture=arm64", True),
    ("[Distribution]\nArchitecture=arm64", "Architecture=uefi", True),
    ("[Distribution]\nArchitecture=s390x", "Architecture=uefi", False),
    ("[Distribution]\nRepositories=main,contrib", "Repositories=contrib", True),
    ("[Distribution]\nRepositories=main", "Repositories=non-free", False),
    ("", "PathExists=50-drop.conf", False),  # relative to the mkosi.conf's directory (mkosi 27.1), not the file's
    ("", "PathExists=mkosi.conf", True),
    ("", "PathExists=mkosi.conf.d/50-drop.conf", True),
    ("", "PathExists=", False),
    ("", "PathExists=/nonexistent/x", False),
    ("[Output]\nImageId=web-server", "ImageId=web-*", True),
    ("[Output]\nImageId=db", "ImageId=web-*", False),
    ("", "ImageId=*", False),  # unset: match fails
    ("[Output]\nImageVersion=1.10", "ImageVersion=>=1.9", True),
    ("[Output]\nImageVersion=1.10", "ImageVersion=<1.9", False),
    ("[Output]\nImageVersion=2", "ImageVersion=2", True),
    ("", "ImageVersion=!=0", False),  # unset: fails, `!=` is the operator, not a negation
    ("[Output]\nImageVersion=1", "ImageVersion=!=0", True),
    ("[Output]\nImageVersion=1", "ImageVersion=!1", False),
    ("", "Bootable=auto", True),  # unset: the auto feature
    ("[Content]\nBootable=yes", "Bootable=true", True),
    ("[Content]\nBootable=no", "Bootable=yes", False),
    ("", "Format=disk", True),  # unset: the default format
    ("[Output]\nFormat=tar", "Format=disk", False),
    ("", f"SystemdVersion=>={SYSTEMD}", True),
    ("", f"SystemdVersion=<{SYSTEMD}", False),
    ("[Build]\nBuildSources=..:kernel", "BuildSources=kernel", True),
    ("[Build]\nBuildSources=..:kernel", "BuildSources=/kernel", True),
    ("[Build]\nBuildSources=..:other", "BuildSources=kernel", False),
    ("", "BuildSources=kernel", False),
    ("", f"HostArchitecture={ARCH}", True),
    ("", "HostArchitecture=alpha", False),
    ("", "ToolsTreeDistribution=debian", True),  # fallback tools tree distribution for a debian host
    ("[Distribution]\nDistribution=ubuntu", "ToolsTreeDistribution=debian", True),
    ("[Distribution]\nDistribution=fedora", "ToolsTreeDistribution=fedora", False),  # the host's (mkosi 27.1)
    ("[Distribution]\nDistribution=fedora", "ToolsTreeDistribution=debian", True),
    ("[Build]\nToolsTreeDistribution=arch", "ToolsTreeDistribution=arch", True),
    ("", "ToolsTreeRelease=trixie", True),  # default release of the fallback (debian)
    ("[Build]\nToolsTreeRelease=sid", "ToolsTreeRelease=sid", True),
    ("[Content]\nEnvironment=A=1 B=2", "Environment=B=2", True),
    ("[Content]\nEnvironment=A=1", "Environment=A=2", False),
    ("[Content]\nEnvironment=A=1", "Environment=A", True),
    ("", "Environment=A", False),
    ("", "Image=main", True),
    ("", "Image=other", False),
]


@pytest.mark.parametrize("settings,condition,matches", CASES, ids=[c[1] + ("" if c[2] else " (no)") for c in CASES])
def test_each_matcher(project, settings, condition, matches):
    if condition.startswith(("Distribution=", "Release=", "ToolsTree")) and "=" not in settings and HOST_ID != "debian":
        pytest.skip("expects a Debian host")
    root = project({
        "mkosi.conf": settings + "\n",
        "mkosi.conf.d/50-drop.conf": f"[Match]\n{condition}\n\n[Content]\nPackages=matched\n",
    })  # fmt: skip
    assert ("matched" in (main_config(root).packages or [])) is matches


@pytest.mark.parametrize("condition,matches", [("!fedora", True), ("!debian", False)])
def test_negation(project, condition, matches):
    root = project({
        "mkosi.conf": "[Distribution]\nDistribution=debian\n",
        "mkosi.conf.d/a.conf": f"[Match]\nDistribution={condition}\n[Content]\nPackages=matched\n",
    })  # fmt: skip
    assert ("matched" in (main_config(root).packages or [])) is matches


@pytest.mark.parametrize(
    "conditions,matches",
    [
        ("Distribution=|fedora\nDistribution=|debian", True),
        ("Distribution=|fedora\nDistribution=|arch", False),
        ("Distribution=|!debian\nDistribution=|fedora", False),
        ("Distribution=|!fedora", True),
        ("Distribution=|fedora\nDistribution=|debian\nFormat=tar", False),  # plain conditions still must hold
    ],
)  # fmt: skip
def test_triggering_conditions(project, conditions, matches):
    root = project({
        "mkosi.conf": "[Distribution]\nDistribution=debian\n",
        "mkosi.conf.d/a.conf": f"[Match]\n{conditions}\n[Content]\nPackages=matched\n",
    })  # fmt: skip
    assert ("matched" in (main_config(root).packages or [])) is matches


@pytest.mark.parametrize(
    "match,matches",
    [
        # Triggers reset between [Match] sections: each must hold on its own.
        ("[Match]\nFormat=|disk\nFormat=|directory\n[Match]\nDistribution=|debian\nDistribution=|arch", True),
        ("[Match]\nFormat=|disk\nFormat=|directory\n[Match]\nDistribution=|fedora\nDistribution=|arch", False),
        ("[TriggerMatch]\nDistribution=fedora\n[TriggerMatch]\nDistribution=debian\nFormat=disk", True),
        ("[TriggerMatch]\nDistribution=fedora\n[TriggerMatch]\nDistribution=debian\nFormat=tar", False),
        ("[Match]\nFormat=disk\n[TriggerMatch]\nDistribution=fedora\n[TriggerMatch]\nDistribution=debian", True),
        ("[Match]\nFormat=tar\n[TriggerMatch]\nDistribution=debian", False),
    ],
)  # fmt: skip
def test_multiple_sections(project, match, matches):
    root = project({
        "mkosi.conf": "[Distribution]\nDistribution=debian\n",
        "mkosi.conf.d/a.conf": f"{match}\n[Content]\nPackages=matched\n",
    })  # fmt: skip
    assert ("matched" in (main_config(root).packages or [])) is matches


def test_failing_match_in_mkosi_conf_skips_the_whole_directory(project):
    root = project({
        "mkosi.conf": "[Content]\nPackages=top\n",
        "mkosi.conf.d/sub/mkosi.conf": "[Match]\nDistribution=fedora\n[Content]\nPackages=sub\n",
        "mkosi.conf.d/sub/mkosi.conf.d/x.conf": "[Content]\nPackages=sub-dropin\n",
        "mkosi.conf.d/sub/mkosi.extra/file": "x",
        "mkosi.conf.d/other.conf": "[Match]\nDistribution=fedora\n[Content]\nPackages=other\n",
        "mkosi.conf.d/zz.conf": "[Content]\nPackages=after\n",
    })  # fmt: skip
    config = main_config(root, "-d", "debian")
    assert config.packages == ["after", "top"]  # sorted, as mkosi 27.1 sorts Packages=
    assert not config.extra_trees


def test_match_sees_command_line_but_not_later_files(project):
    root = project({
        "mkosi.conf.d/10.conf": "[Match]\nFormat=tar\n[Content]\nPackages=tar-only\n",
        "mkosi.conf.d/20.conf": "[Output]\nFormat=tar\n",
    })  # fmt: skip
    assert (main_config(root).packages or []) == []
    assert (main_config(root, "--format", "tar").packages or []) == ["tar-only"]


@pytest.mark.parametrize(
    "asserts,ok",
    [
        ("[Assert]\nDistribution=debian", True),
        ("[Assert]\nDistribution=fedora", False),
        ("[TriggerAssert]\nDistribution=fedora\n[TriggerAssert]\nDistribution=debian", True),
        ("[TriggerAssert]\nDistribution=fedora\n[TriggerAssert]\nDistribution=arch", False),
    ],
)  # fmt: skip
def test_asserts(project, asserts, ok):
    root = project({"mkosi.conf": "[Distribution]\nDistribution=debian\n", "mkosi.conf.d/a.conf": asserts + "\n"})
    if ok:
        main_config(root)
        return
    with pytest.raises(KosiError) as e:
        main_config(root)
    assert str(e.value).startswith(
        f"{root}/mkosi.conf.d/a.conf:2:" if "[Assert]" in asserts else f"{root}/mkosi.conf.d/a.conf:1:"
    )


def test_unknown_condition_is_an_error_with_suggestion(project):
    root = project({"mkosi.conf.d/a.conf": "[Match]\nDistributon=debian\n"})
    with pytest.raises(
        KosiError, match=r"a.conf:2: Distributon= cannot be used in \[Match\] \(did you mean Distribution=\?\)"
    ):
        main_config(root)


@pytest.mark.parametrize(
    "condition",
    [
        "Distribution=debain",
        "Architecture=amd64",
        "HostArchitecture=uefi",
        "Bootloader=lilo",
        "ToolsTreeDistribution=",
        "Bootable=maybe",
    ],
)
def test_invalid_condition_values_are_errors_as_in_mkosi(project, condition):
    root = project({"mkosi.conf.d/a.conf": f"[Match]\n{condition}\n"})
    with pytest.raises(KosiError, match="a.conf:2"):
        main_config(root)


def test_invalid_match_value_is_an_error(project):
    root = project({"mkosi.conf.d/a.conf": "[Match]\nFormat=floppy\n"})
    with pytest.raises(KosiError, match="a.conf:2.*floppy"):
        main_config(root)


def test_path_exists_with_specifier(project):
    root = project({"mkosi.conf.d/a.conf": "[Match]\nPathExists=%D/marker\n[Content]\nPackages=m\n", "marker": ""})
    assert (main_config(root).packages or []) == ["m"]
    Path(root / "marker").unlink()
    assert (main_config(root).packages or []) == []
