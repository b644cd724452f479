"""Credentials handed to containers and VMs (Credentials=, mkosi.credentials/), and how they travel:
files for systemd-nspawn --load-credential, SMBIOS type 11 strings or fw_cfg files for qemu.

Defaults for systemd-firstboot are added so that the first boot of an image never stops at
the interactive wizard; the user's own credentials always win.
"""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

from kosi.config.model import Config
from kosi.errors import KosiError

# SMBIOS strings are limited in size by the firmware tables; larger credentials go through fw_cfg.
SMBIOS_LIMIT = 4000
FW_CFG_NAME_LIMIT = 55  # fw_cfg file names are at most 56 bytes with the terminating NUL


def read_credential_file(path: Path) -> bytes:
    """A file's content, or its output when it is executable (as the manual says)."""
    if os.access(path, os.X_OK):
        result = subprocess.run([str(path)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise KosiError(f"credential script {path} failed with exit status {result.returncode}")
        return result.stdout
    return path.read_bytes()


def credentials_from_path(path: Path) -> dict[str, bytes]:
    if path.is_dir():
        return {entry.name: read_credential_file(entry) for entry in sorted(path.iterdir()) if entry.is_file()}
    return {path.name: read_credential_file(path)}


def credential_bytes(value: str) -> bytes:
    """The loader keeps credential values as text, with the bytes of binary files as
    surrogate escapes: undo that exactly."""
    return value.encode(errors="surrogateescape")


def configured_credentials(config: Config) -> dict[str, bytes]:
    """mkosi.credentials/, then Credentials= (already read into NAME, VALUE pairs by the
    loader), which take precedence as the manual says."""
    result: dict[str, bytes] = {}
    local = Path(config.directory) / "mkosi.credentials"
    if local.is_dir():
        result.update(credentials_from_path(local))
    result.update({c[0]: credential_bytes(c[1]) for c in config.credentials})
    return result


def host_timezone() -> str:
    try:
        target = os.readlink("/etc/localtime")
    except OSError:
        return "UTC"
    marker = "zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else "UTC"


def ssh_public_key(certificate: Path) -> str:
    """The OpenSSH form of the public key in an X.509 certificate (SshCertificate=, mkosi.crt)."""
    pem = subprocess.run(
        ["openssl", "x509", "-noout", "-pubkey", "-in", str(certificate)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if pem.returncode != 0:
        raise KosiError(f"SshCertificate=: cannot read {certificate}: {pem.stderr.strip().splitlines()[-1:]}")
    key = subprocess.run(
        ["ssh-keygen", "-i", "-m", "PKCS8", "-f", "/dev/stdin"],
        input=pem.stdout,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if key.returncode != 0:
        raise KosiError(f"SshCertificate=: ssh-keygen cannot convert the key of {certificate}")
    return key.stdout.strip()


def runtime_credentials(config: Config) -> dict[str, bytes]:
    """Everything a booted image receives: firstboot defaults, the SSH key, then the user's own."""
    creds: dict[str, bytes] = {
        "firstboot.locale": b"C.UTF-8",
        "firstboot.timezone": host_timezone().encode(),
    }
    certificate = config.ssh_certificate  # the loader assigns mkosi.crt when it exists
    if certificate is not None:
        creds["ssh.authorized_keys.root"] = (ssh_public_key(certificate) + "\n").encode()
    creds.update(configured_credentials(config))
    return creds


def write_credential_dir(creds: dict[str, bytes], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths = []
    for name, value in creds.items():
        path = directory / name
        path.write_bytes(value)
        path.chmod(0o600)
        paths.append(path)
    return paths


def nspawn_credential_args(creds: dict[str, bytes], directory: Path) -> list[str]:
    """--load-credential= from files, so values with newlines or binary data survive unchanged."""
    return [f"--load-credential={p.name}:{p}" for p in write_credential_dir(creds, directory)]


def qemu_escape(text: str) -> str:
    """qemu's option parser splits on commas; a literal comma is written twice."""
    return text.replace(",", ",,")


def smbios_credential(name: str, value: bytes) -> str:
    try:
        decoded = value.decode()
        printable = decoded.isprintable() and "\n" not in decoded
    except UnicodeDecodeError:
        printable = False
    if printable:
        return f"io.systemd.credential:{name}={decoded}"
    return f"io.systemd.credential.binary:{name}={base64.b64encode(value).decode()}"


def qemu_credential_args(creds: dict[str, bytes], directory: Path) -> list[str]:
    """SMBIOS type 11 for small credentials, fw_cfg files for big ones (systemd reads both)."""
    args: list[str] = []
    for name, value in creds.items():
        text = smbios_credential(name, value)
        if len(text) <= SMBIOS_LIMIT:
            args += ["-smbios", f"type=11,value={qemu_escape(text)}"]
            continue
        fw_name = f"opt/io.systemd.credentials/{name}"
        if len(fw_name) > FW_CFG_NAME_LIMIT:
            raise KosiError(
                f"Credentials=: credential {name!r} is too large for SMBIOS and its name too long for fw_cfg"
            )
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = directory / name
        path.write_bytes(value)
        args += ["-fw_cfg", f"name={fw_name},file={qemu_escape(str(path))}"]
    return args


def smbios_kernel_cmdline_extra(words: list[str]) -> list[str]:
    """KernelCommandLineExtra= for systemd-stub (v254+), which appends it to the UKI's command line."""
    if not words:
        return []
    return ["-smbios", f"type=11,value={qemu_escape('io.systemd.stub.kernel-cmdline-extra=' + ' '.join(words))}"]
