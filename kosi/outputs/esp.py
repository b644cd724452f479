"""Format=esp: a disk image holding only the EFI system partition (boot loader and UKIs)."""

from __future__ import annotations

from kosi.outputs.base import OutputFormat
from kosi.outputs.disk import ESP_DEFINITION, run_repart
from kosi.outputs.uki import write_maybe_compressed


class ESPOutput(OutputFormat):
    format = "esp"

    def write(self) -> None:
        directory = self.context.workspace / "esp-definitions"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "00-esp.conf").write_text(ESP_DEFINITION)
        raw = self.context.workspace / "esp.raw"
        run_repart(self.context, raw, definitions=[directory])
        write_maybe_compressed(self, raw)
