"""Real Debian trixie images from deb.debian.org through `bin/kosi build` (slow: marked image).

Every build is a real `bin/kosi` process on a real mkosi.conf. Builds are shared through
session fixtures; each cold build costs about 25 s, so add assertions to an existing
fixture's build rather than new builds where you can.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kosi.scripts.environment import VARIABLES
from tests.pipeline.test_plan_matches_build import compare_plan_with_events

pytestmark = pytest.mark.image
REPO = Path(__file__).resolve().parents[2]
#: kept between runs so repeated runs download little; not shared with other test modules,
#: whose concurrent apt runs would hold its lock
PKGCACHE = Path("/var/tmp/kosi-test-pkgcache-pipeline")
#: variables a shell or the sandbox sets on its own, besides the manual's table
SHELL_VARIABLES = {
    "PATH",
    "HOME",
    "LANG",
    "TERM",
    "PWD",
    "SHLVL",
    "_",
    "OLDPWD",
    "USER",
    "LOGNAME",
    "SHELL",
    "LC_ALL",
    "container",
    "TMPDIR",
    "SYSTEMD_OFFLINE",
}


def kosi(directory: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "bin/kosi"), "-C", str(directory), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def build(directory: Path, *argv: str) -> subprocess.CompletedProcess:
    result = kosi(directory, *argv, "-f", "build")
    (directory / "build.log").open("a").write(result.stderr)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def project(directory: Path, conf: str) -> Path:
    """A project whose outputs go to mkosi.output/ and whose workspace is inspectable."""
    (directory / "mkosi.output").mkdir(parents=True, exist_ok=True)
    (directory / "ws").mkdir(exist_ok=True)
    (directory / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=debian\nRelease=trixie\n\n"
        f"[Build]\nWorkspaceDirectory={directory / 'ws'}\nPackageCacheDirectory={PKGCACHE}\n"
        f"CacheDirectory={directory / 'cache'}\n\n" + conf
    )
    return directory


def script(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nset -e\n" + body)
    path.chmod(0o755)


def tar_members(path: Path) -> str:
    return subprocess.run(["tar", "-tvf", str(path)], stdout=subprocess.PIPE, text=True, check=True).stdout


def extract(path: Path, member: str) -> str:
    return subprocess.run(["tar", "-xOf", str(path), member], stdout=subprocess.PIPE, text=True, check=True).stdout


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


# --- a minimal directory image, with Release= left to its default ----------------------------


@pytest.fixture(scope="session")
def minimal(tmp_path_factory) -> Path:
    d = project(
        tmp_path_factory.mktemp("minimal"), "[Output]\nFormat=directory\nOutput=min\n\n[Content]\nPackages=apt\n"
    )
    # A list another build sharing the package cache left behind: it must not reach this image.
    lists = PKGCACHE / "debian~trixie~amd64/lists"
    lists.mkdir(parents=True, exist_ok=True)
    (lists / FOREIGN_LIST).write_text("Origin: elsewhere\n")
    build(d)
    return d


FOREIGN_LIST = "elsewhere.example_repo_dists_x_InRelease"


def test_minimal_directory_image(minimal):
    root = minimal / "mkosi.output/min"
    os_release = (root / "usr/lib/os-release").read_text()
    assert "VERSION_CODENAME=trixie" in os_release, "Release= must default to trixie, not the host's release"
    assert (root / "usr/bin/dpkg").exists()
    assert (root / "etc/machine-id").read_text() == "uninitialized\n"
    # The essential set and what was asked (apt), as mkosi 27.1: not the rest of priority required.
    status = (root / "var/lib/dpkg/status").read_text()
    installed = {line.split(": ", 1)[1] for line in status.splitlines() if line.startswith("Package: ")}
    assert {"apt", "base-files", "dpkg", "bash", "coreutils", "libc6"} <= installed
    assert not {"login", "passwd", "tzdata", "adduser", "cron", "systemd"} & installed, installed
    # apt's lists stay in the package cache, as with mkosi 27.1; the sources are the image's
    assert not [p.name for p in (root / "var/lib/apt/lists").iterdir() if p.is_file()]
    assert "Suites: trixie" in (root / "etc/apt/sources.list.d/trixie.sources").read_text()
    # ... and the shared cache keeps it: another build's lists are not this build's to clean up.
    assert (PKGCACHE / "debian~trixie~amd64/lists" / FOREIGN_LIST).exists()
    assert not any((minimal / "ws").iterdir()), "workspace left behind"


def failed_build(directory: Path, *argv: str) -> str:
    """Run a build that must fail; return its last stderr line after the common checks."""
    before = sorted(p.name for p in (directory / "mkosi.output").iterdir())
    result = kosi(directory, *argv, "-f", "build")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert sorted(p.name for p in (directory / "mkosi.output").iterdir()) == before
    assert (directory / "mkosi.output/min/usr/bin/dpkg").exists(), "previous output damaged"
    assert not any((directory / "ws").iterdir()), "workspace left behind"
    return result.stderr.rstrip("\n").splitlines()[-1]


def test_missing_package_names_it_and_keeps_previous_output(minimal):
    line = failed_build(minimal, "--package", "kosi-no-such-package")
    assert "kosi-no-such-package" in line, line


def test_unreachable_mirror_names_it_and_keeps_previous_output(minimal):
    line = failed_build(minimal, "--mirror", "http://127.0.0.1:9/debian")
    assert "127.0.0.1:9" in line, line


# --- a tar image with every feature, built three times with Incremental=yes -------------------

FULL_CONF = """\
[Distribution]
Release=trixie

