"""Real builds without a package manager (Distribution=custom): trees, every script kind and its
exact environment, tar/cpio/directory outputs, reproducibility, failure handling."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from kosi.config.model import Config, Project
from kosi.errors import KosiError
from kosi.scripts.environment import VARIABLES
from kosi.verbs.build import build_project
from kosi.verbs.clean import clean_project

SHELL_VARIABLES = {"PATH", "HOME", "LANG", "TERM", "PWD", "SHLVL", "_", "OLDPWD", "MY_VAR", "FROM_FILE"}


def script(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nset -e\n" + body)
    path.chmod(0o755)


@pytest.fixture
def project_dir(tmp_path):
    d = tmp_path / "project"
    (d / "mkosi.skeleton/etc").mkdir(parents=True)
    (d / "mkosi.skeleton/etc/skeleton-file").write_text("skeleton\n")
    (d / "mkosi.extra/usr/share").mkdir(parents=True)
    (d / "mkosi.extra/usr/share/extra-file").write_text("extra\n")
    (d / "mkosi.env").write_text("FROM_FILE=yes\n")
    envs = d / "envs"  # scripts run in a sandbox that only shows them $SRCDIR and friends
    envs.mkdir()
    for kind in ("sync", "prepare", "finalize", "postoutput", "clean"):
        script(d / f"mkosi.{kind}", f'env > "$SRCDIR/envs/{kind}${{1:+-$1}}"\n')
    # build and postinst scripts come from .d directories, run in name order
    for kind in ("build", "postinst"):
        script(d / f"mkosi.{kind}.d/00-env", f'env > "$SRCDIR/envs/{kind}${{1:+-$1}}"\n')
    script(d / "mkosi.build.d/10-second", 'echo built > "$DESTDIR/built-by-script"\n')
    script(d / "mkosi.postinst.d/20-touch", 'echo "$@" > "$BUILDROOT/postinst-ran"\n')
    return d


def write_conf(directory: Path, values: dict) -> None:
    """mkosi.conf holding `values`, each under its section from the settings table."""
    from kosi.config.settings import SETTINGS_BY_NAME

    sections: dict[str, list[str]] = {}
    for name, value in values.items():
        if isinstance(value, bool):
            value = "yes" if value else "no"
        elif isinstance(value, (list, tuple)):
            value = " ".join(map(str, value))
        sections.setdefault(SETTINGS_BY_NAME[name].section, []).append(f"{name}={value}")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "mkosi.conf").write_text(
        "".join(f"[{s}]\n" + "\n".join(lines) + "\n\n" for s, lines in sections.items())
    )


def config(directory: Path, tmp_path: Path, **values) -> Config:
    """The project's configuration as the loader reads it (default paths such as mkosi.extra/ included)."""
    from kosi.config.cli_args import parse_command_line
    from kosi.config.loader import load_project

    base = {
        "Distribution": "custom",
        "Format": "tar",
        "OutputDirectory": tmp_path / "out",
        "WorkspaceDirectory": tmp_path / "ws",
        "CacheDirectory": tmp_path / "cache",
        "PackageCacheDirectory": tmp_path / "pkgcache",
        "Environment": "MY_VAR=1",
        "SourceDateEpoch": 1700000000,
        "ImageId": "demo",
        "ImageVersion": "1.2",
    }
    base.update(values)
    write_conf(directory, base)
    return load_project(parse_command_line(["-C", str(directory)])).main


def args(**kw):
    from kosi.config.cli_args import Args

    return Args(force=kw.get("force", 0))


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_tar_image_with_trees_and_every_script_kind(project_dir, tmp_path):
    (tmp_path / "out").mkdir()
    outputs = build_project(Project([config(project_dir, tmp_path)]), args())
    tar_path = tmp_path / "out/demo_1.2.tar.zst"
    assert tar_path in outputs
    listing = subprocess.run(
        ["tar", "--zstd", "-tvf", str(tar_path)], stdout=subprocess.PIPE, text=True, check=True
    ).stdout
    assert "./etc/skeleton-file" in listing and "./usr/share/extra-file" in listing
    assert "./built-by-script" in listing and "./postinst-ran" in listing
    assert " root/root " in listing or " 0/0 " in listing
    assert not any((tmp_path / "ws").iterdir()), "workspace left behind"

    envs = project_dir / "envs"
    ran = {p.name for p in envs.iterdir()}
    assert ran == {"sync", "prepare-final", "prepare-build", "build", "postinst", "finalize", "postoutput"}
    for name in ran:
        kind = name.split("-")[0]
        env = read_env(envs / name)
        expected = {v for v, kinds in VARIABLES.items() if kind in kinds} - {"BUILDDIR", "CHROOT_BUILDDIR"}
        assert set(env) - SHELL_VARIABLES == expected, name
        assert env["MY_VAR"] == "1" and env["FROM_FILE"] == "yes"
        assert env["IMAGE_ID"] == "demo" and env["IMAGE_VERSION"] == "1.2"
    build = read_env(envs / "build")
    assert build["WITH_NETWORK"] == "0" and build["DESTDIR"].endswith("destdir")
    assert build["SOURCE_DATE_EPOCH"] == "1700000000"
    assert build["BUILDROOT"].endswith("build-root") and read_env(envs / "prepare-build")["BUILDROOT"].endswith(
        "build-root"
    )
    assert read_env(envs / "prepare-final")["BUILDROOT"].endswith("/root")
    assert read_env(envs / "sync")["CACHED"] == "0"

    # a second build refuses to overwrite, -f replaces
    with pytest.raises(KosiError, match="already exists"):
        build_project(Project([config(project_dir, tmp_path)]), args())
    build_project(Project([config(project_dir, tmp_path)]), args(force=1))

    clean_project(Project([config(project_dir, tmp_path)]), args())
    assert not tar_path.exists()
    assert (envs / "clean").exists()
    assert set(read_env(envs / "clean")) - SHELL_VARIABLES == {v for v, k in VARIABLES.items() if "clean" in k}


