"""Pure logic of a disk with a verity root or /usr: which hash goes on the kernel command line
and what that command line looks like (the real build and boot: tests/run/test_verity_boot.py)."""

from __future__ import annotations

from pathlib import Path

from kosi.boot import steps
from kosi.config.cli_args import parse_command_line
from kosi.config.loader import load_project
from kosi.outputs.disk import verity_hash_argument
from kosi.pipeline.context import Context


def loaded(directory: Path, conf: str) -> Context:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "mkosi.conf").write_text(conf)
    config = load_project(parse_command_line(["-C", str(directory), "build"])).main
    return Context(config=config, workspace=directory / "ws", package_cache=directory / "cache")


def table(*entries: tuple[str, str | None]) -> list[dict]:
    return [{"type": kind, "roothash": roothash, "uuid": str(i)} for i, (kind, roothash) in enumerate(entries)]


def test_root_hash_wins_over_usr_hash_and_other_partitions_do_not_count(tmp_path):
    config = loaded(tmp_path, "[Distribution]\nArchitecture=x86-64\n").config
    both = table(("esp", None), ("usr-x86-64", "u" * 64), ("root-x86-64", "r" * 64), ("root-x86-64-verity", "r" * 64))
    assert verity_hash_argument(config, both) == f"roothash={'r' * 64}"
    assert verity_hash_argument(config, table(("usr-x86-64", "u" * 64))) == f"usrhash={'u' * 64}"
    # a verity /var, or another architecture's root, is no root hash of this image
    assert verity_hash_argument(config, table(("var", "v" * 64), ("root-arm64", "a" * 64))) is None
    assert verity_hash_argument(config, table(("root-x86-64", None))) is None


def test_command_line_gets_the_hash_and_a_verity_root_no_rw(tmp_path):
    context = loaded(tmp_path / "a", "[Content]\nKernelCommandLine=quiet\n")
    context.state.verity_hash = "roothash=abc"
    assert steps.kernel_command_line(context) == "roothash=abc console=ttyS0 console=tty0 quiet"
    context.state.verity_hash = "usrhash=abc"  # the root itself stays writable
    assert steps.kernel_command_line(context) == "usrhash=abc console=ttyS0 console=tty0 rw quiet"
