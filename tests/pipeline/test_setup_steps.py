"""The image-setup steps on a small fake image root: the host's real systemd tools and depmod run
through the sandbox and their results are checked in the root; a missing tool skips the step."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from kosi.config.cli_args import Args
from kosi.config.model import Config
from kosi.pipeline import depmod, system_config, tools
from kosi.pipeline.context import Context
from kosi.pipeline.tools import find_tool

EPOCH_DAYS = 12345


def make_context(tmp_path: Path, tools_tree: Path | None = None, **values) -> Context:
    values.setdefault("CacheDirectory", tmp_path / "cache")
    values.setdefault("SourceDateEpoch", EPOCH_DAYS * 86400)
    ws = tmp_path / "ws"
    root = ws / "root"
    root.mkdir(parents=True)
    for name in ("bin", "sbin", "lib"):
        (root / name).symlink_to(f"usr/{name}")
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/sbin").mkdir(parents=True)
    (root / "etc").mkdir()
    return Context(
        config=Config(values, directory=tmp_path),
        workspace=ws,
        package_cache=tmp_path / "pkg",
        tools=tools_tree,
        args=Args(force=0),
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def run_step(step, context):
    reason = step.skip(context)
    assert reason is None, reason
    step.run(context)


def needs(program: str):
    return pytest.mark.skipif(find_tool(program, None) is None, reason=f"{program} is not installed on the host")


@needs("systemd-sysusers")
def test_sysusers_creates_the_user_with_source_date_epoch(tmp_path):
    context = make_context(tmp_path)
    write(context.root / "usr/lib/sysusers.d/kosi.conf", 'u kositest - "kosi test user" /var/lib/kositest\n')
    run_step(system_config.Sysusers(), context)
    passwd = (context.root / "etc/passwd").read_text()
    assert any(line.startswith("kositest:x:") and "kosi test user" in line for line in passwd.splitlines())
    shadow = {line.split(":")[0]: line.split(":") for line in (context.root / "etc/shadow").read_text().splitlines()}
    assert shadow["kositest"][2] == str(EPOCH_DAYS)  # "last changed" comes from SOURCE_DATE_EPOCH


@needs("systemd-tmpfiles")
def test_tmpfiles_creates_the_directory_and_leaves_excluded_prefixes(tmp_path):
    context = make_context(tmp_path)
    write(
        context.root / "usr/lib/tmpfiles.d/kosi.conf",
        "d /var/lib/kosi-state 0750 root root -\nd /run/kosi-runtime 0755 root root -\n",
    )
    run_step(system_config.Tmpfiles(), context)
    state = context.root / "var/lib/kosi-state"
    assert state.is_dir() and (state.stat().st_mode & 0o777) == 0o750
    assert not (context.root / "run/kosi-runtime").exists()


@needs("systemd-hwdb")
def test_hwdb_writes_the_database_into_usr(tmp_path):
    context = make_context(tmp_path)
    write(
        context.root / "usr/lib/udev/hwdb.d/60-kosi.hwdb", "evdev:name:KosiTestKeyboard*\n KEYBOARD_KEY_01=reserved\n"
    )
    run_step(system_config.Hwdb(), context)
    database = context.root / "usr/lib/udev/hwdb.bin"
    assert database.stat().st_size > 0 and b"KosiTestKeyboard" in database.read_bytes()
    assert not (context.root / "etc/udev/hwdb.bin").exists()


@needs("systemctl")
def test_preset_all_enables_the_preset_unit(tmp_path):
    context = make_context(tmp_path)
    write(context.root / "usr/bin/systemctl", "")  # the image ships systemctl; the host's is what runs
    write(
        context.root / "usr/lib/systemd/system/kosi-test.service",
        "[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n",
    )
    write(
        context.root / "usr/lib/systemd/system/kosi-off.service",
        "[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n",
    )
    write(context.root / "usr/lib/systemd/system-preset/90-kosi.preset", "enable kosi-test.service\ndisable *\n")
    run_step(system_config.Presets(), context)
    wants = context.root / "etc/systemd/system/multi-user.target.wants"
    # Debian's systemd 252 names the unit by /lib, newer ones by /usr/lib; both are the same file here.
    assert os.readlink(wants / "kosi-test.service") in (
        "/usr/lib/systemd/system/kosi-test.service",
        "/lib/systemd/system/kosi-test.service",
    )
    assert not os.path.lexists(wants / "kosi-off.service")


@needs("systemd-firstboot")
def test_firstboot_writes_hostname_and_credentials(tmp_path):
    context = make_context(tmp_path, Hostname="kosi-box", Timezone="Europe/Berlin")
    write(context.root / "usr/share/zoneinfo/Europe/Berlin", "TZif")
    run_step(system_config.Firstboot(), context)
    assert (context.root / "etc/hostname").read_text().strip() == "kosi-box"
    assert os.readlink(context.root / "etc/localtime").endswith("zoneinfo/Europe/Berlin")
    assert (context.root / "usr/lib/credstore/system.hostname").read_text() == "kosi-box"


def test_nothing_to_do_is_a_skip_reason(tmp_path):
    context = make_context(tmp_path)
    assert system_config.Sysusers().skip(context) == "image has no /usr/lib/sysusers.d"
    assert system_config.Hwdb().skip(context) == "image has no /usr/lib/udev/hwdb.d"
    assert depmod.Depmod().skip(context) == "image has no kernel modules"


def test_missing_tool_skips_with_the_reason(tmp_path, monkeypatch):
    empty = tmp_path / "empty-host"
    empty.mkdir()
    monkeypatch.setattr(tools, "HOST", empty)  # a host without udev: no systemd-hwdb anywhere
    tree = tmp_path / "tools-tree"
    (tree / "usr/bin").mkdir(parents=True)
    context = make_context(tmp_path, tools_tree=tree)
    write(context.root / "usr/lib/udev/hwdb.d/60-kosi.hwdb", "evdev:name:X*\n KEYBOARD_KEY_01=reserved\n")
    assert (
        system_config.Hwdb().skip(context)
        == "systemd-hwdb not found on the host or in the tools tree (Debian package udev)"
    )
    context.tools = None
    assert system_config.Hwdb().skip(context) == "systemd-hwdb not found on the host (Debian package udev)"


def test_tool_lookup_prefers_the_tools_tree_and_reads_its_symlinks_inside_it(tmp_path, monkeypatch):
    host = tmp_path / "host"
    write(host / "usr/sbin/depmod", "").chmod(0o755)
    monkeypatch.setattr(tools, "HOST", host)
    tree = tmp_path / "tree"
    assert find_tool("depmod", tree) == tools.Tool("depmod", "/usr/sbin/depmod", None)  # not in the tree: host
    write(tree / "usr/bin/kmod", "").chmod(0o755)
    (tree / "usr/sbin").mkdir(parents=True)
    (tree / "usr/sbin/depmod").symlink_to("/usr/bin/kmod")  # absolute: means the tree's kmod, not the host's
    assert find_tool("depmod", tree) == tools.Tool("depmod", "/usr/sbin/depmod", tree)
    (tree / "usr/bin/kmod").chmod(0o644)
    assert find_tool("depmod", tree).tools is None


# --- depmod on real (tiny) ELF modules: b needs a symbol a exports ---

MODULE_A = """int kosi_a_fn(void) { return 1; }
__attribute__((section(".modinfo"), used)) static const char info[] = "license=GPL";
__attribute__((section("__ksymtab_strings"), used)) static const char ksym[] = "kosi_a_fn";
"""
MODULE_B = """extern int kosi_a_fn(void);
int kosi_b_fn(void) { return kosi_a_fn(); }
__attribute__((section(".modinfo"), used)) static const char info[] = "license=GPL";
"""
KVER = "9.9.9-kosi"


def compile_module(source: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    c = target.with_suffix(".c")
    c.write_text(source)
    subprocess.run(["gcc", "-c", str(c), "-o", str(target)], check=True)
    c.unlink()


@pytest.fixture
def kernel_context(tmp_path):
    if shutil.which("gcc") is None or find_tool("depmod", None) is None:
        pytest.skip("needs gcc and depmod on the host")
    context = make_context(tmp_path)
    moddir = context.root / "usr/lib/modules" / KVER
    compile_module(MODULE_A, moddir / "kernel/a.ko")
    compile_module(MODULE_B, moddir / "kernel/b.ko")
    subprocess.run(["xz", str(moddir / "kernel/b.ko")], check=True)  # compressed like Debian's
    for name in depmod.DEPMOD_LISTS:
        write(moddir / name, "")
    write(context.root / "boot" / f"System.map-{KVER}", "ffffffff81000000 T _stext\n")
    return context


def test_depmod_indexes_each_kernel_with_the_images_configuration(kernel_context):
    context = kernel_context
    moddir = context.root / "usr/lib/modules" / KVER
    assert depmod.stale_index(context.root, KVER) == "no modules.dep"
    run_step(depmod.Depmod(), context)
    assert (moddir / "modules.dep").read_text() == "kernel/b.ko.xz: kernel/a.ko\nkernel/a.ko:\n"
    assert "alias symbol:kosi_a_fn a" in (moddir / "modules.symbols").read_text()
    assert not (context.workspace / "depmod.d").exists()
    assert depmod.Depmod().skip(context) == f"module indexes of {KVER} are up to date"

    # A second a.ko in extra/: depmod's default order prefers it, the image's depmod.d does not.
    compile_module(MODULE_A, moddir / "extra/a.ko")
    assert depmod.stale_index(context.root, KVER) == "extra/a.ko is newer than modules.dep"
    run_step(depmod.Depmod(), context)
    assert (moddir / "modules.dep").read_text().splitlines()[0] == "kernel/b.ko.xz: extra/a.ko"
    write(context.root / "etc/depmod.d/kosi.conf", "search built-in extra\n")
    assert depmod.stale_index(context.root, KVER) == "kosi.conf is newer than modules.dep"
    run_step(depmod.Depmod(), context)
    assert (moddir / "modules.dep").read_text().splitlines()[0] == "kernel/b.ko.xz: kernel/a.ko"
    assert depmod.stale_index(context.root, KVER) is None  # extra/a.ko is unlisted but known by name


def test_depmod_reruns_when_modules_come_or_go_whatever_their_mtime(kernel_context):
    context = kernel_context
    moddir = context.root / "usr/lib/modules" / KVER
    run_step(depmod.Depmod(), context)
    old = time.time() - 86400 * 365
    compile_module(MODULE_A.replace("kosi_a_fn", "kosi_c_fn"), moddir / "kernel/c.ko")
    os.utime(moddir / "kernel/c.ko", (old, old))  # copied in with its original, older mtime
    assert depmod.stale_index(context.root, KVER).startswith("0 modules removed and 1 added")
    run_step(depmod.Depmod(), context)
    assert "kernel/c.ko:" in (moddir / "modules.dep").read_text().splitlines()
    (moddir / "kernel/b.ko.xz").unlink()
    assert depmod.stale_index(context.root, KVER).startswith("1 modules removed")
    run_step(depmod.Depmod(), context)
    assert "b.ko" not in (moddir / "modules.dep").read_text()


@pytest.mark.image
def test_tools_come_from_the_tools_tree(kernel_context, default_tools_tree):
    context = kernel_context
    context.tools = default_tools_tree
    assert find_tool("depmod", context.tools).tools == default_tools_tree
    run_step(depmod.Depmod(), context)
    # kmod 33 and later (trixie's, not bookworm's 30) also write modules.weakdep: the tree's depmod ran.
    assert (context.root / "usr/lib/modules" / KVER / "modules.weakdep").exists()
    write(context.root / "usr/lib/sysusers.d/kosi.conf", "u kositest - -\n")
    run_step(system_config.Sysusers(), context)
    assert "kositest:x:" in (context.root / "etc/passwd").read_text()
