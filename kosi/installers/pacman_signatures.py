"""Which packages a key signed, from the signatures pacman's sync databases carry (%PGPSIG%).

pacman names only the key when a package's signer is not in the keyring ("key X could not be
looked up remotely"); the packages are found by reading the issuer of each signature (an
OpenPGP v4 signature packet: the issuer key id, or the issuer fingerprint whose last 16 hex
digits are the key id, in its subpackets).
"""

from __future__ import annotations

import base64
import binascii
import tarfile
from pathlib import Path

ISSUER = 16
ISSUER_FINGERPRINT = 33


def _packet_body(data: bytes) -> bytes:
    """The body of the first OpenPGP packet (old or new format header)."""
    tag = data[0]
    if tag & 0x40:  # new format
        first = data[1]
        if first < 192:
            return data[2 : 2 + first]
        if first < 224:
            return data[3 : 3 + ((first - 192) << 8) + data[2] + 192]
        return data[6 : 6 + int.from_bytes(data[2:6], "big")]
    size = {0: 1, 1: 2, 2: 4}.get(tag & 3, 0)
    length = int.from_bytes(data[1 : 1 + size], "big") if size else len(data) - 1
    return data[1 + size : 1 + size + length]


def _subpackets(area: bytes):
    i = 0
    while i < len(area):
        first = area[i]
        if first < 192:
            length, i = first, i + 1
        elif first < 255:
            length, i = ((first - 192) << 8) + area[i + 1] + 192, i + 2
        else:
            length, i = int.from_bytes(area[i + 1 : i + 5], "big"), i + 5
        if length == 0:
            return
        yield area[i], area[i + 1 : i + length]
        i += length


def issuer(signature: bytes) -> str | None:
    """The key id (16 upper-case hex digits) a v4 signature names as its issuer."""
    try:
        body = _packet_body(signature)
        if body[0] != 4:
            return None
        hashed = int.from_bytes(body[4:6], "big")
        unhashed_at = 6 + hashed
        unhashed = int.from_bytes(body[unhashed_at : unhashed_at + 2], "big")
        areas = body[6:unhashed_at] + body[unhashed_at + 2 : unhashed_at + 2 + unhashed]
        for kind, value in _subpackets(areas):
            kind &= 0x7F
            if kind == ISSUER and len(value) == 8:
                return value.hex().upper()
            if kind == ISSUER_FINGERPRINT and len(value) == 21 and value[0] == 4:
                return value[-8:].hex().upper()
    except IndexError:
        return None
    return None


def signed_by(databases: Path, key: str) -> list[str]:
    """name-version of the packages of the sync databases in `databases` whose signature the
    key `key` (a key id or a fingerprint) made."""
    wanted = key.upper()[-16:]
    found = []
    for database in sorted(databases.glob("*.db")):
        try:
            with tarfile.open(database, "r:*") as archive:
                for member in archive:
                    if not member.name.endswith("/desc"):
                        continue
                    stream = archive.extractfile(member)
                    fields = _desc(stream.read().decode(errors="replace")) if stream else {}
                    try:
                        signature = base64.b64decode(fields.get("PGPSIG", ""))
                    except (binascii.Error, ValueError):
                        continue
                    if signature and issuer(signature) == wanted:
                        found.append(f"{fields.get('NAME', '?')}-{fields.get('VERSION', '?')}")
        except (tarfile.TarError, OSError, EOFError):
            continue
    return sorted(found)


def _desc(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if line.startswith("%") and line.endswith("%"):
            key = line.strip("%")
        elif line and key and key not in fields:
            fields[key] = line
    return fields
