"""The default initrd shares the main image's package sources, as mkosi 27.1 hands its
universal and multiversal settings to it: a project's own repository key in mkosi.sandbox/,
its package directories and key checking serve the initrd too (a Fedora image from a mirror
signed by the project's key got no initrd before). Where the build keeps its files is no
part of the initrd's cache key."""

from __future__ import annotations

from pathlib import Path

from kosi.boot.initrd import cache_path, initrd_config
from kosi.config.cli_args import parse_command_line
from kosi.config.loader import load_project

CONF = """\
[Distribution]
Distribution=fedora
Release=42
Mirror=http://127.0.0.1:8000/fedora
RepositoryKeyCheck=no

[Content]
Bootable=yes
PackageDirectories={packages}

[Build]
PackageCacheDirectory={cache}
"""


def main_config(directory: Path, cache: str):
    (directory / "mkosi.sandbox/etc/pki/rpm-gpg").mkdir(parents=True, exist_ok=True)
    (directory / "packages").mkdir(exist_ok=True)
    (directory / "mkosi.conf").write_text(CONF.format(packages=directory / "packages", cache=cache))
    return load_project(parse_command_line(["summary"]), cwd=directory).images[-1]


def test_default_initrd_gets_the_main_images_package_sources(tmp_path):
    initrd = initrd_config(main_config(tmp_path, str(tmp_path / "cache")))
    assert [tree.source for tree in initrd["SandboxTrees"]] == [tmp_path / "mkosi.sandbox"]
    assert initrd["PackageDirectories"] == [tmp_path / "packages"]
    assert initrd["RepositoryKeyCheck"] is False
    assert initrd["PackageCacheDirectory"] == tmp_path / "cache"
    assert initrd["Mirror"] == "http://127.0.0.1:8000/fedora"
    # its own settings stay its own
    assert initrd["Format"] == "cpio" and initrd["RemovePackages"] == ["shadow-utils"]


def test_the_package_cache_is_no_part_of_the_initrds_cache_key(tmp_path):
    one = cache_path(initrd_config(main_config(tmp_path, str(tmp_path / "cache-one"))))
    other = cache_path(initrd_config(main_config(tmp_path, str(tmp_path / "cache-two"))))
    assert one == other
    # another project's sandbox tree (other keys, other repositories) is another initrd
    (tmp_path / "other").mkdir()
    assert cache_path(initrd_config(main_config(tmp_path / "other", str(tmp_path / "cache-one")))) != one
