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

from kosi.errors import KosiError
from kosi.pipeline import atomic
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
    metadata: Path  # the stamp: written last, removed first (kosi.pipeline.atomic)
    lock: Path  # held while the entry is written or read: builds sharing the cache take turns

    def exists(self) -> bool:
        return self.root.is_dir() and self.metadata.is_file()

    def remove(self) -> None:
        self.metadata.unlink(missing_ok=True)
        for path in (self.root, self.build):
            if path.is_dir():
                shutil.rmtree(path)


def cache_location(context: Context) -> CacheLocation:
    name = expand_key(context.config.cache_key, context)
    base = cache_directory(context)
    return CacheLocation(
        base / f"{name}.cache", base / f"{name}.build.cache", base / f"{name}.json", base / f"{name}.lock"
    )


def input_digests(inputs: dict[str, Any]) -> dict[str, str]:
    return {name: digest(value) for name, value in sorted(inputs.items())}


def key_of(digests: dict[str, str]) -> str:
    return digest(digests)[:12]


def top_entries(root: Path) -> list[str]:
    """What the stamp records of a tree, to notice one emptied or swapped behind kosi's back."""
    return sorted(os.listdir(root))


def why_corrupt(location: CacheLocation, stored: Any) -> str | None:
    """Why a cache entry with a readable stamp cannot be trusted, or None."""
    if not isinstance(stored, dict) or not isinstance(stored.get("inputs"), dict):
        return f"cache corrupt: its stamp {location.metadata.name} is garbled"
    if stored.get("key") != key_of(stored["inputs"]):
        return f"cache corrupt: its stamp {location.metadata.name} does not match its own key"
    if not location.root.is_dir():
        return f"cache corrupt: {location.root.name} is missing"
    if "entries" in stored and top_entries(location.root) != stored["entries"]:
        return f"cache corrupt: {location.root.name} is not the tree that was saved"
    if stored.get("build") and not location.build.is_dir():
        return f"cache corrupt: {location.build.name} is missing"
    return None


def why_invalid(location: CacheLocation, digests: dict[str, str]) -> str | None:
    """None when the cache matches; otherwise the reason it cannot be used."""
    if not location.metadata.exists():
        if location.root.exists() or location.build.exists():
            return "cache incomplete: no stamp (its last write was interrupted or failed)"
        return "no cached image yet"
    stored, unreadable = atomic.read_stamp(location.metadata)
    if unreadable:
        return f"cache corrupt: {unreadable}"
    corrupt = why_corrupt(location, stored)
    if corrupt:
        return corrupt
    inputs = stored["inputs"]
    changed = sorted(name for name in set(inputs) | set(digests) if inputs.get(name) != digests.get(name))
    if not changed:
        return None
    shown = ", ".join(changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")
    return f"{shown} changed"


def copy_tree(source: Path, target: Path, *, replace: bool = True) -> None:
    """Copy a whole root, sharing data blocks where the file system can (reflinks). With
    replace=False an existing (empty) target directory is filled instead of replaced."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if replace and target.exists():
        shutil.rmtree(target)
    from kosi.sandbox import run

    run(["cp", "--reflink=auto", "-a", "--no-target-directory", str(source), str(target)])


def _save_tree(source: Path, final: Path) -> None:
    with atomic.partial_directory(final) as partial:
        copy_tree(source, partial, replace=False)
        atomic.commit(partial, final)


def save(location: CacheLocation, context: Context, digests: dict[str, str], build_root: Path | None) -> None:
    """Store the image (and build overlay) under partial names, commit them by rename, and
    write the stamp last: an interrupted or failed save leaves no stamp, so it is never used."""
    has_build = build_root is not None and build_root.is_dir()
    with atomic.locked(location.lock, f"waiting for another kosi build that uses the cached image {location.root}"):
        _save(location, context, digests, build_root if has_build else None)


def _save(location: CacheLocation, context: Context, digests: dict[str, str], build_root: Path | None) -> None:
    has_build = build_root is not None
    location.metadata.unlink(missing_ok=True)
    try:
        _save_tree(context.root, location.root)
        if has_build:
            assert build_root is not None
            _save_tree(build_root, location.build)
        elif location.build.is_dir():
            shutil.rmtree(location.build)
        stamp = {
            "key": key_of(digests),
            "inputs": digests,
            "build": has_build,
            "entries": top_entries(location.root),
        }
        atomic.write_stamp(location.metadata, stamp)
    except (OSError, KosiError) as e:
        if not atomic.is_no_space(e):
            raise
        needed = atomic.tree_size(context.root) + (atomic.tree_size(build_root) if has_build and build_root else 0)
        raise atomic.no_space(
            location.root,
            "saving the cached image",
            needed,
            location.root.parent,
            hint="nothing half-written is kept; free space or set Incremental=no",
        ) from None


def restore(location: CacheLocation, context: Context, build_root: Path, digests: dict[str, str]) -> None:
    with atomic.locked(location.lock, f"waiting for another kosi build that uses the cached image {location.root}"):
        # Another build sharing the cache directory (same CacheKey=) may have replaced it since
        # this build decided to use it: too late to build it instead, so say so.
        changed = why_invalid(location, digests)
        if changed is not None:
            raise KosiError(
                f"the cached image {location.root} was replaced by another build meanwhile ({changed})",
                hint="build again; builds sharing a CacheDirectory= need different CacheKey=",
            )
        copy_tree(location.root, context.root)
        if location.build.is_dir():
            copy_tree(location.build, build_root)
