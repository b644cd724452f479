"""KernelModules=, KernelModulesExclude=, FirmwareFiles=, FirmwareExclude= and their `re:` items
choose the same modules and firmware as mkosi 27.1: its own filters (run from the oracle's
package, in a process of their own) and kosi's get the same tree and the same settings, and
must keep the same files."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import oracle
import pytest

from kosi.boot.modules import firmware_files, select
from kosi.errors import KosiError

KVER = "6.12.0-test"
#: Modules where Debian's kernel puts them, compressed the ways kernels are, with "-" and "_"
#: names, and out-of-tree ones (updates/, extra/).
MODULES = (
    "kernel/drivers/block/loop.ko.xz", "kernel/drivers/block/virtio_blk.ko.xz", "kernel/drivers/virtio/virtio.ko.xz",
    "kernel/drivers/virtio/virtio_pci.ko.xz", "kernel/fs/ext4/ext4.ko.xz", "kernel/fs/btrfs/btrfs.ko.xz",
    "kernel/drivers/gpu/drm/i915/i915.ko.xz", "kernel/drivers/net/virtio_net.ko.zst", "kernel/drivers/md/dm-crypt.ko",
    "kernel/drivers/scsi/sd_mod.ko.xz", "kernel/net/ipv4/tunnel4.ko", "updates/dkms/foo.ko", "extra/bar.ko.gz",
)  # fmt: skip

#: (KernelModules=, KernelModulesExclude=) as the summary holds them: `re:` items from the older
#: KernelModulesInclude= spelling, KernelModulesExclude= always `re:` items.
SELECTIONS = [
    (["loop"], []), (["block/loop"], []), (["/drivers/block/loop"], []), (["/kernel/drivers/block/loop"], []),
    (["drivers/virtio/"], []), (["drivers/virtio/*"], []), (["dm-crypt"], []), (["dm_crypt"], []),
    (["md/dm_crypt"], []), (["scsi/sd-mod"], []), (["virtio*"], []), (["*"], []), (["*", "-virtio*"], []),
    (["loop", "-loop"], []), (["-loop", "loop"], []), (["net/"], []), (["/net/"], []), (["block/"], []),
    (["/block/"], []), (["fs/*"], []), (["/fs/*"], []), (["*/ext4"], []), (["ext4.ko"], []), (["drivers"], []),
    (["/drivers"], []), (["/kernel/fs/"], []), (["extra/"], []), (["/extra/bar"], []), (["foo"], []),
    (["/updates/dkms/foo"], []), (["Loop"], []), (["lo?p"], []), (["[lm]oop"], []),
    (["re:virtio"], []), (["re:^drivers"], []), (["re:kernel/fs"], []), (["re:fs/ext"], []), (["re:loop.ko"], []),
    (["re:loop$"], []), (["re:^bar"], []), (["re:extra"], []), (["re:updates"], []), (["re:sd-mod"], []),
    (["re:sd_mod"], []), (["re:i915", "-i915"], []), (["-virtio*", "re:virtio"], []),
    (["i915", "re:virtio", "-virtio*"], []),
    ([], ["re:virtio"]), ([], ["re:sd-mod"]), (["virtio*"], ["re:net"]), (["re:virtio"], ["re:net"]),
    (["re:.*"], ["re:virtio"]), (["*"], ["re:.*"]), ([], []),
]  # fmt: skip

ORACLE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from mkosi.kmod import filter_kernel_modules
    root, kver, selections = Path(sys.argv[1]), sys.argv[2], json.loads(sys.stdin.read())
    print(json.dumps([sorted(filter_kernel_modules(root, kver, include=i, exclude=e)) for i, e in selections]))
    """
)


def make_tree(root: Path) -> None:
    for module in MODULES:
        path = root / "usr/lib/modules" / KVER / module
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def name(relative: str) -> str:
    return relative.rsplit("/", 1)[-1].split(".ko")[0].replace("_", "-")


