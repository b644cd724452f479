"""Format=uki: the unified kernel image of the newest kernel, with the image itself as its
initrd (the boot steps build it), as the output."""

from __future__ import annotations

import shutil
from pathlib import Path

from kosi.errors import KosiError
from kosi.outputs.base import OutputFormat
from kosi.outputs.compression import compress_level, compression_for
from kosi.outputs.disk import write_split_artifacts
from kosi.sandbox import run


class UKIOutput(OutputFormat):
    name = "uki"
    extension = "efi"
    compressed = True
    boots_by_default = True
    needs_boot_tools = True

    def write(self) -> None:
        ukis = self.context.state.ukis
        if not ukis:
            raise KosiError("Format=uki: no unified kernel image was built (is a kernel installed in the image?)",
                            hint="add a kernel package, e.g. linux-image-amd64, to Packages=")
        # SplitArtifacts=: the UKI's kernel and initrd (the image), os-release, ... next to it
        write_split_artifacts(self.context, [], set(self.config.split_artifacts))
        write_maybe_compressed(self, Path(ukis[0]))


def write_maybe_compressed(output: OutputFormat, source: Path) -> None:
    compression = compression_for(output.config)
    if compression is None:
        shutil.copy2(source, output.target)
        return
    with open(output.target, "wb") as out:
        run(compression.command(compress_level(output.config)) + [str(source)], stdout=out)
