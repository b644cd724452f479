"""`kosi vm`: boot the image in qemu; words after `--` are passed to qemu."""

from __future__ import annotations


def run(args) -> int:
    from kosi.config.loader import load_project
    from kosi.run.qemu import start_vm

    return start_vm(load_project(args), args)