def test_reproducible_tar(tmp_path):
    d = tmp_path / "p"
    (d / "mkosi.extra/etc").mkdir(parents=True)
    (d / "mkosi.extra/etc/hello").write_text("hi\n")
    (d / "mkosi.extra/var/log").mkdir(parents=True)
    (d / "mkosi.extra/var/log/noise.log").write_text("noise\n")
    digests = []
    for i in range(2):
        c = config(d, tmp_path, OutputDirectory=tmp_path / f"out{i}", Format="tar")
        (tmp_path / f"out{i}").mkdir()
        build_project(Project([c]), args())
        digests.append((tmp_path / f"out{i}/demo_1.2.tar.zst").read_bytes())
    assert digests[0] == digests[1]
    names = tarfile.open(
        fileobj=io.BytesIO(subprocess.run(["zstd", "-dc"], input=digests[0], stdout=subprocess.PIPE).stdout)
    ).getnames()
    assert "./etc/hello" in names and "./var/log/noise.log" not in names


def test_cpio_and_directory_and_manifest_checksum(tmp_path):
    d = tmp_path / "p"
    (d / "mkosi.extra/etc").mkdir(parents=True)
    (d / "mkosi.extra/etc/hello").write_text("hi\n")
    build_project(
        Project([config(d, tmp_path, Format="cpio", CompressOutput="no", Checksum=True, ManifestFormat=["json"])]),
        args(),
    )
    out = tmp_path / "out"
    assert (out / "demo_1.2.cpio").is_file()
    with open(out / "demo_1.2.cpio", "rb") as archive:
        listing = subprocess.run(
            ["cpio", "-it"], stdin=archive, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        ).stdout.split()
    assert listing == sorted(listing) and "etc/hello" in listing
    sums = (out / "demo_1.2.SHA256SUMS").read_text()
    assert "*demo_1.2.cpio" in sums
    # as mkosi 27.1: no manifest without a package manager (Distribution=custom), and a
    # symlink named Output= pointing at the main output
    assert not (out / "demo_1.2.manifest").exists() and "manifest" not in sums
    assert os.readlink(out / "demo_1.2") == "demo_1.2.cpio"
    build_project(Project([config(d, tmp_path, Format="directory", Output="tree")]), args())
    assert (out / "tree/etc/hello").read_text() == "hi\n"


def test_failure_keeps_previous_output_and_removes_workspace(tmp_path):
    d = tmp_path / "p"
    (d / "mkosi.extra/etc").mkdir(parents=True)
    (d / "mkosi.extra/etc/hello").write_text("hi\n")
    build_project(Project([config(d, tmp_path)]), args())
    before = (tmp_path / "out/demo_1.2.tar.zst").read_bytes()
    script(d / "mkosi.finalize", "exit 3\n")
    with pytest.raises(KosiError, match="already exists"):
        build_project(Project([config(d, tmp_path)]), args())  # refused before building
    with pytest.raises(KosiError, match="finalize script .* failed with exit status 3"):
        build_project(Project([config(d, tmp_path)]), args(force=1))
    assert (tmp_path / "out/demo_1.2.tar.zst").read_bytes() == before
    assert not any((tmp_path / "ws").iterdir())


KOSI = Path(__file__).resolve().parents[2] / "bin" / "kosi"