[Output]
Format=tar
CompressOutput=no
ImageId=full

[Content]
Packages=less
BuildPackages=gcc make libc6-dev
VolatilePackages=tree
Hostname=kosi-test
MachineId=b92c3f2ea8c44e8f9b7bc1f0a0c6e3a1
Locale=C.UTF-8
Timezone=Europe/Berlin
RootPassword=hashed:
RemoveFiles=/usr/share/doc/less
RemovePackages=less

[Build]
Incremental=yes
Environment=MY_VAR=1
"""

ENV_DUMP = 'env > "$SRCDIR/envs/{kind}${{1:+-$1}}"\n'


@pytest.fixture(scope="session")
def full(tmp_path_factory):
    """Three builds of one project: cold (cache saved), again (cache reused), and with an extra
    package (cache invalidated). Returns the project and the three build logs."""
    d = project(tmp_path_factory.mktemp("full"), FULL_CONF)
    (d / "mkosi.skeleton/etc").mkdir(parents=True)
    (d / "mkosi.skeleton/etc/skeleton-file").write_text("skeleton\n")
    (d / "mkosi.extra/usr/share").mkdir(parents=True)
    (d / "mkosi.extra/usr/share/extra-file").write_text("extra\n")
    (d / "hello.c").write_text('#include <stdio.h>\nint main(void){puts("hello from kosi");return 0;}\n')
    (d / "envs").mkdir()
    for kind in ("sync", "prepare", "finalize", "postoutput"):
        script(d / f"mkosi.{kind}", ENV_DUMP.format(kind=kind))
    script(
        d / "mkosi.build.chroot",
        ENV_DUMP.format(kind="build") + 'mkdir -p "$DESTDIR/usr/bin"\n'
        'make -C "$SRCDIR" hello CFLAGS=-O2 >/dev/null && cp "$SRCDIR/hello" "$DESTDIR/usr/bin/hello" && rm "$SRCDIR/hello"\n',
    )
    script(
        d / "mkosi.postinst.chroot",
        ENV_DUMP.format(kind="postinst") + 'echo "$CHROOT_SCRIPT $BUILDROOT" > /etc/postinst-chroot\n',
    )
    logs = [build(d).stderr]
    shutil.copytree(d / "envs", d / "envs-first")  # the environments of the cold build
    logs.append(build(d, "--log-json", str(d / "second.jsonl")).stderr)
    logs.append(build(d, "--package", "file").stderr)
    return d, logs


def test_full_image_contents(full):
    d, _ = full
    tar = d / "mkosi.output/full.tar"
    listing = tar_members(tar)
    assert "./etc/skeleton-file" in listing and "./usr/share/extra-file" in listing
    assert "./usr/bin/hello" in listing, "build script output missing"
    assert "/usr/bin/gcc" not in listing and "x86_64-linux-gnu-gcc" not in listing, "build packages leaked"
    assert "./usr/bin/file" in listing  # the third build's extra package
    assert extract(tar, "./etc/hostname").strip() == "kosi-test"
    # MachineId= survives the reproducibility clean-up (mkosi 27.1 keeps it too), read-only as Debian's
    assert extract(tar, "./etc/machine-id") == "b92c3f2ea8c44e8f9b7bc1f0a0c6e3a1\n"
    assert (
        "-r--r--r-- 0/0"
        in subprocess.run(["tar", "-tvf", str(tar), "./etc/machine-id"], stdout=subprocess.PIPE, text=True).stdout
    )
    assert (
        "Europe/Berlin"
        in subprocess.run(["tar", "-tvf", str(tar), "./etc/localtime"], stdout=subprocess.PIPE, text=True).stdout
    )
    assert extract(tar, "./usr/lib/credstore/firstboot.timezone") == "Europe/Berlin"
    assert extract(tar, "./etc/shadow").startswith("root::")
    assert 'IMAGE_ID="full"' in extract(tar, "./usr/lib/os-release")
    assert extract(tar, "./etc/postinst-chroot").strip() == "/work/mkosi.postinst.chroot /"
    assert "./usr/bin/tree" in listing  # VolatilePackages=, installed after the build scripts
    assert "./usr/bin/less" not in listing  # RemovePackages=
    assert "./usr/share/doc/less/" not in listing  # RemoveFiles=
    assert not any((d / "ws").iterdir()), "workspace left behind"


def test_script_environments_match_the_manual(full):
    d, _ = full
    envs = d / "envs-first"
    ran = {p.name for p in envs.iterdir()}
    assert ran == {"sync", "prepare-final", "prepare-build", "build", "postinst", "finalize", "postoutput"}
    for name in sorted(ran):
        kind = name.split("-")[0]
        env = read_env(envs / name)
        # No BuildDirectory= and no SourceDateEpoch=: the manual defines those only when configured.
        expected = {v for v, kinds in VARIABLES.items() if kind in kinds} - {
            "BUILDDIR",
            "CHROOT_BUILDDIR",
            "SOURCE_DATE_EPOCH",
        }
        assert set(env) - SHELL_VARIABLES - {"MY_VAR"} == expected, name
        assert env["MY_VAR"] == "1" and env["DISTRIBUTION"] == "debian" and env["RELEASE"] == "trixie", name
        assert env["IMAGE_ID"] == "full", name
    assert read_env(envs / "build")["WITH_NETWORK"] == "0"
    assert read_env(envs / "sync")["CACHED"] == "0"
    assert read_env(d / "envs/sync")["CACHED"] == "0"  # the third build could not use the cache


def test_incremental_reuse_and_invalidation(full):
    d, logs = full
    assert "no cached image yet" in logs[0]
    assert "reusing cached image (key" in logs[1]
    events = [json.loads(line) for line in (d / "second.jsonl").read_text().splitlines()]
    skipped = {e["step"]: e["reason"] for e in events if e["kind"] == "step-skipped"}
    assert skipped["install distribution and packages"] == "part of the cached image"
    assert [e["key"] for e in events if e["kind"] == "cache-hit"]
    assert "cache invalid: Packages= changed" in logs[2]


def test_plan_tells_what_the_next_build_would_reuse(full):
    """`kosi plan` after the three builds: the cache now holds the image with `file`."""
    d, _ = full
    same = json.loads(kosi(d, "--package", "file", "plan", "--json").stdout)
    steps = {s["step"]: s["skip"] for s in same["Images"][0]["steps"]}
    assert steps["reuse cached image"] is None
    assert steps["install distribution and packages"] == "part of the cached image"
    assert same["Images"][0]["blocked"].endswith("exists (use -f)")
    changed = kosi(d, "plan")  # without the extra package the cache does not match
    assert "reuse cached image" in changed.stdout and "Packages= changed" in changed.stdout
    assert "install distribution and packages" in changed.stdout


# --- reproducibility: the same tar twice -----------------------------------------------------


def test_reproducible_tar(tmp_path):
    outputs = []
    for i in range(2):
        d = project(
            tmp_path / f"b{i}",
            "[Distribution]\nRelease=trixie\n\n[Output]\nFormat=tar\n\n"
            "[Content]\nPackages=less\nSourceDateEpoch=1700000000\n",
        )
        build(d)
        outputs.append(d / "mkosi.output/image.tar.zst")
    if subprocess.run(["cmp", str(outputs[0]), str(outputs[1])]).returncode != 0:
        a, b = (
            subprocess.run(
                ["sh", "-c", f"zstd -dc {o} | tar -tvf -"], stdout=subprocess.PIPE, text=True
            ).stdout.splitlines()
            for o in outputs
        )
        pytest.fail("differs: " + "\n".join(sorted(set(a) ^ set(b))[:20]))


# --- the example in the repository -----------------------------------------------------------


def test_hello_example_builds(tmp_path):
    """examples/hello as the README builds it; -O keeps the checkout clean (without -O and
    without an examples/hello/mkosi.output/ directory the output lands in examples/hello/)."""
    options = ("-O", str(tmp_path), f"--package-cache-dir={PKGCACHE}")
    planned = json.loads(kosi(REPO / "examples/hello", *options, "plan", "--json").stdout)["Images"][0]["steps"]
    events_file = tmp_path / "events.jsonl"
    result = kosi(REPO / "examples/hello", *options, "--log-json", str(events_file), "-f", "build")
    assert result.returncode == 0, result.stderr[-4000:]
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    compare_plan_with_events(planned, events)
    # systemd's presets ran (the image has systemctl) but their chatter stays out of a plain build's log
    assert ("step-finished", "systemctl preset-all") in [(e["kind"], e.get("step")) for e in events]
    assert "Created symlink" not in result.stderr and "Created symlink" not in result.stdout
    assert "steps skipped (--debug lists them" in result.stderr
    root = tmp_path / "hello"
    assert (root / "etc/motd").read_text().strip()
    os_release = (root / "usr/lib/os-release").read_text()
    assert "VERSION_CODENAME=trixie" in os_release and 'IMAGE_ID="hello"' in os_release
