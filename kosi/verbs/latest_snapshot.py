"""`kosi latest-snapshot`: the newest snapshot of the configured distribution's archive, for Snapshot=."""

from __future__ import annotations


def run(args) -> int:
    from kosi.config.loader import load_project
    from kosi.installers.base import package_manager_for

    config = load_project(args).main
    print(package_manager_for(config).latest_snapshot(config))
    return 0