def test_auto_bump_builds_with_the_new_version_and_writes_it_only_on_success(tmp_path):
    d = tmp_path / "bump"
    (d / "mkosi.output").mkdir(parents=True)
    (d / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=custom\n\n[Output]\nFormat=directory\n"
        "ImageId=app\n\n[Build]\nWorkspaceDirectory=%s\n" % tmp_path
    )
    (d / "mkosi.version").write_text("1.9\n")

    result = subprocess.run([str(KOSI), "-C", str(d), "-B", "build"], stderr=subprocess.PIPE, text=True)
    assert result.returncode == 0, result.stderr
    assert (d / "mkosi.output/app_1.10").is_dir()  # the build used the bumped version
    assert (d / "mkosi.version").read_text() == "1.10\n"

    script(d / "mkosi.finalize", "exit 3\n")
    result = subprocess.run([str(KOSI), "-C", str(d), "-B", "-f", "build"], stderr=subprocess.PIPE, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (d / "mkosi.version").read_text() == "1.10\n"  # a failed build bumps nothing


def test_debug_shell_opens_in_the_image_when_a_step_fails(tmp_path):
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        pytest.skip("busybox-static is not installed (setup.sh installs it)")
    d = tmp_path / "debug"
    (d / "mkosi.skeleton/usr/bin").mkdir(parents=True)
    (d / "mkosi.skeleton/etc").mkdir()
    (d / "mkosi.skeleton/etc/only-in-the-image").write_text("image-side\n")
    subprocess.run(["cp", str(busybox), str(d / "mkosi.skeleton/usr/bin/busybox")], check=True)
    (d / "mkosi.skeleton/usr/bin/sh").symlink_to("busybox")
    (d / "mkosi.skeleton/bin").symlink_to("usr/bin")
    (d / "mkosi.conf").write_text(
        "[Distribution]\nDistribution=custom\n\n[Output]\nFormat=directory\n\n"
        "[Build]\nWorkspaceDirectory=%s\n" % tmp_path
    )
    script(d / "mkosi.finalize", "exit 3\n")

    result = subprocess.run(
        [str(KOSI), "-C", str(d), "--debug-shell", "build"],
        input="cat /etc/only-in-the-image\nexit\n",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    assert "opening a shell in the image" in result.stdout
    assert "image-side" in result.stdout  # the shell ran chrooted in the image
    assert result.returncode == 1 and "Traceback" not in result.stdout


def test_machine_id_written_read_only_as_mkosi(tmp_path):
    """/etc/machine-id: MachineId= as given, else "uninitialized"; always written, mode 0444
    (mkosi 27.1 does both, even for a Distribution=custom tree without systemd)."""
    d = tmp_path / "p"
    (d / "mkosi.extra/etc").mkdir(parents=True)
    (d / "mkosi.extra/usr/lib").mkdir(parents=True)
    build_project(Project([config(d, tmp_path, Format="directory", Output="a")]), args())
    machine_id = tmp_path / "out/a/etc/machine-id"
    assert machine_id.read_text() == "uninitialized\n" and machine_id.stat().st_mode & 0o777 == 0o444
    build_project(
        Project([config(d, tmp_path, Format="directory", Output="b", MachineId="b92c3f2ea8c44e8f9b7bc1f0a0c6e3a1")]),
        args(),
    )
    assert (tmp_path / "out/b/etc/machine-id").read_text() == "b92c3f2ea8c44e8f9b7bc1f0a0c6e3a1\n"
    # and /usr/lib/clock-epoch, dated SOURCE_DATE_EPOCH (systemd's lower bound for the clock)
    epoch = tmp_path / "out/b/usr/lib/clock-epoch"
    assert epoch.stat().st_mtime == 1700000000 and epoch.stat().st_size == 0


def test_efi_and_entries_srel_created_as_mkosi(tmp_path):
    """mkosi 27.1 gives every whole-OS image /efi and /boot (0500 unless a tree made them),
    /boot/loader (0700) and /boot/loader/entries.srel (0600, "type1"), bootable or not; an
    existing entries.srel is rewritten, an existing /boot keeps its mode."""
    d = tmp_path / "p"
    (d / "mkosi.skeleton/boot/loader").mkdir(parents=True)
    (d / "mkosi.skeleton/boot").chmod(0o755)
    (d / "mkosi.skeleton/boot/loader/entries.srel").write_text("type2\n")
    build_project(Project([config(d, tmp_path, Format="directory", Output="a")]), args())
    root = tmp_path / "out/a"
    assert (root / "efi").stat().st_mode & 0o7777 == 0o500 and not any((root / "efi").iterdir())
    assert (root / "boot").stat().st_mode & 0o7777 == 0o755
    assert (root / "boot/loader/entries.srel").read_text() == "type1\n"
    (d / "mkosi.skeleton/boot/loader/entries.srel").unlink()
    (d / "mkosi.skeleton/boot/loader").rmdir()
    (d / "mkosi.skeleton/boot").rmdir()
    build_project(Project([config(d, tmp_path, Format="directory", Output="b")]), args())
    root = tmp_path / "out/b"
    modes = {p: (root / p).stat().st_mode & 0o7777 for p in ("efi", "boot", "boot/loader", "boot/loader/entries.srel")}
    assert modes == {"efi": 0o500, "boot": 0o500, "boot/loader": 0o700, "boot/loader/entries.srel": 0o600}
    assert (root / "boot/loader/entries.srel").read_text() == "type1\n"
