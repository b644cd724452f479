"""Fixtures shared across test directories."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def readable_checkout():
    """A copy of kosi that throwaway test users can read: the checkout itself may sit below a
    directory only root may enter (e.g. a clone in `mktemp -d`)."""
    import os
    import shutil
    import tempfile

    target = Path(tempfile.mkdtemp(prefix="kosi-copy-", dir="/var/tmp"))
    os.chmod(target, 0o755)
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "kosi", target / "kosi", ignore=ignore)
    shutil.copytree(REPO / "bin", target / "bin", symlinks=True)
    subprocess.run(["chmod", "-R", "a+rX", str(target)], check=True)
    yield target
    shutil.rmtree(target, ignore_errors=True)


# --- boot fixtures: one bootable Debian trixie disk image for every test that needs one ---
# (mkosi 27.1 builds it too, tests/compat/test_build_bootable.py: it needs systemd-boot-efi
# listed, as Debian's systemd-boot pulls only the signed build without it)

BOOTABLE_CONF = """\
[Distribution]
Distribution=debian
Release=trixie

[Output]
Format=disk
SplitArtifacts=uki,kernel,initrd,kernel-modules-initrd,os-release,repart-definitions,partitions

[Content]
Bootable=yes
Packages=systemd
         udev
         linux-image-amd64
         systemd-boot
         systemd-boot-efi
"""


def build_project(directory: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "bin/kosi"), "-C", str(directory), *extra, "-f", "build"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="session")
def kosi_build():
    """`kosi_build(directory, *options)`: run `kosi -C directory [options] -f build`."""
    return build_project


@pytest.fixture(scope="session")
def bootable_config() -> str:
    """mkosi.conf of the shared bootable image, for tests that build a variation of it."""
    return BOOTABLE_CONF


@pytest.fixture(scope="session")
def bootable_disk_project(tmp_path_factory) -> Path:
    """The project directory of the shared bootable image (output in mkosi.output/)."""
    directory = tmp_path_factory.mktemp("bootable")
    (directory / "mkosi.conf").write_text(BOOTABLE_CONF)
    (directory / "mkosi.output").mkdir()
    result = build_project(directory)
    (directory / "build.log").write_text(result.stdout)
    if result.returncode != 0:
        pytest.fail(f"building the bootable image failed:\n{result.stdout[-4000:]}")
    return directory


@pytest.fixture(scope="session")
def bootable_disk_image(bootable_disk_project) -> Path:
    """Path of a bootable Debian trixie disk image (systemd-boot, a UKI with the default initrd)."""
    return bootable_disk_project / "mkosi.output" / "image.raw"


@pytest.fixture(scope="session")
def default_tools_tree() -> Path:
    """The default tools tree (built on first use, then reused from the cache)."""
    from kosi.config.cli_args import Args
    from kosi.config.model import Config, Project
    from kosi.verbs.build import ensure_tools_tree

    config = Config(
        {"Distribution": "debian", "Release": "trixie", "Format": "disk", "ToolsTree": "default"}, directory=REPO
    )
    return ensure_tools_tree(Project(images=[config]), Args(verb="build"))


# --- markers: the fast run (-m "not image and not vm") must not build from the archive or boot ---

#: fixtures that build an image from the Debian archive (or a tools tree) or boot one
IMAGE_FIXTURES = {"kosi_build", "bootable_disk_project", "bootable_disk_image", "default_tools_tree"}


def pytest_collection_modifyitems(config, items):
    """Refuse to run a test that uses an image-building fixture without an image or vm marker."""
    unmarked = [
        item.nodeid
        for item in items
        if IMAGE_FIXTURES & set(getattr(item, "fixturenames", ()))
        and not (item.get_closest_marker("image") or item.get_closest_marker("vm"))
    ]
    if unmarked:
        raise pytest.UsageError(
            "tests that build or boot a real image must be marked @pytest.mark.image or @pytest.mark.vm:\n  "
            + "\n  ".join(unmarked)
        )
