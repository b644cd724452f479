"""Checksum= (<name>.SHA256SUMS of every output file) and Sign= (a detached OpenPGP signature of it)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from kosi.errors import KosiError
from kosi.outputs.naming import base_name
from kosi.pipeline.context import Context
from kosi.pipeline.tools import find_tool
from kosi.sandbox import Mount, run


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
    """Sign=: <name>.SHA256SUMS.gpg, a detached OpenPGP signature of the SHA256SUMS file, made
    by gpg (Key= names a key of the keyring; gpg's default key without it) or, with any other
    OpenPGPTool=, by that Stateless OpenPGP tool (sqop, rsop, ...: `sop sign KEY`), which takes
    Key= as the file of the secret key."""
    config = context.config
    if not config.sign:
        return
    if sums is None:
        raise KosiError("Sign=yes needs Checksum=yes: the SHA256SUMS file is what gets signed")
    signature = Path(f"{sums}.gpg")
    if config.openpgp_tool == "gpg":
        cmd = ["gpg", "--batch", "--yes", "--detach-sign", "--output", str(signature)]
        if config.key:
            cmd += ["--default-key", str(config.key)]
        run([*cmd, str(sums)])
        return
    sop_sign(context, sums, signature)


def check_signing(config) -> None:
    """Before the build: Sign= with a Stateless OpenPGP tool needs Key=, the secret key's file."""
    if not config.sign or config.openpgp_tool == "gpg":
        return
    if not config.key:
        raise KosiError(
            f"Sign=yes with OpenPGPTool={config.openpgp_tool} needs Key=, the file of the secret key",
            hint=f"e.g. `{config.openpgp_tool} generate-key 'Name <mail>' > signing.key` and Key=signing.key",
        )
    if not Path(config.key).absolute().is_file():
        raise KosiError(f"Key={config.key}: no such file (OpenPGPTool={config.openpgp_tool} signs with a key file)")


def sop_sign(context: Context, sums: Path, signature: Path) -> None:
    config = context.config
    check_signing(config)
    tool = find_tool(config.openpgp_tool, context.tools)
    if tool is None:
        raise KosiError(
            f"OpenPGPTool={config.openpgp_tool}: no such program on the host or in the tools tree",
            hint="install a Stateless OpenPGP tool (sqop, rsop), or use OpenPGPTool=gpg",
        )
    key = Path(config.key).absolute()
    with open(sums, "rb") as data, open(signature, "wb") as out:
        result = subprocess.run(
            [*tool.sandbox([Mount(key, "/signing-key.pgp", "ro-bind")]), tool.path, "sign", "/signing-key.pgp"],
            stdin=data,
            stdout=out,
            stderr=subprocess.PIPE,
        )
    if result.returncode != 0:
        signature.unlink(missing_ok=True)
        lines = [l for l in result.stderr.decode(errors="replace").splitlines() if l.strip()]
        raise KosiError(
            f"{config.openpgp_tool} sign failed: {lines[-1] if lines else f'exit status {result.returncode}'}"
        )
