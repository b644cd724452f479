"""Stale mirrors: Release files past their Valid-Until date.

mkosi 27.1 builds from a mirror whose Release files have expired; so does kosi, with one
warning line per expired repository naming the mirror, the suite and how long ago it expired.
(Snapshots are exempt: every snapshot's Release files expired long ago, by design.)
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from pathlib import Path

#: what `apt-get indextargets --format` prints per index file (fields split by INDEXTARGETS_SEP)
INDEXTARGETS_FORMAT = "$(FILENAME)\t$(REPO_URI)\t$(RELEASE)\t$(METAKEY)"


@dataclass(frozen=True)
class Expired:
    uri: str
    suite: str
    valid_until: float
    age: float  # seconds since valid_until

    def message(self) -> str:
        return (
            f"repository {self.uri.rstrip('/')} {self.suite}: its Release file expired {format_age(self.age)} ago "
            "(a stale mirror?); building from it anyway, as mkosi does"
        )


def format_age(seconds: float) -> str:
    minutes = int(seconds // 60)
    for unit, size in (("day", 1440), ("hour", 60), ("minute", 1)):
        if minutes >= size or unit == "minute":
            count = minutes // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    raise AssertionError("unreachable")


def valid_until(release: str) -> float | None:
    """The Valid-Until date of a Release/InRelease text as a Unix time, None when it has none."""
    match = re.search(r"^Valid-Until:\s*(.+?)\s*$", release, re.MULTILINE)
    if not match:
        return None
    try:
        return email.utils.parsedate_to_datetime(match.group(1)).timestamp()
    except (TypeError, ValueError):
        return None


def release_files(indextargets: str, lists: Path) -> dict[tuple[str, str], Path]:
    """(repository URI, suite) -> its InRelease (or Release) file in the lists directory, from
    apt-get indextargets' output in INDEXTARGETS_FORMAT."""
    found: dict[tuple[str, str], Path] = {}
    for line in indextargets.splitlines():
        fields = line.split("\t")
        if len(fields) != 4:
            continue
        filename, uri, suite, metakey = fields
        name = Path(filename).name
        mangled = metakey.replace("/", "_")
        if not mangled or mangled not in name or (uri, suite) in found:
            continue
        prefix = name[: name.index(mangled)]
        for candidate in (lists / f"{prefix}InRelease", lists / f"{prefix}Release"):
            if candidate.is_file():
                found[(uri, suite)] = candidate
                break
    return found


def expired(indextargets: str, lists: Path, now: float, exempt: set[tuple[str, str]]) -> list[Expired]:
    """The repositories whose Release file is past Valid-Until; `exempt` holds (URI, suite)
    pairs (URIs without the trailing slash) not to check, e.g. snapshots."""
    result = []
    for (uri, suite), path in sorted(release_files(indextargets, lists).items()):
        if (uri.rstrip("/"), suite) in exempt:
            continue
        until = valid_until(path.read_text(errors="replace"))
        if until is not None and until < now:
            result.append(Expired(uri, suite, until, now - until))
    return result
