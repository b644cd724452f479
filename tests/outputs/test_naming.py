"""Output names as mkosi 27.1 writes them (learnt by building with it, see
tests/compat/test_build_outputs.py): which formats CompressOutput= compresses, the
extension, and the symlink named Output= that points at the main output."""

from __future__ import annotations

import pytest

from kosi.config.model import Config
from kosi.outputs.naming import artifact_names, output_link, output_name

CASES = [
    # format, settings, main output, link
    ("disk", {}, "image.raw", "image"),
    ("disk", {"CompressOutput": "zstd"}, "image.raw.zst", "image"),
    ("tar", {}, "image.tar.zst", "image"),
    ("tar", {"CompressOutput": "gzip"}, "image.tar.gz", "image"),
    ("tar", {"CompressOutput": "none"}, "image.tar", "image"),
    ("cpio", {"CompressOutput": "xz"}, "image.cpio.xz", "image"),
    ("sysext", {"CompressOutput": "zstd"}, "image.raw.zst", "image"),
    # a UKI and an ESP image are written plain, whatever CompressOutput= (its default is zstd)
    ("uki", {}, "image.efi", "image"),
    ("uki", {"CompressOutput": "xz"}, "image.efi", "image"),
    ("esp", {}, "image.raw", "image"),
    ("addon", {}, "image.efi", "image"),
    ("oci", {}, "image", None),
    ("directory", {"CompressOutput": "zstd"}, "image", None),
    ("none", {}, "image", None),
    ("tar", {"ImageId": "foo", "ImageVersion": "1.2"}, "foo_1.2.tar.zst", "foo_1.2"),
    ("disk", {"Output": "custom", "ImageVersion": "3"}, "custom.raw", "custom"),
    ("tar", {"OutputExtension": "tgz", "CompressOutput": "none"}, "image.tgz", "image"),
]


@pytest.mark.parametrize(("fmt", "settings", "main", "link"), CASES)
def test_output_names(fmt, settings, main, link):
    config = Config({"Distribution": "debian", "Format": fmt, **settings})
    assert output_name(config) == main
    assert output_link(config) == link


def test_every_published_name_is_an_artifact_for_clean_and_force():
    config = Config({"Distribution": "debian", "Format": "disk", "ImageVersion": "2"})
    names = artifact_names(config)
    for name in (
        "image_2.raw",
        "image_2",
        "image_2.efi",
        "image_2.vmlinuz",
        "image_2.initrd",
        "image_2.osrelease",
        "image_2.SHA256SUMS",
        "image_2.manifest",
    ):
        assert name in names


def test_split_artifacts_default_is_mkosis():
    assert Config({"Distribution": "debian"}).split_artifacts == ["uki", "kernel", "initrd"]
