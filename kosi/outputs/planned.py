"""Formats kosi knows (summary and --json show them, as mkosi does) but cannot write yet.

Each is replaced by the class of the module that implements it (see format.py); building
or planning one of these is refused before any step runs.
"""

from __future__ import annotations

from kosi.outputs.format import Format


class Oci(Format):
    name = "oci"
    compressed = True
    compressor = "gzip"


class Addon(Format):
    name = "addon"
    extension = "efi"
    compressed = True
    can_boot = False
