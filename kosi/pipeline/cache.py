"""The incremental cache (Incremental=): a copy of the image after packages and prepare scripts.

The runner asks every step before the cache point for its `inputs()`; each input is
hashed on its own so that when the cache is stale we can say *which* input changed
("cache invalid: Packages= changed"), and all of them together form the key.
The cache for one image lives in CacheDirectory= under CacheKey= (&d~&r~&a~&I):
`<key>.cache/` (the root), `<key>.build.cache/` (the build overlay root, when build
packages are installed) and `<key>.json` (the key and the per-input digests).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kosi.pipeline.context import Context


def digest(value: Any) -> str:
    """A stable hash of a JSON-able value (paths and sets are normalised)."""
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint_path(path: Path) -> str:
    """Hash of a file or tree: relative path, mode, size and mtime of every entry, and
    the content of small files (so a same-size edit within one second still counts)."""
    h = hashlib.sha256()
    if not os.path.lexists(path):
        return "missing"
    entries = [path] if not path.is_dir() or path.is_symlink() else sorted(path.rglob("*"))
    for entry in entries:
        st = entry.lstat()
        rel = entry.name if entry == path else str(entry.relative_to(path))
        h.update(f"{rel}\0{st.st_mode:o}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        if stat.S_ISLNK(st.st_mode):
            h.update(os.readlink(entry).encode())
        elif stat.S_ISREG(st.st_mode) and st.st_size <= 1 << 20:
            h.update(entry.read_bytes())
    return h.hexdigest()


def expand_key(template: str, context: Context) -> str:
    """CacheKey=/BuildKey= with their &-specifiers expanded. The loader already expands them;
    this covers configs made in code, and expanding an expanded key changes nothing."""
    from kosi.config.specifiers import expand_delayed

    return expand_delayed(template, context.config)


def default_state_directory() -> Path:
    """Per-user cache root: /var/cache/kosi for root, ~/.cache/kosi otherwise."""
    if os.getuid() == 0:
        return Path("/var/cache/kosi")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "kosi"


def cache_directory(context: Context) -> Path:
    """CacheDirectory= (the loader sets it to mkosi.cache/ when that exists), else the per-user cache."""
    return context.config.cache_directory or default_state_directory() / "incremental"


@dataclass
class CacheLocation:
    root: Path
    build: Path
    metadata: Path

    def exists(self) -> bool:
        return self.root.is_dir() and self.metadata.is_file()

    def remove(self) -> None:
        for path in (self.root, self.build):
            if path.is_dir():
                shutil.rmtree(path)
        self.metadata.unlink(missing_ok=True)


def cache_location(context: Context) -> CacheLocation:
    name = expand_key(context.config.cache_key, context)
    base = cache_directory(context)
    return CacheLocation(base / f"{name}.cache", base / f"{name}.build.cache", base / f"{name}.json")


def input_digests(inputs: dict[str, Any]) -> dict[str, str]:
    return {name: digest(value) for name, value in sorted(inputs.items())}


def key_of(digests: dict[str, str]) -> str:
    return digest(digests)[:12]


def why_invalid(location: CacheLocation, digests: dict[str, str]) -> str | None:
    """None when the cache matches; otherwise the reason it cannot be used."""
    if not location.exists():
        return "no cached image yet"
    try:
        stored = json.loads(location.metadata.read_text())["inputs"]
    except (OSError, ValueError, KeyError):
        return "cache metadata unreadable"
    changed = sorted(name for name in set(stored) | set(digests) if stored.get(name) != digests.get(name))
    if not changed:
        return None
    shown = ", ".join(changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")
    return f"{shown} changed"


def copy_tree(source: Path, target: Path) -> None:
    """Copy a whole root, sharing data blocks where the file system can (reflinks)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    from kosi.sandbox import run

    run(["cp", "--reflink=auto", "-a", "--no-target-directory", str(source), str(target)])


def save(location: CacheLocation, context: Context, digests: dict[str, str], build_root: Path | None) -> None:
    location.remove()
    copy_tree(context.root, location.root)
    if build_root is not None and build_root.is_dir():
        copy_tree(build_root, location.build)
    location.metadata.write_text(json.dumps({"key": key_of(digests), "inputs": digests}, indent=2) + "\n")


def restore(location: CacheLocation, context: Context, build_root: Path) -> None:
    copy_tree(location.root, context.root)
    if location.build.is_dir():
        copy_tree(location.build, build_root)
