"""Host paths that apt's sources name: local repositories (file: and copy: URIs) and keyrings.

A sources entry from mkosi.sandbox/ (`deb [signed-by=/srv/keys/repo.gpg] file:/srv/repo ./`)
was written for a machine whose file system apt sees as a whole; in kosi's package manager
sandbox almost nothing of the host is visible. These are the paths to show it, read-only.
Both formats are read: one-line `.list` files (and sources.list) and deb822 `.sources` files.
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

#: URI schemes apt reads from the local file system
LOCAL_SCHEMES = ("file", "copy")
#: one-line format: type, optional [options], URI, suite, components
ONE_LINE = re.compile(r"^\s*(deb|deb-src)\s+(?:\[(?P<options>[^\]]*)\]\s+)?(?P<uri>\S+)")


def local_path(uri: str) -> Path | None:
    """The directory a file:/ or copy:/ URI names (file:/x, file:///x, file://localhost/x)."""
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme not in LOCAL_SCHEMES or parsed.netloc not in ("", "localhost"):
        return None
    path = urllib.parse.unquote(parsed.path)
    return Path(path) if path.startswith("/") else None


def keyring_paths(signed_by: str) -> list[Path]:
    """Signed-By names keyring files, key fingerprints or (deb822) an inline key block."""
    if "BEGIN PGP" in signed_by:
        return []
    return [Path(item) for item in re.split(r"[\s,]+", signed_by) if item.startswith("/")]


def one_line_entries(text: str) -> list[tuple[str, str]]:
    """(URI, Signed-By) of every entry of a one-line sources file."""
    entries = []
    for line in text.splitlines():
        m = ONE_LINE.match(line.split("#", 1)[0])
        if not m:
            continue
        options = dict(re.findall(r"([\w-]+)=(\S+)", m.group("options") or ""))
        entries.append((m.group("uri"), options.get("signed-by", "")))
    return entries


def deb822_entries(text: str) -> list[tuple[str, str]]:
    """(URI, Signed-By) of every enabled stanza of a deb822 .sources file."""
    entries = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        name = None
        for line in stanza.splitlines():
            if line.startswith("#"):
                continue
            if line[:1] in (" ", "\t") and name:  # continuation (an inline key, a long URI list)
                fields[name] += "\n" + line.strip()
            elif ":" in line:
                name, value = line.split(":", 1)
                name = name.strip().lower()
                fields[name] = value.strip()
        if fields.get("enabled", "yes").lower() in ("no", "false", "0"):
            continue
        for uri in fields.get("uris", "").split():
            entries.append((uri, fields.get("signed-by", "")))
    return entries


def source_entries(etc_apt: Path) -> list[tuple[str, str]]:
    entries = []
    files = [etc_apt / "sources.list", *sorted((etc_apt / "sources.list.d").glob("*.list"))]
    for path in files:
        if path.is_file():
            entries += one_line_entries(path.read_text(errors="replace"))
    for path in sorted((etc_apt / "sources.list.d").glob("*.sources")):
        if path.is_file():
            entries += deb822_entries(path.read_text(errors="replace"))
    return entries


def host_paths(etc_apt: Path) -> list[Path]:
    """Existing host paths the sources in `etc_apt` read: local repositories and keyrings
    outside /etc/apt (which the sandbox gets from `etc_apt` itself) and /usr (the tools
    tree's or the host's, already there)."""
    paths: list[Path] = []
    for uri, signed_by in source_entries(etc_apt):
        candidates = [local_path(uri), *keyring_paths(signed_by)]
        for path in candidates:
            if path is None or path.is_relative_to("/etc/apt") or path.is_relative_to("/usr"):
                continue
            if path.exists() and path not in paths:
                paths.append(path)
    return paths
