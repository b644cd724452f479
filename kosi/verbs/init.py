"""`kosi init`: a tmpfiles.d drop-in that ages out unused files of the package cache.

systemd-tmpfiles-clean.timer then removes downloaded packages nobody used for 90 days,
so the shared cache does not grow forever. Running init again rewrites the same file.
"""

from __future__ import annotations

import os
from pathlib import Path

from kosi import log

MAX_AGE = "90d"


def dropin_path() -> Path:
    if os.getuid() == 0:
        return Path("/etc/tmpfiles.d/kosi.conf")
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "user-tmpfiles.d" / "kosi.conf"


def dropin_text(cache: Path) -> str:
    # `e`: only clean up an existing directory by age, never create it. `am:`: age by last
    # access or modification only, so a chmod or copy (which bump ctime) does not keep a file.
    return (
        "# Written by `kosi init`: remove package cache files unused for " + MAX_AGE + ".\n"
        f"e {cache} - - - am:{MAX_AGE}\n"
    )


def install(path: Path, cache: Path) -> bool:
    """Write the drop-in; False when it was already there unchanged."""
    text = dropin_text(cache)
    if path.is_file() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return True


def run(args) -> int:
    from kosi.pipeline.cache import default_state_directory

    path = dropin_path()
    cache = default_state_directory() / "packages"
    if install(path, cache):
        log.info(f"wrote {path}: files in {cache} unused for {MAX_AGE} are removed by systemd-tmpfiles")
    else:
        log.info(f"{path} is already set up")
    return 0
