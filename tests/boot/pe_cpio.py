"""Reading the parts of built boot files that the tests check: PE sections of a UKI (in file
order, as the UKI specification and systemd-stub read them) and members of a newc cpio."""

from __future__ import annotations

import struct


def pe_sections(data: bytes) -> list[tuple[str, bytes]]:
    """(name, content) of every section; content is VirtualSize bytes (the raw data is padded)."""
    assert data[:2] == b"MZ", "not a PE file"
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    assert data[pe : pe + 4] == b"PE\0\0", "no PE signature"
    count = struct.unpack_from("<H", data, pe + 6)[0]
    optional_size = struct.unpack_from("<H", data, pe + 20)[0]
    table = pe + 24 + optional_size
    sections = []
    for index in range(count):
        header = table + 40 * index
        name = data[header : header + 8].rstrip(b"\0").decode()
        virtual_size, _, raw_size, raw_pointer = struct.unpack_from("<IIII", data, header + 8)
        sections.append((name, data[raw_pointer : raw_pointer + min(virtual_size, raw_size)]))
    return sections


def section(data: bytes, name: str) -> bytes:
    found = [content for n, content in pe_sections(data) if n == name]
    assert len(found) == 1, f"{name}: {len(found)} sections"
    return found[0]


def cpio_members(data: bytes) -> dict[str, bytes]:
    """name -> content of the regular files of an uncompressed newc archive."""
    members, offset = {}, 0
    while offset < len(data):
        assert data[offset : offset + 6] == b"070701", f"no newc header at {offset}"
        fields = [int(data[offset + 6 + 8 * i : offset + 14 + 8 * i], 16) for i in range(13)]
        mode, size, name_size = fields[1], fields[6], fields[11]
        name_start = offset + 110
        name = data[name_start : name_start + name_size - 1].decode()
        content_start = (name_start + name_size + 3) & ~3
        if name == "TRAILER!!!":
            break
        if mode & 0o170000 == 0o100000:
            members[name] = data[content_start : content_start + size]
        offset = (content_start + size + 3) & ~3
    return members
