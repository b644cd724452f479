"""`kosi shell`: a shell (or the command given after the verb) in the image with systemd-nspawn."""

from __future__ import annotations


def run(args) -> int:
    from kosi.config.loader import load_project
    from kosi.run.nspawn import start_container

    return start_container(load_project(args), args, boot=False)
