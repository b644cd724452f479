"""The host's distribution and release, from its os-release: what Distribution= and
Release= default to, what [Match] compares against while they are unset, and what the
specifiers see. One definition for all of them.
"""

from __future__ import annotations

import functools
from pathlib import Path

from kosi.distributions import by_os_release_id, get


def read_os_release(root: Path = Path("/")) -> dict[str, str]:
    for candidate in ("etc/os-release", "usr/lib/os-release"):
        try:
            text = (root / candidate).read_text()
        except OSError:
            continue
        fields = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                fields[key.strip()] = value.strip().strip("\"'")
        return fields
    return {}


@functools.lru_cache(maxsize=1)
def host_distribution() -> tuple[str, str]:
    """(Distribution=, Release=) of the host; ("custom", "") when kosi does not support it."""
    fields = read_os_release()
    # Only ID counts: ID_LIKE alone does not make a derivative supported, its repositories differ.
    name = by_os_release_id(fields.get("ID", ""))
    if name is None:
        return "custom", ""
    if fields.get("ID") == "opensuse-tumbleweed":  # VERSION_ID is the snapshot's date (mkosi 27.1 agrees)
        return name, "tumbleweed"
    distribution = get(name)
    return name, fields.get(distribution.os_release_release_field) or distribution.default_release
