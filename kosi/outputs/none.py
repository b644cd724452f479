"""Format=none: the image only exists to run build scripts; nothing is written."""

from __future__ import annotations

from kosi.outputs.base import OutputFormat


class NoOutput(OutputFormat):
    name = "none"
    can_boot = False

    def write(self) -> None:
        pass
