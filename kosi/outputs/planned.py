"""Formats kosi knows (summary and --json show them, as mkosi does) but cannot write yet.

Each would be a `Format` subclass without `write`, replaced by the class of the module that
implements it (see format.py); building or planning one is refused before any step runs.
Every format of mkosi 27.1 has a writer now, so none is listed here.
"""

from __future__ import annotations
