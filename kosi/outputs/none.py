"""Format=none: the image only exists to run build scripts; nothing is written."""

from __future__ import annotations

from kosi.outputs.base import OutputFormat


class NoOutput(OutputFormat):
    format = "none"

    def write(self) -> None:
        pass
