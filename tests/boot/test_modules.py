"""KernelModules= selection: globs, last match wins, dependencies and depmod, on a real module tree."""

from __future__ import annotations

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

