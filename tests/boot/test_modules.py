"""KernelModules= selection: globs, last match wins, dependencies and depmod, on a real module tree."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kosi.boot import modules

CANDIDATES = [
    "kernel/drivers/block/virtio_blk.ko.xz",
    "kernel/drivers/virtio/virtio_pci.ko.xz",
    "kernel/drivers/virtio/virtio_ring.ko.xz",
    "kernel/fs/ext4/ext4.ko.xz",
    "kernel/fs/jbd2/jbd2.ko.xz",
    "kernel/drivers/net/wireless/iwlwifi.ko.xz",
    "kernel/drivers/hid/hid-generic.ko",
]


def test_last_matching_pattern_decides():
    chosen = modules.select(["drivers/virtio/*", "-virtio_ring", "ext4"], CANDIDATES)
    assert chosen == {"kernel/drivers/virtio/virtio_pci.ko.xz", "kernel/fs/ext4/ext4.ko.xz"}


def test_dash_and_underscore_are_the_same_name():
    assert modules.select(["hid_generic"], CANDIDATES) == {"kernel/drivers/hid/hid-generic.ko"}
    assert modules.select(["hid-*", "-hid_generic"], CANDIDATES) == set()


def test_default_token_expands_to_initrd_set():
    chosen = modules.select(["default", "-ext4"], CANDIDATES)
    assert "kernel/drivers/block/virtio_blk.ko.xz" in chosen
    assert "kernel/fs/ext4/ext4.ko.xz" not in chosen
    assert "kernel/drivers/net/wireless/iwlwifi.ko.xz" not in chosen


def test_dependencies_are_closed_over():
    deps = {"kernel/fs/ext4/ext4.ko.xz": ["kernel/fs/jbd2/jbd2.ko.xz"], "kernel/fs/jbd2/jbd2.ko.xz": []}
    assert modules.with_dependencies({"kernel/fs/ext4/ext4.ko.xz"}, deps) == set(deps)


# --- real modinfo and depmod on stand-in modules (ELF objects with a .modinfo section) ---

KVER = "6.1.0-test"


def fake_module(directory: Path, name: str, firmware: str | None = None) -> Path:
    """A relocatable ELF object carrying .modinfo, which modinfo and depmod read as a module."""
    source = directory / f"{name}.c"
    source.write_text(f"int {name}_data;\n")
    subprocess.run(["gcc", "-c", str(source), "-o", str(directory / f"{name}.o")], check=True)
    info = directory / f"{name}.modinfo"
    info.write_bytes((f"firmware={firmware}\0" if firmware else "").encode() + f"license=GPL\0name={name}\0".encode())
    module = directory / f"{name}.ko"
    subprocess.run(
        [
            "objcopy",
            "--add-section",
            f".modinfo={info}",
            "--set-section-flags",
            ".modinfo=alloc,readonly",
            str(directory / f"{name}.o"),
            str(module),
        ],
        check=True,
    )
    return module


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    """An image root with two modules (one asking for firmware), that firmware, an unrelated
    firmware file and an indexed modules directory."""
    if not (shutil.which("gcc") and shutil.which("objcopy")):
        pytest.skip("needs gcc and objcopy to make stand-in modules")
    root = tmp_path / "root"
    moddir = root / "usr/lib/modules" / KVER / "kernel/drivers/fake"
    moddir.mkdir(parents=True)
    shutil.copy(fake_module(tmp_path, "fake_net", "fake/net.bin"), moddir)
    shutil.copy(fake_module(tmp_path, "fake_gpu"), moddir)
    (root / "usr/lib/firmware/fake").mkdir(parents=True)
    (root / "usr/lib/firmware/fake/net.bin").write_bytes(b"fw")
    (root / "usr/lib/firmware/fake/other.bin").write_bytes(b"fw")
    (root / "lib").symlink_to("usr/lib")
    subprocess.run(["depmod", "--all", f"--basedir={root}", KVER], check=True, stderr=subprocess.DEVNULL)
    return root


def cached_tools_tree() -> Path:
    from kosi.tools.tree import location

    tree = location() / "debian-trixie"
    if not (tree / "usr/bin/kmod").exists():
        pytest.skip("no cached default tools tree (the image tests build it)")
    return tree


@pytest.mark.parametrize("where", ["host", "tools tree"])
def test_staged_modules_bring_their_firmware_and_indexes(image_root: Path, tmp_path: Path, where: str):
    """modinfo and depmod run in the sandbox, which must show them the modules (with a tools
    tree it shows nothing else of the host)."""
    tools = cached_tools_tree() if where == "tools tree" else None
    staged = tmp_path / "staged"
    assert modules.stage_modules(image_root, KVER, ["fake_net"], [], staged, tools) == 1
    moddir = staged / "usr/lib/modules" / KVER
    assert (moddir / "kernel/drivers/fake/fake_net.ko").is_file()
    assert not (moddir / "kernel/drivers/fake/fake_gpu.ko").exists()
    assert (staged / "usr/lib/firmware/fake/net.bin").read_bytes() == b"fw"  # modinfo's firmware field
    assert not (staged / "usr/lib/firmware/fake/other.bin").exists()
    assert (moddir / "modules.dep").read_text() == "kernel/drivers/fake/fake_net.ko:\n"  # depmod ran on the tree
    assert not (staged / "lib").exists() and not (tmp_path / "staged.depmod.d").exists()


def test_filtering_the_image_keeps_selected_modules_and_firmware_globs(image_root: Path):
    removed = modules.filter_image_modules(image_root, KVER, ["fake_gpu"], ["fake/other*"], None)
    moddir = image_root / "usr/lib/modules" / KVER / "kernel/drivers/fake"
    assert removed == 1 and sorted(p.name for p in moddir.iterdir()) == ["fake_gpu.ko"]
    assert sorted(p.name for p in (image_root / "usr/lib/firmware/fake").iterdir()) == ["other.bin"]


def test_host_token_is_the_modules_loaded_on_the_host(tmp_path):
    proc = tmp_path / "modules"
    proc.write_text("ext4 1089536 1 - Live 0x0000000000000000\nhid_generic 12288 0 - Live 0x0000000000000000\n")
    loaded = modules.host_modules(proc)
    assert loaded == ["ext4", "hid_generic"]
    chosen = modules.select(["host", "-ext4"], CANDIDATES, loaded=loaded)
    assert chosen == {"kernel/drivers/hid/hid-generic.ko"}
    assert modules.host_modules(tmp_path / "missing") == []
