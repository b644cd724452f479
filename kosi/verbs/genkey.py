"""`kosi genkey`: a self-signed key and certificate (mkosi.key, mkosi.crt) made by openssl.

They are the default SecureBootKey=/SecureBootCertificate= and SSH key pair sources. The
key is created with a 0077 umask so it is never readable by others, not even briefly.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from pathlib import Path

from kosi import log
from kosi.errors import KosiError

KEY, CERTIFICATE = "mkosi.key", "mkosi.crt"


def default_common_name() -> str:
    return f"mkosi of {getpass.getuser()}"


def generate(directory: Path, common_name: str, valid_days: int, force: bool) -> tuple[Path, Path]:
    key, certificate = directory / KEY, directory / CERTIFICATE
    for path in (key, certificate):
        if path.exists() and not force:
            raise KosiError(f"{path} already exists, refusing to overwrite it", hint="use -f to replace it")
    if not shutil.which("openssl"):
        raise KosiError("genkey needs openssl", hint="apt install openssl")
    for path in (key, certificate):
        path.unlink(missing_ok=True)
    command = [
        "openssl",
        "req",
        "-new",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-noenc",
        "-sha256",
        "-keyout",
        str(key),
        "-out",
        str(certificate),
        "-days",
        str(valid_days),
        "-subj",
        "/CN=" + common_name.replace("/", "\\/"),
    ]
    previous = os.umask(0o077)
    try:
        result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    finally:
        os.umask(previous)
    if result.returncode != 0:
        message = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
        raise KosiError(f"openssl failed to make the key: {message}")
    key.chmod(0o600)
    certificate.chmod(0o644)
    return key, certificate


def run(args) -> int:
    directory = Path(args.directory).resolve() if getattr(args, "directory", None) else Path.cwd()
    try:
        days = int(args.genkey_valid_days or 730)
    except ValueError:
        raise KosiError(f"--genkey-valid-days={args.genkey_valid_days}: expected a number of days") from None
    if days <= 0:
        raise KosiError(f"--genkey-valid-days={days}: expected a positive number of days")
    common_name = args.genkey_common_name or default_common_name()
    key, certificate = generate(directory, common_name, days, force=bool(args.force))
    log.info(f"wrote {key} and {certificate} (CN={common_name}, valid {days} days)")
    return 0
