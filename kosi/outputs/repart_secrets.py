"""What systemd-repart gets besides definitions: the LUKS key file and the verity signing key.

Passphrase= becomes `--key-file=`, so partitions with `Encrypt=key-file` (or `key-file+tpm2`)
open with that passphrase. Without it repart would format them with an empty key, so such a
definition without Passphrase= is refused. The file is bound read-only into repart's sandbox
by itself (never copied into the workspace, never logged, never in the image).

Verity= decides what happens to `Verity=signature` partitions: `signed`/`auto` hand
VerityKey=/VerityCertificate= (and their sources) to repart, `hash` leaves the signature
partitions out (--exclude-partitions=), `defer` reserves their space unfilled
(--defer-partitions=), `disabled` passes no key. `signed` fails without a key, or when the
image ends up without a signature partition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kosi.boot.signing import SigningKey, existing_files, require_key_settings
from kosi.config.model import Config
from kosi.errors import KosiError

#: Encrypt= values that make repart use --key-file= (manual of repart.d)
KEY_FILE_MODES = ("key-file", "key-file+tpm2")


@dataclass
class RepartSecrets:
    arguments: list[str] = field(default_factory=list)
    #: files repart must read, bound read-only one by one into its sandbox
    files: list[Path] = field(default_factory=list)


def definition_values(directories: list[Path], key: str) -> list[tuple[Path, str]]:
    """(file, value) of every `key=` line in the [Partition] definitions of `directories`."""
    found = []
    for directory in directories:
        for conf in sorted(directory.glob("*.conf")):
            for line in conf.read_text(errors="replace").splitlines():
                match = re.match(rf"\s*{key}\s*=\s*(\S*)", line)
                if match:
                    found.append((conf, match.group(1)))
    return found


def verity_signing_key(config: Config) -> SigningKey | None:
    """The verity key and certificate repart signs with, per Verity=; None when it signs nothing."""
    mode = config.verity
    key, certificate = config.verity_key, config.verity_certificate
    if mode == "signed":
        require_key_settings(
            {"VerityKey": key, "VerityCertificate": certificate},
            "Verity=signed needs {setting}= (default: {default} in the configuration directory), which is not set",
        )
    if mode not in ("signed", "auto") or not key or not certificate:
        return None
    signing = SigningKey(str(key), config.verity_key_source, str(certificate), config.verity_certificate_source)
    return existing_files("Verity", signing)


def signature_partition_types(config: Config) -> list[str]:
    arch = config.architecture
    return [f"root-{arch}-verity-sig", f"usr-{arch}-verity-sig"]


def repart_secrets(config: Config, directories: list[Path]) -> RepartSecrets:
    secrets = RepartSecrets()
    encrypted = [(conf, value) for conf, value in definition_values(directories, "Encrypt") if value in KEY_FILE_MODES]
    if config.passphrase:
        passphrase = Path(config.passphrase)
        if not passphrase.is_file():
            raise KosiError(f"Passphrase={passphrase}: no such file")
        secrets.arguments.append(f"--key-file={passphrase}")
        secrets.files.append(passphrase)
    elif encrypted:
        conf, value = encrypted[0]
        raise KosiError(
            f"{conf}: Encrypt={value} needs a passphrase, but Passphrase= is not set "
            "(the volume would open with an empty key)",
            hint="write the passphrase to mkosi.passphrase (mode 0600), or set Passphrase=",
        )
    key = verity_signing_key(config)
    if key is not None:
        secrets.arguments += [f"--private-key={key.key}", f"--certificate={key.certificate}"]
        if key.key_source.type != "file":
            secrets.arguments.append(f"--private-key-source={key.key_source.type}:{key.key_source.source}")
        if key.certificate_source.type != "file":
            secrets.arguments.append(
                f"--certificate-source={key.certificate_source.type}:{key.certificate_source.source}"
            )
        secrets.files += key.files()
    if config.verity == "hash":
        secrets.arguments.append(f"--exclude-partitions={','.join(signature_partition_types(config))}")
    elif config.verity == "defer":
        secrets.arguments.append(f"--defer-partitions={','.join(signature_partition_types(config))}")
    return secrets


def check_signature_partition(config: Config, table: list[dict[str, Any]]) -> None:
    """Verity=signed: the image must have a verity signature partition."""
    if config.verity != "signed":
        return
    wanted = tuple(signature_partition_types(config))
    if not any(str(p.get("type", "")).startswith(wanted) for p in table):
        raise KosiError(
            "Verity=signed, but the image has no verity signature partition",
            hint="add a definition with Verity=signature (Type=root-verity-sig or usr-verity-sig) to mkosi.repart/",
        )
