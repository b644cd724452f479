"""Subimages: inheritance by scope, selection by Dependencies=, order, cycles, errors."""

import pytest

from config_helpers import load
from kosi.errors import KosiError


def names(project_):
    return [c.image for c in project_.images]


def test_all_subimages_built_without_dependencies_main_last(project):
    root = project({"mkosi.images/b.conf": "", "mkosi.images/a/mkosi.conf": "", "mkosi.images/notes.txt": ""})
    assert names(load(root)) == ["a", "b", "main"]


def test_dependencies_select_and_order(project):
    root = project({
        "mkosi.conf": "[Config]\nDependencies=app\n",
        "mkosi.images/app.conf": "[Config]\nDependencies=lib,base\n",
        "mkosi.images/lib.conf": "[Config]\nDependencies=base\n",
        "mkosi.images/base.conf": "",
        "mkosi.images/unused.conf": "",
    })  # fmt: skip
    assert names(load(root)) == ["base", "lib", "app", "main"]


@pytest.mark.parametrize("where", ["mkosi.conf", "mkosi.images/a.conf"])
def test_dependency_on_missing_image(project, where):
    root = project({"mkosi.images/a.conf": "", where: "[Config]\nDependencies=ghost\n"})
    with pytest.raises(KosiError, match=rf"{where}:2: .*'ghost'"):
        load(root)


def test_dependency_cycle_is_named(project):
    root = project({
        "mkosi.images/a.conf": "[Config]\nDependencies=b\n",
        "mkosi.images/b.conf": "[Config]\nDependencies=c\n",
        "mkosi.images/c.conf": "[Config]\nDependencies=a\n",
    })  # fmt: skip
    with pytest.raises(KosiError, match="cycle.*a -> b -> c -> a"):
        load(root)


def test_universal_setting_in_subimage_is_refused(project):
    root = project({"mkosi.images/a.conf": "[Content]\nPackages=x\n[Distribution]\nDistribution=fedora\n"})
    with pytest.raises(KosiError, match=r"a.conf:4: Distribution= is a universal setting"):
        load(root)


def test_universal_gated_by_image_match_is_fine(project):
    root = project({
        "shared.conf": "[Match]\nImage=main\n[Distribution]\nDistribution=fedora\n",
        "mkosi.conf": "[Include]\nInclude=shared.conf\n",
        "mkosi.images/a.conf": "[Include]\nInclude=shared.conf\n",  # relative to %P: the top
    })  # fmt: skip
    project_ = load(root)
    assert [c.distribution for c in project_.images] == ["fedora", "fedora"]


def test_scopes(project):
    root = project({
        "mkosi.conf": "[Distribution]\nDistribution=debian\n[Output]\nImageId=top\nImageVersion=1\nFormat=tar\n"
                      "[Content]\nPackages=top\n[Config]\nMinimumVersion=1\nPassEnvironment=KEEP\n"
                      "[Content]\nEnvironment=KEEP=k DROP=d\n",
        "mkosi.images/a.conf": "[Output]\nImageVersion=2\n",
    })  # fmt: skip
    sub, main = load(root, "--image-id", "cli").images
    assert sub.image == "a" and main.image == "main"
    assert sub.distribution == "debian"  # universal
    assert sub.image_id == "cli" and sub.image_version == "2"  # passed down; the subimage's own value wins
    assert sub.format == "disk" and not sub.packages  # per-image settings are not inherited
    assert sub.minimum_version is None  # main-only
    assert sub.environment == [{"KEEP": "k"}]  # PassEnvironment=


def test_image_name_specifier_and_match(project):
    root = project({
        "mkosi.images/web/mkosi.conf": "[Content]\nPackages=%I\n",
        "mkosi.images/web/mkosi.conf.d/x.conf": "[Match]\nImage=web\n[Content]\nPackages=only-web\n",
    })  # fmt: skip
    sub = load(root).images[0]
    assert sub.image == "web" and sub.packages == ["only-web", "web"]


def test_subimage_excluded_by_its_match(project):
    root = project({"mkosi.images/a/mkosi.conf": "[Match]\nProfiles=x\n", "mkosi.images/b.conf": ""})
    assert names(load(root)) == ["b", "main"]
    assert names(load(root, "--profile", "x")) == ["a", "b", "main"]  # Profiles= is passed down


def test_tools_conf_takes_only_what_mkosi_takes_there(project):
    """mkosi 27.1 accepts 15 settings in mkosi.tools.conf (Packages=, Repositories=, OutputDirectory=, ...)
    and refuses every other one, universal or not."""
    from kosi.config.loader import tools_tree_config

    ok = project(
        {
            "mkosi.conf": "[Build]\nToolsTree=default\n",
            "mkosi.tools.conf": "[Distribution]\nRepositories=contrib\n[Content]\nPackages=extra-tool\n",
        }
    )
    tools = tools_tree_config(load(ok).main)
    assert "extra-tool" in tools.packages and tools.repositories == ["contrib"]
    for line in (
        "[Runtime]\nRAM=4G",
        "[Output]\nFormat=tar",
        "[Content]\nWithDocs=yes",
        "[Distribution]\nDistribution=fedora",
    ):
        bad = project({"mkosi.conf": "[Build]\nToolsTree=default\n", "mkosi.tools.conf": line + "\n"})
        with pytest.raises(KosiError, match=r"mkosi.tools.conf:2: .*cannot be configured in the tools tree"):
            tools_tree_config(load(bad).main)