@pytest.fixture(scope="module")
def mkosi_choices(tmp_path_factory) -> list[list[str]]:
    root = tmp_path_factory.mktemp("modules")
    make_tree(root)
    _, env = oracle.mkosi_command(oracle.ensure_oracle())
    result = subprocess.run(
        [sys.executable, "-c", ORACLE_SCRIPT, str(root), KVER],
        input=json.dumps(SELECTIONS),
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return [sorted({name(m) for m in chosen}) for chosen in json.loads(result.stdout)]


@pytest.mark.parametrize("index", range(len(SELECTIONS)), ids=lambda i: repr(SELECTIONS[i]))
def test_same_modules_as_mkosi(index: int, mkosi_choices) -> None:
    include, exclude = SELECTIONS[index]
    ours = sorted({name(m) for m in select(include, MODULES, exclude)})
    assert ours == mkosi_choices[index], f"KernelModules={include} KernelModulesExclude={exclude}"


def test_an_invalid_regular_expression_is_one_line() -> None:
    with pytest.raises(KosiError, match=r"KernelModules=: invalid regular expression '\['"):
        select(["re:["], MODULES)


FIRMWARE = (
    "cxgb4/bcm8483.bin.xz", "iwlwifi-8000C-36.ucode.zst", "intel/ibt-11-5.sfi", "amdgpu/navi10_gpu_info.bin.xz",
    "rtl_nic/rtl8168g-2.fw",
)  # fmt: skip
#: what the chosen modules ask for (modinfo's firmware field), without compression suffix
WANTED = ("iwlwifi-8000C-36.ucode", "intel/ibt-11-5.sfi")

#: (FirmwareFiles=, FirmwareExclude=)
FIRMWARE_SELECTIONS = [
    ([], []), (["bcm8483.*"], []), (["cxgb4/bcm8483.bin"], []), (["cxgb4/"], []), (["/cxgb4/bcm8483.bin"], []),
    (["rtl8168g-2.fw"], []), (["rtl_nic/*"], []), (["rtl-nic/*"], []), (["*", "-amdgpu/*"], []),
    (["-iwlwifi*"], []), (["re:iwl"], []), (["re:^intel"], []), (["re:ucode$"], []), (["re:ucode.zst"], []),
    ([], ["re:iwl"]), (["re:iwl"], ["re:iwl"]), (["*"], ["re:.*"]), (["re:navi"], ["re:amd"]),
]  # fmt: skip

FIRMWARE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from mkosi.kmod import filter_firmware
    root, wanted, selections = Path(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.stdin.read())
    files = {Path(p) for p in wanted}
    print(json.dumps([sorted(map(str, filter_firmware(root, set(files), include=i, exclude=e))) for i, e in selections]))
    """
)


@pytest.fixture(scope="module")
def firmware_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("firmware")
    for name in FIRMWARE:
        path = root / "usr/lib/firmware" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    return root


@pytest.fixture(scope="module")
def mkosi_firmware(firmware_root) -> list[list[str]]:
    # mkosi is handed the files the modules want, kosi their names: the same set
    wanted = [f"usr/lib/firmware/{f}" for f in FIRMWARE if any(f.startswith(w) for w in WANTED)]
    _, env = oracle.mkosi_command(oracle.ensure_oracle())
    result = subprocess.run(
        [sys.executable, "-c", FIRMWARE_SCRIPT, str(firmware_root), json.dumps(wanted)],
        input=json.dumps(FIRMWARE_SELECTIONS),
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


@pytest.mark.parametrize("index", range(len(FIRMWARE_SELECTIONS)), ids=lambda i: repr(FIRMWARE_SELECTIONS[i]))
def test_same_firmware_as_mkosi(index: int, firmware_root: Path, mkosi_firmware) -> None:
    include, exclude = FIRMWARE_SELECTIONS[index]
    ours = sorted(
        str(p.relative_to(firmware_root)) for p in firmware_files(firmware_root, set(WANTED), include, exclude)
    )
    assert ours == mkosi_firmware[index], f"FirmwareFiles={include} FirmwareExclude={exclude}"
