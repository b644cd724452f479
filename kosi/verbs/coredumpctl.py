"""`kosi coredumpctl`: coredumpctl on the image; words after the verb are appended."""

from __future__ import annotations


def run(args) -> int:
    from kosi.run.journal import run_on_image

    return run_on_image(args, "coredumpctl")
