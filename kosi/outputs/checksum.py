"""Checksum= (<name>.SHA256SUMS of every output file) and Sign= (a detached gpg signature of it)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from kosi.outputs.naming import base_name
from kosi.pipeline.context import Context
from kosi.sandbox import run


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_checksums(context: Context) -> Path | None:
    if not context.config.checksum:
        return None
    name = base_name(context.config)
    target = context.staging / f"{name}.SHA256SUMS"
    files = sorted(p for p in context.staging.iterdir() if p.is_file() and not p.is_symlink() and p != target)
    target.write_text("".join(f"{sha256_file(p)} *{p.name}\n" for p in files))
    return target


def sign_checksums(context: Context, sums: Path | None) -> None:
    if not context.config.sign:
        return
    if sums is None:
        from kosi.errors import KosiError

        raise KosiError("Sign=yes needs Checksum=yes: the SHA256SUMS file is what gets signed")
    cmd = ["gpg", "--batch", "--yes", "--detach-sign", "--output", f"{sums}.gpg"]
    key = context.config.key
    if key:
        cmd += ["--default-key", str(key)]
    run([*cmd, str(sums)])
