"""Pure logic of layered images: Overlay=yes reduces the root to its changes (with whiteouts),
extension images refuse files outside their directories, packages need a base tree."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kosi.config.model import Config
from kosi.errors import KosiError
from kosi.outputs import extension
from kosi.pipeline.context import Context
from kosi.pipeline.layers import BaseView, check_layers, reduce_to_changes, write_extension_release


def tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_overlay_keeps_added_and_changed_and_whites_out_deleted(tmp_path):
    base, root = tmp_path / "base", tmp_path / "root"
    files = {
        "usr/bin/same": "same",
        "usr/bin/changed": "old",
        "usr/lib/gone": "x",
        "etc/keep/same.conf": "1",
        "usr/share/dir/a": "a",
    }
    tree(base, files)
    tree(root, {**files, "usr/bin/changed": "new", "usr/bin/added": "added"})
    os.unlink(root / "usr/lib/gone")
    (root / "usr/share/dir/a").unlink()
    (root / "usr/share/dir").rmdir()
    os.symlink("same", base / "usr/bin/link")
    os.symlink("changed", root / "usr/bin/link")  # a retargeted symlink is a change
    reduce_to_changes(root, BaseView([base]))
    remaining = sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir() or p.is_symlink())
    assert remaining == ["usr/bin/added", "usr/bin/changed", "usr/bin/link", "usr/lib/gone", "usr/share/dir"]
    for whiteout in ("usr/lib/gone", "usr/share/dir"):
        st = os.lstat(root / whiteout)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert not (root / "etc").exists()  # nothing changed below: the directory goes too


def test_later_base_tree_wins(tmp_path):
    lower, upper, root = tmp_path / "lower", tmp_path / "upper", tmp_path / "root"
    tree(lower, {"usr/f": "lower"})
    tree(upper, {"usr/f": "upper"})
    tree(root, {"usr/f": "upper"})
    reduce_to_changes(root, BaseView([lower, upper]))
    assert not (root / "usr").exists()


def context(tmp_path: Path, **values) -> Context:
    config = Config({"Distribution": "debian", "Release": "trixie", **values}, directory=tmp_path)
    return Context(config=config, workspace=tmp_path / "ws", package_cache=tmp_path / "cache")


@pytest.mark.parametrize("fmt,stray", [("sysext", "etc/stray.conf"), ("confext", "usr/bin/stray")])
def test_file_outside_the_extension_is_one_line_naming_it(tmp_path, fmt, stray):
    ctx = context(tmp_path, Format=fmt)
    tree(
        ctx.root,
        {
            stray: "x",
            "var/lib/dpkg/status": "bookkeeping is fine",
            "usr/lib/ok" if fmt == "sysext" else "etc/ok": "fine",
        },
    )
    writer = {"sysext": extension.SysextOutput, "confext": extension.ConfextOutput}[fmt](ctx)
    with pytest.raises(KosiError) as failure:
        writer.check_content()
    message = str(failure.value)
    assert f"/{stray}" in message and f"Format={fmt}" in message and "\n" not in message


def test_definitions_follow_verity():
    plain = extension.definitions(["usr/", "opt/"], verity=False)
    assert list(plain) == ["10-root.conf"] and "CopyFiles=/usr/\nCopyFiles=/opt/" in plain["10-root.conf"]
    assert "Verity" not in plain["10-root.conf"]
    signed = extension.definitions(["etc/"], verity=True)
    assert "Verity=data" in signed["10-root.conf"] and "Type=root-verity-sig" in signed["30-root-verity-sig.conf"]


def test_verity_auto_needs_key_and_certificate(tmp_path):
    assert not extension.verity_wanted(Config({"Verity": "auto"}))
    key, crt = tmp_path / "k", tmp_path / "c"
    assert extension.verity_wanted(Config({"Verity": "auto", "VerityKey": key, "VerityCertificate": crt}))
    assert extension.verity_wanted(Config({"Verity": "hash"}))
    assert not extension.verity_wanted(Config({"Verity": "disabled", "VerityKey": key, "VerityCertificate": crt}))


def test_extension_release_fields(tmp_path):
    ctx = context(
        tmp_path,
        Format="confext",
        Output="conf",
        ImageId="myconf",
        ImageVersion="3",
        Environment=[{"CONFEXT_SCOPE": "system"}],
    )
    tree(ctx.root, {"usr/lib/os-release": 'ID=debian\nVERSION_ID="13"\n'})
    write_extension_release(ctx)
    text = (ctx.root / "etc/extension-release.d/extension-release.conf").read_text()
    assert text.splitlines() == [
        "ID=debian",
        "VERSION_ID=13",
        "CONFEXT_ID=myconf",
        "CONFEXT_VERSION_ID=3",
        "CONFEXT_SCOPE=system",
        "ARCHITECTURE=x86-64",
    ]


def test_packages_in_a_layer_need_base_trees():
    with pytest.raises(KosiError, match="BaseTrees="):
        check_layers(Config({"Format": "sysext", "Packages": ["btrfs-progs"]}))
    check_layers(Config({"Format": "sysext", "Packages": ["btrfs-progs"], "BaseTrees": [Path("/base")]}))
    with pytest.raises(KosiError, match="Overlay=yes"):
        check_layers(Config({"Format": "tar", "Overlay": True, "Packages": ["x"]}))
