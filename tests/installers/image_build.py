"""What the image tests of the non-Debian backends share: bin/kosi run on a project, the one
line a failed build ends with, executable scripts, and the local mirror and package cache
each test module makes once.

    mirror = served_mirror("arch-mirror", pacman_repo.build, pacman_repo.serve)   # a fixture
    package_cache = module_cache("arch-cache")                                   # a fixture
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

REPO = Path(__file__).resolve().parents[2]


def kosi(directory: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "bin/kosi"), "-C", str(directory), *args],
        check=False,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def build(directory: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return kosi(directory, "-f", *args, "build", env=env)


#: what installs the distributions kosi builds with a package manager other than apt
HOST_PACKAGE_MANAGERS = {"dnf", "dnf5", "dnf-3", "dnf4", "yum", "zypper", "pacman"}


def build_without_host_package_managers(directory: Path, scratch: Path) -> subprocess.CompletedProcess:
    """A build of `directory` by a kosi whose $PATH has none of HOST_PACKAGE_MANAGERS (made in
    `scratch`): it must say the host lacks them and take its package-manager tools tree."""
    env = {**os.environ, "PATH": path_without(scratch / "bin", HOST_PACKAGE_MANAGERS)}
    result = build(directory, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "which the host lacks" in result.stdout + result.stderr, result.stderr[-3000:]
    return result


def path_without(directory: Path, hidden: set[str]) -> str:
    """A $PATH of one directory (made here) with every program of the host's $PATH but `hidden`:
    a host without those, as kosi sees it, and the host itself untouched."""
    directory.mkdir(parents=True, exist_ok=True)
    for entry in os.environ.get("PATH", "/usr/bin:/bin").split(":"):
        if not os.path.isdir(entry):
            continue
        for name in os.listdir(entry):
            link = directory / name
            if name not in hidden and not os.path.lexists(link):
                link.symlink_to(os.path.join(entry, name))
    return str(directory)


def write_project(directory: Path, distribution: str, cache: Path, settings: str = "") -> Path:
    """A project building a directory image (image/, with image.manifest in JSON): mkosi.conf
    with the [Distribution] lines `distribution`, the package cache `cache`, then `settings`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "mkosi.conf").write_text(
        f"[Distribution]\n{distribution}\n\n[Output]\nFormat=directory\nOutput=image\nManifestFormat=json\n\n"
        f"[Build]\nPackageCacheDirectory={cache}\n{settings}\n"
    )
    return directory


def built(directory: Path) -> Path:
    """The image a build of `directory` that must succeed made."""
    result = build(directory)
    assert result.returncode == 0, result.stderr[-3000:]
    return directory / "image"


def error_line(result: subprocess.CompletedProcess) -> str:
    """The last line of a build that failed as kosi's errors should: exit 1, no traceback."""
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()][-1]


def script(path: Path, text: str) -> Path:
    """An executable shell script (mkosi.build, mkosi.postinst, ...)."""
    path.write_text("#!/bin/sh\nset -e\n" + text)
    path.chmod(0o755)
    return path


def kill_gpg_agent(home: Path) -> None:
    """gpg and rpmsign start a gpg-agent for a home that would outlive the tests."""
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False, capture_output=True)


def served_mirror(prefix: str, make: Callable, serve: Callable):
    """A module fixture: the mirror `make` lays out in a fresh directory, served on 127.0.0.1
    while the module's tests run (its stop() ends the server and the signer's gpg-agent)."""

    @pytest.fixture(scope="module")
    def mirror(tmp_path_factory):
        served = serve(make(tmp_path_factory.mktemp(prefix)))
        yield served
        served.stop()

    return mirror


def module_cache(prefix: str):
    """A module fixture: one package cache the module's builds share (warm after the first)."""

    @pytest.fixture(scope="module")
    def package_cache(tmp_path_factory) -> Path:
        return tmp_path_factory.mktemp(prefix)

    return package_cache


def built_image(prefix: str, project: Callable, settings: str):
    """A module fixture: the project (made by `project(directory, mirror, cache, settings)`)
    built once from the module's mirror into its package cache."""

    @pytest.fixture(scope="module")
    def image(tmp_path_factory, mirror, package_cache) -> Path:
        directory = project(tmp_path_factory.mktemp(prefix), mirror, package_cache, settings)
        built(directory)
        return directory

    return image


#: how packages are downloaded (everything else a package manager asks for is metadata)
PACKAGE_FILES = (".rpm", ".pkg.tar.zst", ".pkg.tar.xz", ".pkg.tar.gz", ".apk", ".deb")


def package_requests(requests: list[str]) -> list[str]:
    """The requests of `requests` (paths a test server recorded) that fetch a package."""
    return [r for r in requests if r.partition("?")[0].endswith(PACKAGE_FILES)]


def check_warm_build(copy, project: Callable, tmp_path: Path, settings: str, produced: str) -> None:
    """A cold build from the mirror (`copy`, a served copy of the module's) into a fresh package
    cache downloads packages; the warm build after it, the mirror still served, asks it for no
    package (counted at its server); and with the mirror gone and CacheOnly=metadata a build
    still makes the image and asks nothing."""
    cache = tmp_path / "package-cache"
    cache.mkdir()
    assert build(project(tmp_path / "cold", copy, cache, settings)).returncode == 0
    assert package_requests(copy.requests), copy.requests  # the server counts what is downloaded
    before = len(copy.requests)
    assert (built(project(tmp_path / "warm-online", copy, cache, settings)) / produced).exists()
    assert package_requests(copy.requests[before:]) == [], copy.requests[before:]
    copy.stop()
    requests = list(copy.requests)
    warm = project(tmp_path / "warm", copy, cache, settings + "CacheOnly=metadata\n")
    assert (built(warm) / produced).exists()
    assert copy.requests == requests


def unreachable_mirror_error(directory: Path, url: str) -> str:
    """The one line of a build whose Mirror= (`url` in mkosi.conf) refuses connections."""
    conf = directory / "mkosi.conf"
    conf.write_text(conf.read_text().replace(url, "http://127.0.0.1:9"))
    return error_line(build(directory))
